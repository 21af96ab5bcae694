// The README's CLI reference, where no other test holds it: the default
// config file, --log-level over orchestrator.log_level, what --dry-run leaves
// alone (no endpoints, no spool), SIGINT as a graceful stop, and the stack
// trace of a runtime failure shown only with TAPIO_DEBUG=1.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { logLines, runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { freePort } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

const STACK_LINE = /^\s+at .+:\d+/m;
const belowError = (line: Record<string, any>) => !["error", "fatal"].includes(line.level);

describe("README CLI reference", () => {
  test("without --config or $TAPIO_CONFIG the config is configs/collectors.yaml", async () => {
    const r = await runAgent(["validate"], { env: { TAPIO_CONFIG: undefined } });
    expect(r.code).toBe(0);
    expect(r.stderr).toStartWith("configs/collectors.yaml: valid");
  });

  test("--log-level overrides orchestrator.log_level, both ways", async () => {
    const quiet = writeConfig("orchestrator: { log_level: error }\ncollectors:\n  synthetic: { config: { count: 1 } }\n");
    const fromFile = await runAgent(["--once", "--dry-run", "-c", quiet]);
    expect(fromFile.code).toBe(0);
    expect(logLines(fromFile.stderr).filter(belowError)).toEqual([]);
    const raised = await runAgent(["--once", "--dry-run", "--log-level", "info", "-c", quiet]);
    expect(logLines(raised.stderr).some((l) => l.level === "info" && l.msg.includes("starting"))).toBe(true);

    const chatty = writeConfig("orchestrator: { log_level: info }\ncollectors:\n  synthetic: { config: { count: 1 } }\n");
    const lowered = await runAgent(["--once", "--dry-run", "--log-level", "error", "-c", chatty]);
    expect(lowered.code).toBe(0);
    expect(logLines(lowered.stderr).filter(belowError)).toEqual([]);
  });

  test("--dry-run serves no HTTP endpoints and opens no spool; SIGINT stops it like SIGTERM, delivering what is queued (exit 0)", async () => {
    const port = await freePort();
    const file = writeConfig(`http: { listen: "127.0.0.1:${port}" }\ncollectors:\n  synthetic: { config: { rate: 50 } }\n`);
    const agent = spawnAgent(["--dry-run", "-c", file]);
    killAtExit(agent.pid);
    const events = collectLines(agent.stdout);
    const logs = collectLines(agent.stderr);
    try {
      await waitFor(() => events.lines.length > 0, "the first event on stdout", 10_000);
      expect(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, (err: Error) => err.name)).not.toBe(200);
      agent.kill("SIGINT");
      expect(await agent.exited).toBe(0);
    } finally {
      agent.kill("SIGKILL");
      spare(agent.pid);
    }
    await Promise.all([events.ended, logs.ended]);
    const log = logLines(logs.lines.join("\n"));
    expect(log.some((l) => l.msg === "SIGINT received: shutting down")).toBe(true);
    const done = log.find((l) => l.msg.startsWith("shutdown complete"));
    expect(done).toMatchObject({ in_spool: 0, lost: 0 });
    // Every event accepted before the signal reached stdout, as NDJSON.
    expect(events.lines.filter((l) => l !== "").map((l) => JSON.parse(l).source)).toEqual(Array(done!.published).fill("synthetic"));
    expect(existsSync(join(dirname(file), "spool.db"))).toBe(false);
  });

  test("a runtime failure is one line without a stack; TAPIO_DEBUG=1 adds the stack", async () => {
    // The HTTP port is taken: a runtime failure, not a config error.
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
    try {
      const file = writeConfig(`http: { listen: "127.0.0.1:${taken.port}" }\nnats: { url: "nats://127.0.0.1:1" }\ncollectors:\n  synthetic: { config: { count: 1 } }\n`);
      const plain = await runAgent(["--once", "-c", file], { env: { TAPIO_DEBUG: undefined } });
      expect(plain.code).toBe(1);
      expect(plain.stderr).toContain(`tapio-collectors: http.listen 127.0.0.1:${taken.port}: cannot listen`);
      expect(plain.stderr).not.toMatch(STACK_LINE);
      const debug = await runAgent(["--once", "-c", file], { env: { TAPIO_DEBUG: "1" } });
      expect(debug.code).toBe(1);
      expect(debug.stderr).toContain(`tapio-collectors: http.listen 127.0.0.1:${taken.port}: cannot listen`);
      expect(debug.stderr).toMatch(STACK_LINE);
    } finally {
      taken.stop(true);
    }
  });
});
