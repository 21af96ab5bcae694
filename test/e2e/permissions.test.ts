// The agent as a process with a NATS user that lacks a permission it needs:
// nothing can be published, and /readyz, /status health, the circuit reason
// and publish_errors all say that a permission is missing and which one,
// rather than "not confirmed within spill_after" with /readyz 200.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { endpointsUrl, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer({
    config: `accounts { A { jetstream: enabled, users: [
      { user: no-js-api, password: p, permissions: { publish: { allow: ["perm.>"] }, subscribe: { allow: ["_INBOX.>"] } } }
      { user: no-inbox, password: p, permissions: { publish: { allow: ["perm.>", "$JS.API.>"] }, subscribe: { deny: ["_INBOX.>"] } } }
    ] } }`,
  });
});

afterAll(stopAllNatsServers);

for (const [user, refused] of [
  ["no-js-api", 'may not publish to "$JS.API.STREAM.INFO.PERM"'],
  ["no-inbox", 'may not subscribe to "_INBOX.'],
] as const) {
  test(`${user}: /readyz, health, the circuit and publish_errors name the refused permission`, async () => {
    const config = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: ${server.url}, username: ${user}, password: p, subject: perm, stream: { name: PERM }, timeout: 1s }
spool: { spill_after: 500ms }
collectors:
  synthetic: { config: { count: 0, rate: 50 } }
`);
    const agent = spawnAgent(["run", "--config", config]);
    try {
      const { lines } = collectLines(agent.stdout);
      const url = await endpointsUrl(lines);
      const status = async () => (await fetch(`${url}/status`)).json() as Promise<Record<string, any>>;
      await waitFor(async () => (await status()).delivery.circuits.some((c: any) => c.state !== "closed"), "an open circuit", 15_000);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain(`NATS permission denied: the NATS user ${refused}`);
      const s = await status();
      expect(s.health.problems.join("\n")).toContain(`NATS permission denied: the NATS user ${refused}`);
      expect(s.delivery.nats.permission).toContain(refused);
      expect(s.delivery.circuits[0].last_failure).toStartWith(`permission: the NATS user ${refused}`);
      expect(s.publish_errors.permission).toBeGreaterThan(0);
      expect(Object.keys(s.publish_errors)).toEqual(["permission"]);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
    }
  }, 30_000);
}
