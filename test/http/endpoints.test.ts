// The HTTP endpoints in process: readiness through its transitions, /status,
// and /metrics with exact counter values after a known run, checked by
// promtool (skipped when it is missing, except in CI, which installs it).
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { Spool } from "../../src/spool/spool.ts";
import { AgentMetrics } from "../../src/metrics/metrics.ts";
import { HttpServer, parseListen, type StatusDocument } from "../../src/http/server.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { waitFor } from "../helpers/wait-for.ts";

const build = { version: "0.0.0-test", bun: Bun.version };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function agent(yaml: string, opts: { spool?: boolean; publisher?: MemoryPublisher; once?: boolean } = {}) {
  const publisher = opts.publisher ?? new MemoryPublisher();
  const spoolPath = join(makeTempDir("http"), "spool.db");
  const config = configFrom(`${yaml}\nspool: { path: ${spoolPath}, enabled: ${opts.spool ?? true} }\nhttp: { listen: "127.0.0.1:0" }\n`);
  const spool = config.spool.enabled ? Spool.open({ path: spoolPath, maxBytes: config.spool.max_bytes, whenFull: "block", log: silentLogger() }) : undefined;
  let metrics: AgentMetrics | undefined;
  const orchestrator = new Orchestrator({ config, registry: builtinRegistry(), publisher, spool, log: silentLogger(), once: opts.once, onBatchDone: (s) => metrics?.batchDone(s), onHandoff: (s) => metrics?.handoff(s) });
  metrics = new AgentMetrics(orchestrator, build);
  const http = new HttpServer({ config: config.http, orchestrator, metrics, log: silentLogger(), build });
  cleanups.push(async () => {
    http.stop();
    await orchestrator.stop();
  });
  return { orchestrator, publisher, http, metrics, get: (path: string) => fetch(`${http.url}${path}`) };
}

const promtool = Bun.which("promtool");
// CI installs promtool, so there a missing promtool fails the test rather than passing unchecked.
const promtoolSkip = promtool === null && process.env.CI !== "true";

