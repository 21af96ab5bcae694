// The README's Hot reload, on the agent as a process: a changed log_level is
// applied, the settings read once at start are logged as needing a restart
// (and are not applied: the endpoints stay where they were), and
// orchestrator_config_reloads_total counts successes and failures.
import { describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { logLines, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { freePort } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

describe("README hot reload", () => {
  test("log_level changes at once; workers, batch_size, buffer, nats.circuit_breaker, spool and http settings are logged as needing a restart; reloads are counted", async () => {
    const [port, otherPort] = [await freePort(), await freePort()];
    const base = `http://127.0.0.1:${port}`;
    // NATS is not needed: the events wait in the spool.
    const file = writeConfig(`
orchestrator: { log_level: warn, workers: 4, batch_size: 512, buffer_size: 10000 }
nats: { url: "nats://127.0.0.1:1", circuit_breaker: { failure_threshold: 5 } }
http: { listen: "127.0.0.1:${port}" }
collectors:
  synthetic: { config: { rate: 5 } }
`);
    const original = readFileSync(file, "utf8");
    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    const logs = () => logLines(out.lines.join("\n"));
    const reloads = async (result: "success" | "failure") => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return Number(new RegExp(`^orchestrator_config_reloads_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text)?.[1]);
    };
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200, "the agent ready", 10_000);
      expect(logs().filter((l) => l.level === "info")).toEqual([]);

      rewrite(
        file,
        original
          .replace("log_level: warn", "log_level: info")
          .replace("workers: 4", "workers: 2")
          .replace("batch_size: 512", "batch_size: 256")
          .replace("buffer_size: 10000", "buffer_size: 5000")
          .replace("failure_threshold: 5", "failure_threshold: 3")
          .replace(/path: \S+/, (m) => `${m}\n  max_bytes: 512MiB`)
          .replace(`listen: "127.0.0.1:${port}"`, `listen: "127.0.0.1:${otherPort}"`),
      );
      await waitFor(() => logs().some((l) => l.msg.startsWith("config reload: ")), "the reload's needing-a-restart line", 10_000);
      const needRestart = logs().find((l) => l.msg.startsWith("config reload: "))!;
      expect(needRestart.level).toBe("warn");
      expect(needRestart.keys.sort()).toEqual(["http.listen", "nats.circuit_breaker", "orchestrator.batch_size", "orchestrator.buffer", "orchestrator.workers", "spool.max_bytes"]);
      expect(needRestart.msg).toEndWith("changed; these take effect on the next start");
      // Not applied: the endpoints are still on the first address.
      expect(await reloads("success")).toBe(1);

      // The next reload's info line shows only if log_level: info was applied.
      agent.kill("SIGHUP");
      await waitFor(() => logs().some((l) => l.level === "info" && l.msg.startsWith("config reloaded")), "an info line after the reload", 10_000);
      await waitFor(async () => (await reloads("success")) === 2, "two successful reloads counted");

      rewrite(file, original.replace("workers: 4", "workers: many"));
      await waitFor(async () => (await reloads("failure")) === 1, "the invalid edit counted as a failure", 10_000);
      expect(await reloads("success")).toBe(2);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
      await out.ended;
    }
  }, 40_000);
});
