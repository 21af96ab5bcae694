// Every answer of the ingest API, from the running agent (bun src/main.ts)
// against a real nats-server in JetStream mode.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { readStream } from "../../publish/fixtures.ts";
import { exitCode, killAllAgents, msgStartsWith, streamCount } from "../../fault/harness.ts";
import { input, startIngestAgent } from "./helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

let stream = 0;
/** A server and a fresh stream name for each test. */
async function server(config?: string): Promise<{ nats: NatsServer; stream: string }> {
  return { nats: await startNatsServer({ jetstream: true, config }), stream: `INGEST_${stream++}` };
}

describe("ingest API: accepted", () => {
  test("202 for an object, an array and NDJSON; each event on <subject>.ingest.<source>, with the agent's id, source and collector_name", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream });
    const first = await api.post(input("node-check", 0, { timestamp: "2026-11-25T12:00:00.123456789Z", metadata: { node_name: "n1" } }), { wait: true });
    expect(first).toMatchObject({ status: 202, body: { accepted: 1 } });
    expect((await api.post([input("cni.calico", 1), input("node-check", 2)], { wait: true })).body).toEqual({ accepted: 2 });
    expect((await api.post([input("a", 3), input("b", 4), input("a", 5)], { ndjson: true, wait: true })).body).toEqual({ accepted: 3 });

    // Answered after ?wait=published: in the stream already, no waiting here.
    const got = await readStream(nats.url, stream);
    expect(got.map((m) => m.subject)).toEqual(["node-check", "cni.calico", "node-check", "a", "b", "a"].map((s) => `tapio.events.ingest.${s}`));
    const events = got.map((m) => JSON.parse(m.data));
    expect(events.map((e) => e.event_data.custom.seq)).toEqual(["0", "1", "2", "3", "4", "5"]);
    expect(events[0]).toMatchObject({
      timestamp: "2026-11-25T12:00:00.123456789Z",
      type: "node.check_failed",
      source: "ingest",
      severity: "warning",
      metadata: { node_name: "n1", attributes: { collector_name: "ingest" } },
    });
    for (const [i, m] of got.entries()) expect(m.msgId).toBe(events[i].event_id);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(6);
  }, 30_000);

  test("202 without ?wait once queued; the events follow into the stream", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream });
    expect(await api.post(Array.from({ length: 50 }, (_, i) => input("bulk", i)), { ndjson: true })).toMatchObject({ status: 202, body: { accepted: 50 } });
    await waitFor(async () => (await streamCount(nats.url, stream)) === 50, "50 events in the stream");
  }, 30_000);
});