describe("HTTP endpoints", () => {
  test("listen parsing: loopback by default, all interfaces only when written so", () => {
    expect(configFrom("http: {}").http.listen).toBe("127.0.0.1:9090");
    expect(parseListen("127.0.0.1:9090")).toEqual({ hostname: "127.0.0.1", port: 9090 });
    expect(parseListen("[::1]:0")).toEqual({ hostname: "::1", port: 0 });
    expect(parseListen(":9090")).toEqual({ hostname: "0.0.0.0", port: 9090 });
  });

  test("/healthz answers while the process lives; unknown paths are 404", async () => {
    const a = agent("collectors: {}");
    expect((await a.get("/healthz")).status).toBe(200);
    expect((await a.get("/nope")).status).toBe(404);
  });

  test("/readyz: not started, ready, NATS down with and without a spool, draining", async () => {
    const withSpool = agent(`orchestrator: { shutdown_timeout: 1s }\ncollectors:\n  synthetic: { config: { rate: 10 } }`);
    const r0 = await withSpool.get("/readyz");
    expect(r0.status).toBe(503);
    expect(await r0.text()).toContain("not started");

    withSpool.orchestrator.start();
    await waitFor(async () => (await withSpool.get("/readyz")).status === 200);
    expect(await (await withSpool.get("/readyz")).text()).toContain("NATS connected");

    withSpool.publisher.connected = false;
    const r2 = await withSpool.get("/readyz");
    expect(r2.status).toBe(200);
    expect(await r2.text()).toContain("events go to the spool");

    const noSpool = agent(`collectors:\n  synthetic: { config: { rate: 10 } }`, { spool: false });
    noSpool.orchestrator.start();
    noSpool.publisher.connected = false;
    const r3 = await noSpool.get("/readyz");
    expect(r3.status).toBe(503);
    expect(await r3.text()).toContain("NATS not connected");

    // Draining: the publisher holds the last batch, so the shutdown lasts until its deadline.
    withSpool.publisher.connected = true;
    withSpool.publisher.stalled = true;
    const stopping = withSpool.orchestrator.stop();
    const r4 = await withSpool.get("/readyz");
    expect(r4.status).toBe(503);
    expect(await r4.text()).toContain("shutting down");
    await stopping;
  });

  test("/status: collectors, queue, delivery and health as JSON", async () => {
    const a = agent(`collectors:\n  synthetic: { config: { count: 50, rate: 0 } }`);
    a.orchestrator.start();
    await waitFor(() => a.orchestrator.health.collector("synthetic").published === 50);
    const s = (await (await a.get("/status")).json()) as StatusDocument;
    expect(s.agent).toMatchObject({ version: "0.0.0-test", ready: true });
    expect(s.collectors[0]).toMatchObject({ name: "synthetic", state: "running", events_accepted: 50, events_published: 50 });
    expect(s.queue).toMatchObject({ length: 0 });
    expect(s.delivery.nats.connected).toBe(true);
    expect(s.delivery.spool).toMatchObject({ depth: 0 });
    expect(s.health.state).toBe("healthy");
  });

  test(`/metrics after a known run: exact counters, one definition each, and promtool check metrics accepts it${promtoolSkip ? " (promtool check skipped: not installed)" : ""}`, async () => {
    const publisher = new MemoryPublisher();
    const a = agent(`collectors:\n  synthetic: { config: { count: 1234, rate: 0 } }`, { publisher });
    a.orchestrator.start();
    await waitFor(() => a.orchestrator.health.collector("synthetic").published === 1234);
    a.orchestrator.ledger.publishFailed("timeout", 3);
    const res = await a.get("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('orchestrator_events_received_total{collector="synthetic"}')).toBe(1234);
    expect(value('orchestrator_events_published_total{collector="synthetic"}')).toBe(1234);
    expect(value('orchestrator_events_spooled_total{collector="synthetic"}')).toBe(0);
    expect(value('orchestrator_publish_errors_total{destination="default",reason="timeout"}')).toBe(3);
    expect(value('orchestrator_collector_state{collector="synthetic",state="running"}')).toBe(1);
    expect(value('orchestrator_collector_state{collector="synthetic",state="failed"}')).toBe(0);
    expect(value(`orchestrator_buffer_utilization{destination="default"}`)).toBe(0);
    expect(value(`orchestrator_spool_events{destination="default"}`)).toBe(0);
    expect(value(`orchestrator_nats_connected{destination="default"}`)).toBe(1);
    expect(value('orchestrator_config_reloads_total{result="failure"}')).toBe(0);
    expect(value(`orchestrator_build_info{version="0.0.0-test",bun="${Bun.version}"}`)).toBe(1);
    const batches = value("orchestrator_worker_processing_time_seconds_count")!;
    expect(batches).toBeGreaterThan(0);
    expect(value('orchestrator_worker_processing_time_seconds_bucket{le="+Inf"}')).toBe(batches);
    expect(value("orchestrator_event_handoff_seconds_count")).toBeGreaterThanOrEqual(batches);
    // Every metric is declared exactly once.
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);

    if (promtoolSkip) return; // the test's name says so
    if (promtool === null) throw new Error("promtool is not installed, and CI=true: .ci/run installs it (Debian package prometheus)");
    const check = Bun.spawnSync([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(text), stderr: "pipe", stdout: "pipe" });
    expect(check.stdout.toString() + check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test(`instances: /status has a row per instance with its own health, /metrics a collector label per instance${promtoolSkip ? " (promtool check skipped: not installed)" : ""}`, async () => {
    const a = agent(`collectors:
  synthetic/a: { config: { count: 30, rate: 0 } }
  synthetic/b: { config: { count: 70, rate: 0 } }
  dns/nowhere: { config: { names: [x.example.], resolv_conf: /nonexistent/resolv.conf } }
  dns/off: { enabled: false, config: { names: [x.example.] } }`);
    a.orchestrator.start();
    const h = (name: string) => a.orchestrator.health.collector(name);
    await waitFor(() => h("synthetic/a").published === 30 && h("synthetic/b").published === 70 && h("dns/nowhere").state === "degraded");
    const s = (await (await a.get("/status")).json()) as StatusDocument;
    expect(s.collectors.map((c) => [c.name, c.state, c.events_accepted, c.events_published])).toEqual([
      ["dns/nowhere", "degraded", 0, 0],
      ["synthetic/a", "running", 30, 30],
      ["synthetic/b", "running", 70, 70],
    ]);
    expect(s.collectors[0]!.last_error).toContain("/nonexistent/resolv.conf");
    expect(s.health.problems.some((p) => p.includes("dns/nowhere"))).toBe(true);
    expect(s.health.problems.some((p) => p.includes("synthetic/"))).toBe(false);

    const text = await (await a.get("/metrics")).text();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('orchestrator_events_received_total{collector="synthetic/a"}')).toBe(30);
    expect(value('orchestrator_events_published_total{collector="synthetic/a"}')).toBe(30);
    expect(value('orchestrator_events_received_total{collector="synthetic/b"}')).toBe(70);
    expect(value('orchestrator_events_published_total{collector="synthetic/b"}')).toBe(70);
    expect(value('orchestrator_collector_state{collector="synthetic/a",state="running"}')).toBe(1);
    expect(value('orchestrator_collector_state{collector="dns/nowhere",state="degraded"}')).toBe(1);
    expect(value('orchestrator_collector_state{collector="dns/nowhere",state="running"}')).toBe(0);
    expect(text).not.toContain('collector="dns/off"');
    expect(text).not.toContain('collector="synthetic"');
    if (promtoolSkip) return;
    if (promtool === null) throw new Error("promtool is not installed, and CI=true");
    const check = Bun.spawnSync([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(text), stderr: "pipe", stdout: "pipe" });
    expect(check.stdout.toString() + check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test("/metrics shows circuits, the spool and drops by reason while NATS fails", async () => {
    const publisher = new MemoryPublisher();
    publisher.failing = () => true;
    const a = agent(`orchestrator: { shutdown_timeout: 300ms }\nnats: { circuit_breaker: { failure_threshold: 1, open_for: 1h } }\ncollectors:\n  synthetic: { config: { count: 300, rate: 0 } }`, { publisher });
    a.orchestrator.start();
    await waitFor(() => a.orchestrator.delivery.spoolDepth() === 300);
    const text = await (await a.get("/metrics")).text();
    expect(text).toContain('orchestrator_circuit_state{destination="default",subject="tapio.events.synthetic"} 2');
    expect(text).toContain(`orchestrator_spool_events{destination="default"} 300`);
    expect(text).toContain('orchestrator_events_spooled_total{collector="synthetic"} 300');
  });
});
