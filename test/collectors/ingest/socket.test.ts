// Where the ingest API listens: a unix socket with the configured mode (and
// what that lets another user do), a stale socket replaced, a bad path
// refused with a clear error, and a TCP address only as written. Once with
// the compiled binary.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers, freePort } from "../../helpers/nats-server.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { REPO, sourceCommand, writeConfig } from "../../helpers/agent.ts";
import { readStream } from "../../publish/fixtures.ts";
import { exitCode, killAllAgents, startAgent } from "../../fault/harness.ts";
import { AS_NOBODY } from "../../spool/fixtures.ts";
import { client, configText, input, ndjson, startIngestAgent } from "./helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

let seq = 0;
const streamName = () => `SOCK_${seq++}`;

/** The agent's "collector ingest failed: ..." line. */
async function startFailure(agent: ReturnType<typeof startAgent>): Promise<string> {
  const line = await agent.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("collector ingest failed"), "the ingest collector failing");
  return line.err as string;
}

describe("ingest over a unix socket", () => {
  test("listens with socket_mode (0660 by default); curl --unix-socket works; the socket is removed on stop", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const stream = streamName();
    const dir = makeTempDir("ingest-sock");
    const socket = join(dir, "ingest.sock");
    const api = await startIngestAgent({ nats: nats.url, stream, ingest: `listen: "unix://${socket}"` });
    expect(api.address).toBe(`unix://${socket}`);
    const stat = statSync(socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o660);
    // The README's example, as written there.
    const curl = Bun.spawnSync(["curl", "-sS", "--unix-socket", socket, "-H", "Content-Type: application/x-ndjson", "--data-binary", "@-", "http://localhost/v1/events?wait=published"], {
      stdin: new TextEncoder().encode(ndjson([input("script", 0), input("script", 1)])),
    });
    expect(JSON.parse(curl.stdout.toString())).toEqual({ accepted: 2 });
    expect((await readStream(nats.url, stream)).map((m) => m.subject)).toEqual(["tapio.events.ingest.script", "tapio.events.ingest.script"]);
    api.agent.kill("SIGTERM");
    expect(await exitCode(api.agent, 15_000)).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 30_000);

  test("socket_mode says who may send: another user is refused with 0660, let in with 0666", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const stream = streamName();
    for (const [mode, allowed] of [["0660", false], ["0666", true]] as const) {
      const socket = join(makeTempDir("ingest-perm"), "ingest.sock");
      const api = await startIngestAgent({ nats: nats.url, stream, ingest: `listen: "unix://${socket}", socket_mode: "${mode}"` });
      expect(statSync(socket).mode & 0o777).toBe(Number.parseInt(mode, 8));
      // `emit` as the user nobody (it can reach the directory, CAP_DAC_READ_SEARCH; connecting needs write access to the socket)
      const emit = Bun.spawnSync([...AS_NOBODY, ...sourceCommand(), "emit", "--socket", socket, "--source", "nobody", "--type", "node.check"], { cwd: REPO });
      if (allowed) expect({ code: emit.exitCode, stderr: emit.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      else {
        expect(emit.exitCode).toBe(1);
        expect(emit.stderr.toString()).toBe(`tapio-collectors: cannot reach the ingest API at unix://${socket}: permission denied for this user (socket_mode and the socket's group say who may send)\n`);
      }
      api.agent.kill("SIGTERM");
      await exitCode(api.agent, 15_000);
    }
    expect((await readStream(nats.url, stream)).map((m) => m.subject)).toEqual(["tapio.events.ingest.nobody"]);
  }, 40_000);

  test("a socket left by a killed agent is replaced; one a live agent listens on, or a file that is not a socket, is refused", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const stream = streamName();
    const dir = makeTempDir("ingest-stale");
    const socket = join(dir, "ingest.sock");
    const first = await startIngestAgent({ nats: nats.url, stream, ingest: `listen: "unix://${socket}"` });
    first.agent.kill("SIGKILL");
    await first.agent.exited;
    expect(statSync(socket).isSocket()).toBe(true);

    const second = await startIngestAgent({ nats: nats.url, stream, ingest: `listen: "unix://${socket}"` });
    expect((await second.post(input("after-stale", 0), { wait: true })).status).toBe(202);

    // a second agent on the same socket (its own spool)
    const third = startAgent(["-c", writeConfig(configText({ nats: nats.url, stream }, makeTempDir("ingest-third"), `listen: "unix://${socket}"`))]);
    expect(await startFailure(third)).toBe(`cannot listen on unix://${socket}: another process listens on it (a second agent?)`);
    // the first one still answers
    expect((await second.post(input("after-stale", 1), { wait: true })).status).toBe(202);

    const plain = join(dir, "not-a-socket");
    writeFileSync(plain, "data");
    const fourth = startAgent(["-c", writeConfig(configText({ nats: nats.url, stream }, makeTempDir("ingest-fourth"), `listen: "unix://${plain}"`))]);
    expect(await startFailure(fourth)).toBe(`cannot listen on unix://${plain}: it exists and is not a socket (move it away, or choose another path)`);
  }, 40_000);

  test("a directory that does not exist: a clear error, the collector failed (and retried), the agent goes on", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const missing = join(makeTempDir("ingest-missing"), "no", "such");
    const agent = startAgent(["-c", writeConfig(configText({ nats: nats.url, stream: streamName() }, makeTempDir("ingest-m"), `listen: "unix://${missing}/ingest.sock"`))]);
    expect(await startFailure(agent)).toBe(`cannot listen on unix://${missing}/ingest.sock: the directory ${missing} does not exist (create it, or mount a volume there)`);
  }, 30_000);

  test("a config error: a relative socket path, or one too long for a unix socket", async () => {
    for (const listen of ["unix://relative.sock", `unix:///${"x".repeat(120)}.sock`]) {
      const r = Bun.spawnSync([...sourceCommand(), "validate", "-c", writeConfig(`collectors:\n  ingest: { config: { listen: "${listen}" } }\n`)], { cwd: REPO });
      expect(r.exitCode).toBe(2);
      expect(r.stderr.toString()).toContain('collectors.ingest.config.listen: expected "unix:///absolute/path.sock" (up to 107 bytes) or an address like 127.0.0.1:9091');
    }
  }, 30_000);
});

