// Known secrets fed through every path that prints something: config errors
// next to them (validate, print-config, run, a reload), a malformed URL
// holding them, rejected credentials of each kind at start and on reload,
// /status, /readyz, /metrics, and a fault whose message and stack quote
// them. All output (stdout, stderr, HTTP answers) is searched for every
// secret, also percent-encoded and JSON-escaped.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runAgent, writeConfig } from "../helpers/agent.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { createUserNkey } from "../helpers/nkeys.ts";
import { createJwtOperator, createJwtUser } from "../helpers/jwt.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { exitCode, killAllAgents, msgStartsWith, startAgent, statusUrl, type AgentProcess } from "../fault/harness.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

const PASSWORD = 'Pw"9f3K\\/must-not-leak';
const TOKEN = "Tk-77aa-must-not-leak";
const URL_PASSWORD = "Url:Pw@x1/must not leak%";
const NUMERIC = "918273645";
const WRONG = "Wr0ng-guess-must-not-leak";
const SECRETS = [PASSWORD, TOKEN, URL_PASSWORD, NUMERIC, WRONG];

/** Each secret as written, JSON-escaped (in a log line) and percent-encoded (in a URL). */
function forms(secret: string): string[] {
  return [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
}

function expectNoSecrets(output: string, secrets: readonly string[] = SECRETS): void {
  for (const secret of secrets) for (const form of forms(secret)) {
    if (output.includes(form)) throw new Error(`output shows ${JSON.stringify(form)} (of secret ${JSON.stringify(secret)}):\n${output}`);
  }
}

const yamlString = (s: string) => JSON.stringify(s);
const encoded = encodeURIComponent(URL_PASSWORD);

/** Configs each with an error next to a secret, and what the error must still say. */
const BAD_CONFIGS: Array<[string, string, RegExp]> = [
  ["a numeric password", `nats: { username: tapio, password: ${NUMERIC}, timeout: xyz }`, /nats\.password: expected a string in quotes, got a number \(not shown\)/],
  ["a numeric token", `nats:\n  token: ${NUMERIC}\n`, /nats\.token: expected a string in quotes/],
  ["an invalid URL with user:password", `nats: { url: "nats://tapio:${URL_PASSWORD}@bad host:4222" }`, /nats\.url: expected a NATS server URL .* got "nats:\/\/tapio:\*\*\*@bad host:4222"/],
  ["an invalid URL with a token", `nats: { url: ["nats://a:4222", "tls://${TOKEN}@h:4222/path"] }`, /nats\.url\.1: expected a NATS server URL .* got "tls:\/\/\*\*\*@h:4222\/path"/],
  ["URL credentials and a token", `nats: { url: "nats://tapio:${encoded}@h:4222", token: ${yamlString(TOKEN)} }`, /set only one authentication method, found credentials in url, token/],
  ["two URLs, different credentials", `nats: { url: ["nats://tapio:${encoded}@a:4222", "nats://tapio:${WRONG}@b:4222"] }`, /the URLs carry different credentials/],
  ["a bad environment reference inside a token", `nats:\n  token: "\${${TOKEN}}"\n`, /nats\.token: invalid reference/],
  ["a password and a bad value next to it", `nats:\n  username: tapio\n  password: ${yamlString(PASSWORD)}\n  max_in_flight: many\n`, /nats\.max_in_flight: expected an integer/],
  ["a misspelt key holding a secret", `nats:\n  pasword: ${yamlString(PASSWORD)}\n`, /unknown key "pasword" \(did you mean "password"\?\)/],
  ["an unterminated quoted secret", `nats:\n  password: "${TOKEN}\n  username: x\n`, /invalid YAML/],
  ["a duplicate secret key", `nats:\n  token: ${yamlString(TOKEN)}\n  token: ${yamlString(WRONG)}\n`, /nats.token: duplicate key "token"|invalid YAML: Map keys must be unique/],
];

describe("config errors next to secrets", () => {
  for (const [name, yaml, says] of BAD_CONFIGS) {
    test(`${name}: validate, print-config and run say what is wrong and show no secret`, async () => {
      const file = writeConfig(`${yaml}\n`);
      const commands = [["validate", "-c", file], ["print-config", "-c", file], ["run", "--once", "-c", file]];
      for (const r of await Promise.all(commands.map((command) => runAgent(command)))) {
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(says);
        expectNoSecrets(r.stdout + r.stderr);
      }
    });
  }

  test("print-config of a valid config shows every secret as ***", async () => {
    const file = writeConfig(`nats: { url: ["nats://tapio:${encoded}@a:4222", "nats://b:4222"] }\n`);
    const r = await runAgent(["print-config", "-c", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("password: \"***\"");
    expect(r.stdout).toContain("- nats://a:4222");
    expectNoSecrets(r.stdout + r.stderr);
    const tokenFile = writeConfig(`nats: { token: ${yamlString(TOKEN)} }\n`);
    const t = await runAgent(["print-config", "-c", tokenFile]);
    expect(t.stdout).toContain("token: \"***\"");
    expectNoSecrets(t.stdout + t.stderr);
  });
});

describe("rejected credentials at start", () => {
  test("each method, wrong: exit 1 with the reason, no secret shown (password, token, URL, nkey seed, creds seed)", async () => {
    const nkey = createUserNkey();
    const strangerNkey = createUserNkey();
    const operator = createJwtOperator();
    const account = operator.account("TAPIO");
    const strangerCreds = createJwtUser(operator.account("OTHER"));
    const passwordServer = await startNatsServer({ jetstream: false, config: `authorization { users: [ { user: tapio, password: ${yamlString(PASSWORD)} }, { nkey: ${nkey.publicKey} } ] }` });
    const jwtServer = await startNatsServer({ jetstream: false, config: operator.serverConfig([account]) });
    const strangerSeed = readFileSync(strangerNkey.seedFile, "utf8").trim();
    const cases = [
      `url: "${passwordServer.url}", username: tapio, password: ${yamlString(WRONG)}`,
      `url: "nats://tapio:${encodeURIComponent(WRONG)}@127.0.0.1:${passwordServer.port}"`,
      `url: "nats://${encodeURIComponent(TOKEN)}@127.0.0.1:${passwordServer.port}"`,
      `url: "${passwordServer.url}", nkey_seed_file: ${strangerNkey.seedFile}`,
      `url: "${jwtServer.url}", creds_file: ${strangerCreds.credsFile}`,
    ];
    for (const nats of cases) {
      const file = writeConfig(`nats: { ${nats}, mode: core, timeout: 1s }\ncollectors:\n  synthetic: { config: { rate: 10 } }\n`);
      const r = await runAgent(["run", "-c", file]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("rejected the credentials: Authorization Violation");
      expectNoSecrets(r.stdout + r.stderr, [...SECRETS, strangerSeed, strangerCreds.seed]);
    }
  }, 60_000);
});

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function httpTexts(base: string): Promise<string> {
  const texts = await Promise.all(["/status", "/readyz", "/metrics", "/healthz"].map(async (p) => (await fetch(`${base}${p}`)).text()));
  return texts.join("\n");
}

describe("a running agent", () => {
  test("reload failures (rejected credentials, errors next to secrets), /status and a fault quoting secrets show none of them", async () => {
    const server = await startNatsServer({ config: `authorization { users: [ { user: tapio, password: ${yamlString(URL_PASSWORD)} } ] }` });
    const good = `nats: { url: "nats://tapio:${encoded}@127.0.0.1:${server.port}", timeout: 1s, stream: { name: SECRETS } }\ncollectors:\n  synthetic: { config: { rate: 20 } }\n`;
    const file = writeConfig(good);
    const spoolAndHttp = readFileSync(file, "utf8").slice(good.length);
    // a library error quoting a config value, with its stack: the last guard must hide it
    const faultMessage = `connect failed for nats://tapio:${URL_PASSWORD}@127.0.0.1 with ${encoded} and ${URL_PASSWORD}`;
    const previous = process.env.FAULT_MESSAGE;
    process.env.FAULT_MESSAGE = faultMessage;
    let agent: AgentProcess;
    try {
      agent = startAgent(["run", "-c", file], [process.execPath, join(import.meta.dir, "agent-with-leaky-fault.ts")]);
    } finally {
      if (previous === undefined) delete process.env.FAULT_MESSAGE;
      else process.env.FAULT_MESSAGE = previous;
    }
    const base = (await statusUrl(agent)).replace(/\/status$/, "");
    await agent.waitForLog(msgStartsWith("publisher ready"), "publisher ready");
    let http = await httpTexts(base);

    // A wrong URL password: rolled back.
    rewrite(file, good.replace(encoded, encodeURIComponent(WRONG)) + spoolAndHttp);
    await waitFor(() => agent.lines.filter(msgStartsWith("config reload rolled back")).length === 1, "the rollback", 10_000);
    // Errors next to secrets in a reload.
    for (const [, yaml] of BAD_CONFIGS.slice(0, 4)) {
      const failures = agent.lines.filter(msgStartsWith("config reload failed")).length;
      rewrite(file, `${yaml}\n${spoolAndHttp}`);
      await waitFor(() => agent.lines.filter(msgStartsWith("config reload failed")).length === failures + 1, "the reload failure", 10_000);
    }
    http += await httpTexts(base);
    expect(http).toContain('orchestrator_config_reloads_total{result="failure"} 5');

    agent.kill("SIGUSR2");
    expect(await exitCode(agent, 20_000)).toBe(1);
    const fault = agent.lines.find((l) => l.level === "fatal" && /outside every collector/.test(l.msg));
    expect(fault?.msg).toContain("connect failed for nats://tapio:***@127.0.0.1 with *** and ***");
    expect(fault?.stack).toContain("agent-with-leaky-fault.ts");
    expectNoSecrets(JSON.stringify(agent.lines) + agent.stderr() + http);
  }, 60_000);
});
