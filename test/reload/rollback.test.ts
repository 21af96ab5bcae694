// A reload to NATS settings that cannot work (credentials the server
// rejects, with each authentication method, or a server nobody runs) is
// rolled back in the real agent: it keeps publishing through the old
// connection, logs why, counts reloads{result="failure"}, retries on the next
// file change (even to the same text) and on SIGHUP, and takes a good edit after that.
import { afterAll, afterEach, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { writeConfig } from "../helpers/agent.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { createUserNkey } from "../helpers/nkeys.ts";
import { createJwtOperator, createJwtUser } from "../helpers/jwt.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { exitCode, expectAccounting, killAllAgents, msgStartsWith, readStatus, startAgent, statusUrl, type AgentProcess } from "../fault/harness.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

const GOOD = "g00d-secret-value-1";
const WRONG = "wr0ng-secret-value-2";

interface AuthCase {
  name: string;
  /** the nats-server configuration, the agent's auth keys that it accepts, and a bad edit */
  server: () => { config: string; good: string; bad: { auth?: string; unreachable?: true } };
}

const cases: AuthCase[] = [
  {
    name: "username/password",
    server: () => ({
      config: `authorization { user: tapio, password: "${GOOD}" }`,
      good: `username: tapio, password: "${GOOD}"`,
      bad: { auth: `username: tapio, password: "${WRONG}"` },
    }),
  },
  {
    name: "token",
    server: () => ({ config: `authorization { token: "${GOOD}" }`, good: `token: "${GOOD}"`, bad: { auth: `token: "${WRONG}"` } }),
  },
  {
    name: "nkey seed file",
    server: () => {
      const user = createUserNkey();
      const stranger = createUserNkey();
      return {
        config: `authorization { users: [ { nkey: ${user.publicKey} } ] }`,
        good: `nkey_seed_file: ${user.seedFile}`,
        bad: { auth: `nkey_seed_file: ${stranger.seedFile}` },
      };
    },
  },
  {
    name: "creds file (JWT)",
    server: () => {
      const operator = createJwtOperator();
      const account = operator.account("TAPIO", { jetstream: true });
      const stranger = createJwtUser(operator.account("OTHER", { jetstream: true }));
      return {
        config: operator.serverConfig([account]),
        good: `creds_file: ${createJwtUser(account).credsFile}`,
        bad: { auth: `creds_file: ${stranger.credsFile}` },
      };
    },
  },
  {
    name: "a URL nothing listens on",
    server: () => ({ config: "", good: "", bad: { unreachable: true } }),
  },
];

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

const rolledBack = (agent: AgentProcess) => agent.lines.filter(msgStartsWith("config reload rolled back"));

async function metric(base: string, result: "success" | "failure"): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`orchestrator_config_reloads_total{result="${result}"}`));
  return Number(line?.split(" ").at(-1));
}

async function publishedSoFar(status: string): Promise<number> {
  return (await readStatus(status))?.published ?? -1;
}

test.each(cases.map((c) => [c.name, c] as const))("%s: a reload NATS refuses is rolled back, retried on change and SIGHUP, and a fixed file applies", async (_name, c) => {
  const { config: serverConfig, good, bad } = c.server();
  const server = await startNatsServer({ config: serverConfig });
  const nowhere = `nats://127.0.0.1:${await freePort()}`;
  // timeout bounds how long a reload may take to prove the new settings
  const yaml = (auth: string, rate = 50, url = server.url) => `
orchestrator: { shutdown_timeout: 10s }
nats: { url: "${url}", timeout: 1s, reconnect_wait: 200ms, stream: { name: ROLLBACK }${auth ? `, ${auth}` : ""} }
collectors:
  synthetic: { config: { rate: ${rate} } }
`;
  const file = writeConfig(yaml(good));
  const agent = startAgent(["run", "-c", file]);
  const status = await statusUrl(agent);
  const base = status.replace(/\/status$/, "");
  await agent.waitForLog(msgStartsWith("publisher ready"), "publisher ready");

  // A bad edit: rolled back with the reason, counted, and events keep flowing through the old connection.
  const before = await publishedSoFar(status);
  const text = await Bun.file(file).text();
  rewrite(file, text.replace(yaml(good).trim(), yaml(bad.auth ?? good, 50, bad.unreachable ? nowhere : server.url).trim()));
  await waitFor(() => rolledBack(agent).length === 1, "the first rollback", 10_000);
  const reason = c.name === "a URL nothing listens on" ? /not ready within nats.timeout \(1s\)/ : /rejected the credentials: Authorization Violation/;
  expect(rolledBack(agent)[0]!.msg).toMatch(reason);
  expect(rolledBack(agent)[0]!.msg).toContain("still running on the previous config");
  expect(await metric(base, "failure")).toBe(1);
  const afterRollback = await publishedSoFar(status);
  expect(afterRollback).toBeGreaterThan(before);
  await waitFor(async () => (await publishedSoFar(status)) > afterRollback + 20, "events published through the old connection after the rollback");

  // The same text written again (a ConfigMap resync, a server since fixed) is retried: rolled back again.
  rewrite(file, await Bun.file(file).text());
  await waitFor(() => rolledBack(agent).length === 2, "the rollback after the same text was written again", 10_000);
  expect(rolledBack(agent)[1]).toMatchObject({ reload: "file change" });

  // SIGHUP retries too.
  agent.kill("SIGHUP");
  await waitFor(() => rolledBack(agent).length === 3, "the rollback after SIGHUP", 10_000);
  expect(rolledBack(agent)[2]).toMatchObject({ reload: "SIGHUP" });
  expect(await metric(base, "failure")).toBe(3);

  // The file fixed (and a collector setting changed): applied.
  rewrite(file, text.replace(yaml(good).trim(), yaml(good, 60).trim()));
  await agent.waitForLog(msgStartsWith("config reloaded"), "config reloaded", 10_000);
  expect(await metric(base, "success")).toBe(1);

  agent.kill("SIGTERM");
  expect(await exitCode(agent, 20_000)).toBe(0);
  expectAccounting(agent.final(), { in_spool: 0, lost: 0 });
  const output = JSON.stringify(agent.lines) + agent.stderr();
  for (const secret of [GOOD, WRONG]) expect(output).not.toContain(secret);
}, 40_000);