describe("tapio-collectors check", () => {
  test("probes the token_file and the socket's directory", async () => {
    const { ingestFactory } = await import("../../../src/collectors/ingest/index.ts");
    const v = await import("valibot");
    const dir = makeTempDir("ingest-check");
    const probe = async (config: Record<string, unknown>) => {
      const results: string[] = [];
      for (const check of ingestFactory.sources!(v.parse(ingestFactory.configSchema, config))) {
        results.push(await check.probe(AbortSignal.timeout(1000)).then(() => `ok ${check.source}`, (err: Error) => `FAIL ${err.message}`));
      }
      return results;
    };
    expect(await probe({ listen: "unix:///nonexistent/dir/ingest.sock", token_file: "/nonexistent/token" })).toEqual([
      "FAIL /nonexistent/token does not exist (is the host path mounted?)",
      "FAIL /nonexistent/dir does not exist: the ingest socket is created there",
    ]);
    writeFileSync(join(dir, "token"), "t\n");
    expect(await probe({ listen: `unix://${dir}/ingest.sock`, token_file: join(dir, "token") })).toEqual([`ok ${join(dir, "token")}`, `ok ${dir}`]);
    expect(await probe({ listen: "127.0.0.1:9091" })).toEqual([]);
  });
});

describe("ingest over TCP", () => {
  test("listens only on the address written: 127.0.0.1 is not 127.0.0.2", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const port = await freePort();
    const api = await startIngestAgent({ nats: nats.url, stream: streamName(), ingest: `listen: "127.0.0.1:${port}"` });
    expect(api.address).toBe(`http://127.0.0.1:${port}`);
    expect((await api.post(input("a", 0))).status).toBe(202);
    const other = await client(`http://127.0.0.2:${port}`)(input("a", 1)).then((r) => r.status, (err: Error & { code?: string }) => err.code);
    expect(other).toBe("ECONNREFUSED");
  }, 30_000);
});

describe("ingest in the compiled binary", () => {
  test("the binary serves the API on a unix socket, and its emit command sends to it", async () => {
    const binary = join(makeTempDir("ingest-bin"), "tapio-collectors");
    const build = Bun.spawnSync([process.execPath, "build.ts", "--outfile", binary], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode, build.stderr.toString()).toBe(0);
    const nats = await startNatsServer({ jetstream: true });
    const stream = streamName();
    const socket = join(makeTempDir("ingest-bin-sock"), "ingest.sock");
    const api = await startIngestAgent({ nats: nats.url, stream, ingest: `listen: "unix://${socket}"`, command: [binary] });
    expect((await api.post([input("bin", 0), input("bin", 1)], { ndjson: true, wait: true })).body).toEqual({ accepted: 2 });
    const emit = Bun.spawnSync([binary, "emit", "--socket", socket, "--source", "bin-cli", "--type", "node.check", "--data", '{"custom":{"k":"v"}}', "--wait"]);
    expect({ code: emit.exitCode, stderr: emit.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    const got = await readStream(nats.url, stream);
    expect(got.map((m) => m.subject)).toEqual(["tapio.events.ingest.bin", "tapio.events.ingest.bin", "tapio.events.ingest.bin-cli"]);
    expect(JSON.parse(got[2]!.data)).toMatchObject({ type: "node.check", source: "ingest", event_data: { custom: { k: "v" } } });
  }, 180_000);
});
