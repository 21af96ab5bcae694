// A fault outside every collector (an uncaught exception, an unhandled
// rejection) ends the agent: it logs the error with its stack, stops its
// collectors, spools what is queued without waiting for NATS, and exits 1,
// for the supervisor to restart it and the spool to be replayed.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { freePort } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { writeConfig } from "../helpers/agent.ts";
import { exitCode, expectAccounting, killAllAgents, msgStartsWith, readStatus, spoolRows, startAgent, statusUrl } from "./harness.ts";

afterEach(killAllAgents);

const WRAPPER = join(import.meta.dir, "agent-with-fault.ts");

async function agentWithFault(kind: "exception" | "rejection") {
  const spoolPath = join(makeTempDir("fault-spool"), "spool.db");
  // No NATS listening, and spill_after long: events wait in the queue and in
  // a publish that would last an hour, so only the fault handling spools them.
  const config = writeConfig(`
orchestrator:
  workers: 1
  batch_size: 100
  shutdown_timeout: 60s
  buffer: { max_events: 1000 }
nats:
  url: nats://127.0.0.1:${await freePort()}
  mode: core
spool:
  path: ${spoolPath}
  spill_after: 1h
collectors:
  synthetic: { config: { rate: 0 } }
`);
  const agent = startAgent(["run", "--config", config], [process.execPath, WRAPPER, kind]);
  return { agent, spoolPath };
}

describe("a fault outside every collector", () => {
  for (const kind of ["exception", "rejection"] as const) {
    test(`${kind === "exception" ? "an uncaught exception" : "an unhandled rejection"}: logged with its stack, collectors stopped, the queue spooled, exit 1`, async () => {
      const { agent, spoolPath } = await agentWithFault(kind);
      const url = await statusUrl(agent);
      // The queue is full (the collector is held back by backpressure) before the fault.
      for (let s = await readStatus(url); !(s && s.queued >= 1000); s = await readStatus(url)) await Bun.sleep(20);
      const faultAt = Date.now();
      agent.kill("SIGUSR2");
      expect(await exitCode(agent, 30_000)).toBe(1);
      // Well within shutdown_timeout (60 s): nothing waited for NATS.
      expect(agent.endedAt! - faultAt).toBeLessThan(20_000);
      const fault = agent.lines.find((l) => l.level === "fatal" && /outside every collector/.test(l.msg));
      expect(fault?.msg).toStartWith(kind === "exception" ? "uncaught exception" : "unhandled rejection");
      expect(fault?.stack).toContain(`Error: ${kind} outside every collector`);
      expect(fault?.stack).toContain("agent-with-fault.ts");
      expect(agent.lines.some(msgStartsWith("stopping 1 collector(s)"))).toBe(true);
      const final = expectAccounting(agent.final(), { published: 0, lost: 0, discarded: 0 });
      expect(final.accepted).toBeGreaterThanOrEqual(1000);
      expect(final.in_spool).toBe(final.accepted);
      expect(spoolRows(spoolPath)).toHaveLength(final.accepted);
    });
  }
});
