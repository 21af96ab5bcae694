// A change of the agent's health is logged when it happens, not at the next
// tick of a poll: the publisher reports a dropped NATS connection to the
// health monitor, which has no timer while the agent is healthy and idle.
import { afterAll, afterEach, expect, test } from "bun:test";
import pino from "pino";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { HEALTH_CHECK_MS } from "../../src/orchestrator/health-monitor.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { configFrom } from "../helpers/config.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});
afterAll(stopAllNatsServers);

test("NATS goes away: 'agent degraded' at once; it comes back: 'agent healthy' within a second", async () => {
  const server = await startNatsServer({ jetstream: false });
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const registry = builtinRegistry();
  const config = configFrom(`
orchestrator: { health_interval: 0s, shutdown_timeout: 1s }
nats: { url: "${server.url}", mode: core, reconnect_wait: 100ms }
spool: { enabled: false }
collectors: {}
`, registry);
  const orch = new Orchestrator({ config, registry, publisher: createPublisher(config.nats, { log }), log });
  running.push(orch);
  const started = Date.now();
  orch.start();
  await waitFor(() => lines.some((l) => l.msg === "connected to NATS"), "the connection", 5000);
  // the first look at health is HEALTH_CHECK_MS after start (NATS is still connecting before)
  await waitFor(() => Date.now() - started > HEALTH_CHECK_MS + 100, "the first look", 3000);
  expect(lines.some((l) => l.msg?.startsWith("agent "))).toBe(false);

  await server.kill("SIGKILL");
  await waitFor(() => lines.some((l) => l.msg?.startsWith("agent degraded: NATS disconnected")), "the agent-degraded line", 3000);
  const lost = lines.find((l) => l.msg === "disconnected from NATS; reconnecting")!;
  const degraded = lines.find((l) => l.msg.startsWith("agent degraded"))!;
  // a 1 s poll would log it up to a second late
  expect(degraded.time - lost.time).toBeLessThan(250);

  await server.restart();
  await waitFor(() => lines.some((l) => l.msg === "agent healthy"), "the agent-healthy line", 5000);
  const back = lines.find((l) => l.msg === "reconnected to NATS")!;
  const healthy = lines.find((l) => l.msg === "agent healthy")!;
  expect(healthy.time - back.time).toBeLessThanOrEqual(HEALTH_CHECK_MS + 250);
  expect(orch.agentHealth()).toEqual({ state: "healthy", problems: [] });
});
