// `tapio-collectors emit` end to end: against the running agent (one event,
// NDJSON from stdin, a token, problems named by stdin line, an agent that is
// not there), and against a stand-in API for the 429 retries.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers } from "../../helpers/nats-server.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { REPO, sourceCommand, writeConfig } from "../../helpers/agent.ts";
import { readStream } from "../../publish/fixtures.ts";
import { killAllAgents } from "../../fault/harness.ts";
import { startIngestAgent } from "./helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

async function emit(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...sourceCommand(), "emit", ...args], { cwd: REPO, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("tapio-collectors emit", () => {
  test("one event from flags, NDJSON from stdin (lines keep their own source), with a token; the agent's config names the socket", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const dir = makeTempDir("emit");
    const socket = join(dir, "ingest.sock");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "t0ken\n");
    const api = await startIngestAgent({ nats: nats.url, stream: "EMIT", ingest: `listen: "unix://${socket}", token_file: "${tokenFile}"` });

    expect(await emit(["--socket", socket, "--token-file", tokenFile, "--source", "backup", "--type", "node.backup_failed", "--severity", "high", "--data", '{"custom":{"volume":"/data"}}', "--wait"])).toEqual({ code: 0, stdout: "", stderr: "" });
    const lines = ['{"type":"node.check","event_data":{"custom":{"n":"1"}}}', "", '{"type":"node.check","source":"other"}', '{"type":"node.check","severity":"low"}'].join("\n");
    // --config: the socket and token_file from the agent's own config file
    expect(await emit(["--config", api.configFile, "--source", "script", "--wait"], lines)).toEqual({ code: 0, stdout: "", stderr: "" });

    const got = await readStream(nats.url, "EMIT");
    expect(got.map((m) => m.subject.replace("tapio.events.ingest.", ""))).toEqual(["backup", "script", "other", "script"]);
    expect(JSON.parse(got[0]!.data)).toMatchObject({ type: "node.backup_failed", severity: "high", source: "ingest", event_data: { custom: { volume: "/data" } } });
    expect(JSON.parse(got[3]!.data)).toMatchObject({ type: "node.check", severity: "low" });

    // without the token
    const refused = await emit(["--socket", socket, "--type", "node.check"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe("tapio-collectors: the ingest API answered 401: missing or wrong bearer token: send Authorization: Bearer <the token in token_file>\n");
  }, 40_000);

  test("bad lines: every problem printed with its stdin line, nothing of that batch accepted, exit 1", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const api = await startIngestAgent({ nats: nats.url, stream: "EMIT_BAD" });
    const stdin = ['{"type":"node.check"}', "not json", '{"type":"nodecheck"}', "", '{"type":"node.check","event_id":"x"}'].join("\n");
    const r = await emit(["--url", api.address, "--source", "s"], stdin);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n")).toEqual([
      "tapio-collectors: the ingest API answered 400: 3 of 4 event(s) invalid; none was accepted",
      expect.stringMatching(/^ {2}stdin line 2: invalid JSON: /),
      '  stdin line 3: type: type is dotted words, e.g. "node.check_failed"',
      "  stdin line 5: event_id: set by the agent; an input may not carry it",
      "",
    ]);
    const one = await emit(["--url", api.address, "--type", "Bad Type"]);
    expect(one).toMatchObject({ code: 1, stderr: expect.stringContaining('  event 0: type: type is dotted words, e.g. "node.check_failed"') });
  }, 30_000);

  test("no agent there: says where it looked and why, exit 1; usage errors exit 2", async () => {
    const dir = makeTempDir("emit-none");
    const none = await emit(["--socket", join(dir, "none.sock"), "--type", "a.b"]);
    expect(none).toEqual({ code: 1, stdout: "", stderr: `tapio-collectors: cannot reach the ingest API at unix://${join(dir, "none.sock")}: no such socket (is the agent running with an ingest collector listening there?)\n` });
    const refused = await emit(["--url", "127.0.0.1:1", "--type", "a.b"]);
    expect(refused.stderr).toBe("tapio-collectors: cannot reach the ingest API at http://127.0.0.1:1: connection refused (is the agent running with an ingest collector listening there?)\n");
    expect((await emit(["--socket", "a", "--url", "b", "--type", "a.b"])).code).toBe(2);
    expect((await emit(["--severity", "loud", "--type", "a.b"])).stderr).toStartWith("tapio-collectors: emit: --severity: expected one of debug, info");
    expect((await emit(["--type", "a.b", "--data", "[1]"])).code).toBe(2);
    expect((await emit(["--data", "{}"])).stderr).toStartWith("tapio-collectors: emit: --severity and --data describe the event of --type");
    const noIngest = writeConfig("collectors:\n  synthetic: {}\n");
    expect((await emit(["--config", noIngest, "--type", "a.b"])).stderr).toBe(`tapio-collectors: emit: ${noIngest} has no ingest collector; pass --socket or --url\n`);
  }, 30_000);

  test("429: waits Retry-After and sends again, a bounded number of times", async () => {
    let requests = 0;
    let fullFor = 2;
    const api = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => {
        requests++;
        if (requests <= fullFor) return Response.json({ error: "the agent's queue is full" }, { status: 429, headers: { "retry-after": "0" } });
        return Response.json({ accepted: 1 }, { status: 202 });
      },
    });
    try {
      const ok = await emit(["--url", api.url.origin, "--type", "a.b"]);
      expect(ok.code).toBe(0);
      expect(requests).toBe(3);
      expect(ok.stderr.split("\n").filter(Boolean)).toEqual([
        "tapio-collectors emit: the agent's queue is full (429); trying again in 0s (1 of 5)",
        "tapio-collectors emit: the agent's queue is full (429); trying again in 0s (2 of 5)",
      ]);
      requests = 0;
      fullFor = Infinity;
      const gaveUp = await emit(["--url", api.url.origin, "--type", "a.b"]);
      expect(gaveUp.code).toBe(1);
      expect(requests).toBe(6);
      expect(gaveUp.stderr).toEndWith("tapio-collectors: the ingest API answered 429: the agent's queue is full\n  (still full after 5 tries)\n");
    } finally {
      api.stop(true);
    }
  }, 30_000);
});