describe("ingest API: refused", () => {
  test("400: every bad event's index and reason, and none of the request in the stream (all or nothing)", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream });
    const bad = await api.post([input("ok", 0), { type: "x.y" }, input("ok", 2, { event_id: "mine" }), input("Bad Name", 3), input("ok", 4, { metadata: { pid: "12" } })], { wait: true });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: "4 of 5 event(s) invalid; none was accepted", invalid_count: 4 });
    expect(bad.body.invalid.map((e: { index: number }) => e.index)).toEqual([1, 2, 3, 4]);
    expect(bad.body.invalid[0].problems[0]).toStartWith("source: required");
    expect(bad.body.invalid[1].problems).toEqual(["event_id: set by the agent; an input may not carry it"]);
    expect(bad.body.invalid[3].problems[0]).toStartWith("metadata.pid: ");

    const lines = await api.post('{"source":"ok","type":"a.b"}\nnot json\n', { headers: { "content-type": "application/x-ndjson" } });
    expect(lines.status).toBe(400);
    expect(lines.body.invalid).toEqual([{ index: 1, line: 2, problems: [expect.stringMatching(/^invalid JSON/)] }]);

    const many = await api.post(Array.from({ length: 150 }, () => ({ type: "x.y" })));
    expect(many.status).toBe(400);
    expect(many.body.invalid_count).toBe(150);
    expect(many.body.invalid).toHaveLength(100);

    expect((await api.post("{")).body.error).toStartWith("invalid JSON");
    expect((await api.post("")).status).toBe(400);
    expect((await api.post(input("a", 0), { query: "?wait=soon" })).body).toEqual({ error: 'wait: expected "published", got "soon"' });
    // a good request after them: the only event in the stream
    expect((await api.post(input("ok", 9), { wait: true })).status).toBe(202);
    expect((await readStream(nats.url, stream)).map((m) => JSON.parse(m.data).event_data.custom.seq)).toEqual(["9"]);
    // counted as parse errors of the collector
    const status = (await (await fetch(`${await statusUrlOf(api.agent)}/status`)).json()) as { collectors: Array<{ name: string; parse_errors: unknown }> };
    expect(status.collectors.find((c) => c.name === "ingest")?.parse_errors).toMatchObject({ request: 5 });
  }, 30_000);

  test("401 without the token or with a wrong one; the token file is read again when it changes", async () => {
    const { nats, stream } = await server();
    const dir = (await import("../../helpers/cleanup.ts")).makeTempDir("ingest-token");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "s3cret-one\n");
    const api = await startIngestAgent({ nats: nats.url, stream, ingest: `token_file: "${tokenFile}"` });
    const none = await api.post(input("a", 0));
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toStartWith("Bearer");
    expect((await api.post(input("a", 0), { token: "s3cret-on" })).status).toBe(401);
    expect((await api.post(input("a", 0), { headers: { authorization: "Basic czNjcmV0LW9uZQ==" } })).status).toBe(401);
    expect((await api.post(input("a", 1), { token: "s3cret-one" })).status).toBe(202);

    writeFileSync(tokenFile, "s3cret-two\n");
    await waitFor(async () => (await api.post(input("a", 2), { token: "s3cret-two" })).status === 202, "the new token accepted", 5000, 200);
    expect((await api.post(input("a", 3), { token: "s3cret-one" })).status).toBe(401);
    await waitFor(async () => (await streamCount(nats.url, stream)) === 2, "the two events sent with the right token");

    // The file gone: the last token stays in use, and health says why; back, and health recovers.
    const ingest = async () => ((await (await fetch(`${await statusUrlOf(api.agent)}/status`)).json()) as { collectors: Array<{ name: string; state: string; last_error?: string }> }).collectors.find((c) => c.name === "ingest")!;
    unlinkSync(tokenFile);
    await waitFor(async () => (await api.post(input("a", 4), { token: "s3cret-two" })).status === 202 && (await ingest()).state === "degraded", "degraded, the last token still in use", 5000, 200);
    expect((await ingest()).last_error).toBe(`token_file ${tokenFile}: does not exist; the last token read stays in use`);
    writeFileSync(tokenFile, "s3cret-three\n");
    await waitFor(async () => (await api.post(input("a", 5), { token: "s3cret-three" })).status === 202, "the third token accepted", 5000, 200);
    expect((await ingest()).state).toBe("running");
  }, 30_000);

  test("an unreadable token_file fails the collector's start with a clear error", async () => {
    const { nats, stream } = await server();
    const { startAgent } = await import("../../fault/harness.ts");
    const { writeConfig } = await import("../../helpers/agent.ts");
    const agent = startAgent(["-c", writeConfig(`nats: { url: "${nats.url}", stream: { name: ${stream} } }\ncollectors:\n  ingest: { config: { listen: "127.0.0.1:0", token_file: /nonexistent/token } }\n`)]);
    const line = await agent.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("collector ingest failed"), "the collector failing");
    expect(line.err).toBe("token_file /nonexistent/token: does not exist");
  }, 30_000);

  test("413 over max_body: by Content-Length before reading, and while a chunked body streams in (never buffered whole)", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream, ingest: "max_body: 4KiB" });
    const big = Array.from({ length: 60 }, (_, i) => input("big", i));
    const answer = await api.post(big, { ndjson: true });
    expect(answer.status).toBe(413);
    expect(answer.body.error).toBe("the body is larger than max_body (4096 bytes): send fewer events per request");
    // A body that never ends: the answer comes once max_body bytes arrived.
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      async pull(c) {
        sent += 1024;
        c.enqueue(new TextEncoder().encode(`${JSON.stringify(input("x", sent)).padEnd(1023)}\n`));
        await Bun.sleep(5);
      },
    });
    const response = await fetch(`${api.address}/v1/events`, { method: "POST", body: endless, headers: { "content-type": "application/x-ndjson" }, duplex: "half" } as RequestInit);
    expect(response.status).toBe(413);
    expect(sent).toBeLessThan(64 * 1024);
    expect((await streamCount(nats.url, stream)) ?? 0).toBe(0);
  }, 30_000);

  test("404 for other paths, 405 for other methods", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream });
    expect(await api.post(input("a", 0), { path: "/v1/event" })).toMatchObject({ status: 404, body: { error: "not found: the API is POST /v1/events" } });
    const get = await api.post(undefined, { method: "GET" });
    expect(get).toMatchObject({ status: 405 });
    expect(get.headers.get("allow")).toBe("POST");
    expect((await api.post(input("a", 0), { method: "PUT" })).status).toBe(405);
  }, 30_000);
});

