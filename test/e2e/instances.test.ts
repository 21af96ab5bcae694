// Collector instances in the agent as a process, against a real nats-server
// with JetStream: the stream holds each instance's events on its own
// subject; /metrics, /status, `status`, `top` and `tail --collector` name
// each instance by its key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { endpointsUrl, logLines, runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { readStream } from "../fault/harness.ts";
import type { StatusDocument } from "../../src/http/server.ts";

let server: NatsServer;
let agent: ReturnType<typeof spawnAgent>;
let out: ReturnType<typeof collectLines>;
let url: string;

const status = async () => (await (await fetch(`${url}/status`)).json()) as StatusDocument;
const published = async (name: string) => (await status()).collectors.find((c) => c.name === name)?.events_published ?? 0;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  const config = writeConfig(`
orchestrator: { shutdown_timeout: 10s }
nats: { url: "${server.url}", subject: e2e.inst, stream: { name: E2E_INSTANCES } }
collectors:
  synthetic: { config: { count: 10, rate: 0 } }
  synthetic/a: { config: { rate: 100, type: a.event } }
  synthetic/b: { config: { rate: 40, type: b.event, severity: warning } }
`);
  agent = spawnAgent(["run", "-c", config]);
  killAtExit(agent.pid);
  out = collectLines(agent.stdout);
  url = await endpointsUrl(out.lines);
  await waitFor(async () => (await published("synthetic")) === 10 && (await published("synthetic/a")) > 20 && (await published("synthetic/b")) > 10, "every instance publishing", 15_000);
}, 30_000);

afterAll(async () => {
  agent?.kill("SIGKILL");
  await agent?.exited;
  if (agent) spare(agent.pid);
  await stopAllNatsServers();
});

test("/metrics: a collector label per instance", async () => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (series: string) => Number(text.split("\n").find((l) => l.startsWith(`${series} `))?.slice(series.length + 1));
  expect(value('orchestrator_events_published_total{collector="synthetic"}')).toBe(10);
  expect(value('orchestrator_events_published_total{collector="synthetic/a"}')).toBeGreaterThan(20);
  expect(value('orchestrator_events_published_total{collector="synthetic/b"}')).toBeGreaterThan(10);
  expect(value('orchestrator_collector_state{collector="synthetic/b",state="running"}')).toBe(1);
});

test("status and top: a row per instance", async () => {
  const s = await runAgent(["status", "--url", url]);
  expect(s.code).toBe(0);
  expect(s.stdout).toMatch(/^\s+synthetic\s+running\s+10\s+10\s/m);
  expect(s.stdout).toMatch(/^\s+synthetic\/a\s+running\s+[\d,]+\s+[\d,]+\s+0\s/m);
  expect(s.stdout).toMatch(/^\s+synthetic\/b\s+running\s+[\d,]+\s+[\d,]+\s+0\s/m);
  expect(s.stdout).toMatch(/^\s+e2e\.inst\.synthetic\.a\s+closed\s/m);
  const t = await runAgent(["top", "--url", url, "--iterations", "1"]);
  expect(t.code).toBe(0);
  expect(t.stdout).toMatch(/^synthetic\/a\s+running\s+[\d.,]+\s+[\d.,]+\s+0\s/m);
  expect(t.stdout).toMatch(/^synthetic\/b\s+running\s/m);
});

test("tail --collector synthetic/a: only that instance's events", async () => {
  const r = await runAgent(["tail", "--nats", server.url, "--subject", "e2e.inst", "--collector", "synthetic/a", "--json", "--count", "5"], { timeoutMs: 15_000 });
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("tailing e2e.inst.synthetic.a and e2e.inst.synthetic.a.> on");
  const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  expect(events).toHaveLength(5);
  for (const e of events) expect(e).toMatchObject({ type: "a.event", source: "synthetic/a" });
});

test("SIGTERM: every event is on the stream, each instance's on its subject, its sequence unbroken", async () => {
  agent.kill("SIGTERM");
  expect(await agent.exited).toBe(0);
  await out.ended;
  const done = logLines(out.lines.join("\n")).find((l) => l.msg.startsWith("shutdown complete"))!;
  expect(done).toMatchObject({ in_spool: 0, lost: 0, dropped: 0 });
  const stored = await readStream(server.url, "E2E_INSTANCES");
  expect(stored.length).toBe(done.published);
  const seqs = (subject: string) => stored.filter((m) => m.subject === subject).map((m) => m.seq).sort((x, y) => x - y);
  expect(seqs("e2e.inst.synthetic")).toEqual([...Array(10).keys()]);
  for (const subject of ["e2e.inst.synthetic.a", "e2e.inst.synthetic.b"]) {
    const s = seqs(subject);
    expect(s.length).toBeGreaterThan(10);
    expect(s).toEqual([...Array(s.length).keys()]);
  }
  expect(new Set(stored.map((m) => m.subject)).size).toBe(3);
});
