// The README's Hot reload, on the agent as a process: a changed log_level is
// applied, and the settings read once at start are logged as needing a
// restart.
import { describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { logLines, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

describe("README hot reload", () => {
  test("log_level changes at once; workers, batch_size, buffer, nats.circuit_breaker, spool and http settings are logged as needing a restart", async () => {
    const file = writeConfig(`
orchestrator: { log_level: warn, workers: 4, batch_size: 512, buffer_size: 10000 }
nats: { circuit_breaker: { failure_threshold: 5 } }
http: { listen: "127.0.0.1:0" }
collectors:
  synthetic: { config: { rate: 5 } }
`);
    const original = readFileSync(file, "utf8");
    // --dry-run: no NATS needed; the reloader runs as in any long-running agent. Its logs go to stderr.
    const agent = spawnAgent(["--dry-run", "-c", file]);
    killAtExit(agent.pid);
    const err = collectLines(agent.stderr);
    const stdout = collectLines(agent.stdout);
    const logs = () => logLines(err.lines.join("\n"));
    try {
      await waitFor(() => stdout.lines.length > 0, "the first event", 10_000);
      expect(logs().filter((l) => l.level === "info")).toEqual([]);

      rewrite(
        file,
        original
          .replace("log_level: warn", "log_level: info")
          .replace("workers: 4", "workers: 2")
          .replace("batch_size: 512", "batch_size: 256")
          .replace("buffer_size: 10000", "buffer_size: 5000")
          .replace("failure_threshold: 5", "failure_threshold: 3")
          .replace(/max_bytes: \S+|path: (\S+)/, (m) => `${m}\n  max_bytes: 512MiB`)
          .replace('listen: "127.0.0.1:0"', 'listen: "127.0.0.1:1"'),
      );
      await waitFor(() => logs().some((l) => l.msg.startsWith("config reload: ")), "the reload's needing-a-restart line", 10_000);
      const needRestart = logs().find((l) => l.msg.startsWith("config reload: "))!;
      expect(needRestart.level).toBe("warn");
      expect(needRestart.keys.sort()).toEqual(["http.listen", "nats.circuit_breaker", "orchestrator.batch_size", "orchestrator.buffer", "orchestrator.workers", "spool.max_bytes"]);
      expect(needRestart.msg).toEndWith("changed; these take effect on the next start");

      // The next reload's info line shows only if log_level: info was applied.
      agent.kill("SIGHUP");
      await waitFor(() => logs().some((l) => l.level === "info" && l.msg.startsWith("config reloaded")), "an info line after the reload", 10_000);
    } finally {
      agent.kill("SIGTERM");
      await agent.exited;
      spare(agent.pid);
      await err.ended;
    }
    expect(agent.exitCode).toBe(0);
  }, 30_000);
});
