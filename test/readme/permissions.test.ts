// The README's "NATS permissions" examples, taken from the README itself:
// a nats-server with its `authorization` block, and an operator-mode server
// with a user carrying its `nsc add user` permissions, each with its agent
// config: `check` passes every line and `run --once` delivers every event.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { REPO, runAgent, writeConfig } from "../helpers/agent.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { createJwtOperator, createJwtUser } from "../helpers/jwt.ts";

afterAll(stopAllNatsServers);

const readme = readFileSync(join(REPO, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("#### NATS permissions"), readme.indexOf("\n## ", readme.indexOf("#### NATS permissions")));

/** The first fenced block after `marker` in the section. */
function blockAfter(marker: string): string {
  const at = section.indexOf(marker);
  expect(at).toBeGreaterThan(-1);
  const match = /```[a-z]*\n([\s\S]*?)```/.exec(section.slice(at));
  return match![1]!;
}

const authorization = blockAfter("An `authorization` block");
const nsc = blockAfter("with `nsc`");
const agentNats = blockAfter("in the agent's config");
const COUNT = 20;

/** The README's agent config with the credentials of the test at hand. */
function agentConfig(server: NatsServer, auth: string): string {
  const nats = agentNats.replace(/^\s*creds_file:.*$/m, "").replace(/^nats:\n/, "");
  return writeConfig(`nats:\n  url: ${server.url}\n${nats}${auth}\ncollectors:\n  synthetic: { config: { count: ${COUNT}, rate: 0 } }\n`);
}

async function checkAndRun(server: NatsServer, config: string, reader: Parameters<typeof connect>[0]): Promise<void> {
  const check = await runAgent(["check", "--config", config]);
  expect(check.stdout.split("\n").filter((l) => l.startsWith("FAIL"))).toEqual([]);
  expect(check.code).toBe(0);
  const run = await runAgent(["run", "--once", "--config", config]);
  expect(run.code).toBe(0);
  const nc = await connect({ servers: server.url, ...reader });
  try {
    expect((await (await jetstreamManager(nc)).streams.info("TAPIO_EVENTS")).state.messages).toBe(COUNT);
  } finally {
    await nc.close();
  }
}

test("the authorization block's user: check passes, run --once delivers every event", async () => {
  // The README's block puts its user in the default account, which the reader here joins too.
  const server = await startNatsServer({ config: authorization.replace("users = [", "users = [\n    { user: reader, password: r }") });
  const user = /user: ([^,\s]+), password: "([^"]+)"/.exec(authorization)!;
  await checkAndRun(server, agentConfig(server, `  username: ${user[1]}\n  password: ${user[2]}\n`), { user: "reader", pass: "r" });
});

test("the nsc user's permissions (JWT): check passes, run --once delivers every event", async () => {
  const list = (flag: string) => new RegExp(`${flag} '([^']+)'`).exec(nsc)![1]!.split(",");
  const operator = createJwtOperator();
  const account = operator.account("TAPIO", { jetstream: true });
  const user = createJwtUser(account, "tapio-collectors", { pub: list("--allow-pub"), sub: list("--allow-sub") });
  const reader = createJwtUser(account, "reader");
  const server = await startNatsServer({ config: operator.serverConfig([account]) });
  await checkAndRun(server, agentConfig(server, `  creds_file: ${user.credsFile}\n`), { authenticator: credsAuthenticator(readFileSync(reader.credsFile)) });
});