describe("ingest API: backpressure, drops and shutdown", () => {
  test("429 with Retry-After while the queue is full, nothing of that request accepted; taken again once it has room", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream, orchestrator: "workers: 1, batch_size: 1, buffer_size: 5", spool: "{ enabled: false }" });
    expect((await api.post(input("a", 0), { wait: true })).status).toBe(202);
    await nats.kill("SIGSTOP");
    try {
      // one in the worker's hands, five in the queue
      expect((await api.post(input("a", 1))).status).toBe(202);
      await Bun.sleep(50);
      expect((await api.post([2, 3, 4, 5, 6].map((i) => input("a", i)))).status).toBe(202);
      const full = await api.post([input("a", 7), input("a", 8)]);
      expect(full.status).toBe(429);
      expect(full.headers.get("retry-after")).toBe("1");
      expect(full.body.error).toBe("the agent's queue is full: none of the 2 event(s) was accepted; send them again after 1s");
      // more than the queue can ever hold: no use retrying
      expect((await api.post(Array.from({ length: 6 }, (_, i) => input("a", 100 + i)))).status).toBe(413);
    } finally {
      await nats.kill("SIGCONT");
    }
    await waitFor(async () => (await api.post([input("a", 7), input("a", 8)])).status === 202, "room again", 15_000, 200);
    await waitFor(async () => (await streamCount(nats.url, stream)) === 9, "every accepted event in the stream", 15_000);
    const seqs = (await readStream(nats.url, stream)).map((m) => Number(JSON.parse(m.data).event_data.custom.seq)).sort((a, b) => a - b);
    expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  }, 60_000);

  test("?wait=published: an event NATS refuses (over max_payload) is answered 502 naming the reason; the others are published", async () => {
    const { nats, stream } = await server("max_payload: 4096");
    const api = await startIngestAgent({ nats: nats.url, stream });
    const answer = await api.post([input("a", 0), input("a", 1, { event_data: { custom: { pad: "x".repeat(6000) } } }), input("a", 2)], { wait: true });
    expect(answer.status).toBe(502);
    expect(answer.body).toMatchObject({ accepted: 3, dropped: [{ index: 1, reason: "max_payload" }] });
    expect(answer.body.error).toStartWith("1 of 3 accepted event(s) were dropped, not published: max_payload (NATS refused it");
    expect((await readStream(nats.url, stream)).map((m) => JSON.parse(m.data).event_data.custom.seq)).toEqual(["0", "2"]);
  }, 30_000);

  test("?wait=published past wait_timeout: 504, the events still delivered", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream, ingest: "wait_timeout: 1s", spool: "{ enabled: false }" });
    expect((await api.post(input("a", 0), { wait: true })).status).toBe(202);
    await nats.kill("SIGSTOP");
    let answer;
    try {
      answer = await api.post(input("a", 1), { wait: true });
    } finally {
      await nats.kill("SIGCONT");
    }
    expect(answer.status).toBe(504);
    expect(answer.body).toMatchObject({ accepted: 1 });
    expect(answer.body.error).toContain("do not send them again");
    await waitFor(async () => (await streamCount(nats.url, stream)) === 2, "the late event in the stream", 15_000);
  }, 30_000);

  test("503 while shutting down; the request under way is answered before the agent exits", async () => {
    const { nats, stream } = await server();
    const api = await startIngestAgent({ nats: nats.url, stream, spool: undefined, natsExtra: "timeout: 10s" });
    expect((await api.post(input("a", 0), { wait: true })).status).toBe(202);
    await nats.kill("SIGSTOP");
    // held: NATS does not answer, and spill_after (2s) has not passed yet
    const held = api.post(input("a", 1), { wait: true });
    await Bun.sleep(100);
    api.agent.kill("SIGTERM");
    await api.agent.waitForLog(msgStartsWith("stopping 1 collector(s)"), "the shutdown starting");
    const late = await api.post(input("a", 2));
    expect(late).toMatchObject({ status: 503, body: { error: "the agent is shutting down: send again later" } });
    await nats.kill("SIGCONT");
    expect((await held).status).toBe(202);
    expect(await exitCode(api.agent, 20_000)).toBe(0);
    const seqs = (await readStream(nats.url, stream)).map((m) => JSON.parse(m.data).event_data.custom.seq);
    expect(seqs).toEqual(["0", "1"]);
  }, 40_000);
});

async function statusUrlOf(agent: import("../../fault/harness.ts").AgentProcess): Promise<string> {
  const line = await agent.waitForLog(msgStartsWith("HTTP endpoints on"), "the HTTP endpoints");
  return line.url as string;
}
