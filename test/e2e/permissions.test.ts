// The agent as a process with a NATS user that lacks a permission it needs:
// nothing can be published, and /readyz, /status health, the circuit reason
// and publish_errors all say that a permission is missing and which one,
// rather than "not confirmed within spill_after" with /readyz 200; once the
// server grants it, publishing resumes by itself.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers/cleanup.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { endpointsUrl, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

const PERMISSIONS = {
  "no-js-api": `publish: { allow: ["perm.>"] }, subscribe: { allow: ["_INBOX.>"] }`,
  "no-inbox": `publish: { allow: ["perm.>", "$JS.API.>"] }, subscribe: { deny: ["_INBOX.>"] }`,
};

function serverConfig(user: string, permissions: string | undefined): string {
  return `accounts { A { jetstream: enabled, users: [ { user: ${user}, password: p${permissions ? `, permissions: { ${permissions} }` : ""} } ] } }`;
}

afterAll(stopAllNatsServers);

for (const [user, refused] of [
  ["no-js-api", 'may not publish to "$JS.API.STREAM.INFO.PERM"'],
  ["no-inbox", 'may not subscribe to "_INBOX.'],
] as const) {
  test(`${user}: /readyz, health, the circuit and publish_errors name the refused permission; granting it on the server resumes publishing`, async () => {
    const server = await startNatsServer({ config: serverConfig(user, PERMISSIONS[user]) });
    const config = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: ${server.url}, username: ${user}, password: p, subject: perm, stream: { name: PERM }, timeout: 1s }
spool: { path: ${join(makeTempDir("spool"), "spool.db")}, spill_after: 500ms }
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

      // The operator grants it; a server reload (no reconnect) is enough.
      // (JetStream comes from the command line; a reloaded file without it would turn it off)
      writeFileSync(server.configFile, `jetstream { store_dir: "${server.storeDir}" }\n${serverConfig(user, undefined)}`);
      process.kill(server.pid!, "SIGHUP");
      await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, "/readyz 200 after the grant", 20_000);
      await waitFor(async () => {
        const after = await status();
        return after.delivery.spool.depth === 0 && after.collectors[0].events_published > 0 && after.health.state === "healthy";
      }, "the spool replayed and the agent healthy", 20_000);
      expect((await status()).delivery.nats.permission).toBeUndefined();
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
    }
  }, 60_000);
}
