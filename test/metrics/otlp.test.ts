// telemetry.otlp against a receiver in this test (OTLP/HTTP JSON, decoded
// here): the agent pushes the instruments /metrics serves, with the same
// counter values, its resource and the configured headers; an endpoint that
// refuses or never answers costs no event (all in a real nats-server's
// stream), is counted, logged at most once per LOG_THROTTLE_MS, and does not
// hold the agent's exit.
import { afterAll, describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import type { Socket } from "bun";
import { endpointsUrl, logLines, runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { streamCount } from "../fault/harness.ts";
import { AGENT_VERSION } from "../../src/cli/version.ts";
import { LOG_THROTTLE_MS } from "../../src/log.ts";
import { OTLP_FLUSH_AT_EXIT_MS } from "../../src/metrics/metrics.ts";

afterAll(stopAllNatsServers);

// --- OTLP/HTTP JSON, as the exporter writes it (ExportMetricsServiceRequest) ---
type AnyValue = { stringValue?: string; intValue?: number | string; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };
interface NumberPoint {
  attributes: KeyValue[];
  asDouble?: number;
  asInt?: number | string;
}
interface HistogramPoint {
  attributes: KeyValue[];
  count: number | string;
  sum?: number;
}
interface OtlpMetric {
  name: string;
  sum?: { isMonotonic: boolean; aggregationTemporality: number; dataPoints: NumberPoint[] };
  gauge?: { dataPoints: NumberPoint[] };
  histogram?: { aggregationTemporality: number; dataPoints: HistogramPoint[] };
}
interface ExportRequest {
  resourceMetrics: Array<{ resource: { attributes: KeyValue[] }; scopeMetrics: Array<{ metrics: OtlpMetric[] }> }>;
}
interface Received {
  headers: Headers;
  request: ExportRequest;
}

const AGGREGATION_TEMPORALITY_CUMULATIVE = 2;

/** A local OTLP/HTTP receiver: keeps every export request it gets. */
function startReceiver() {
  const received: Received[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/metrics") return new Response("not found", { status: 404 });
      received.push({ headers: req.headers, request: (await req.json()) as ExportRequest });
      return Response.json({});
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

/** An endpoint that takes connections and never answers. */
function startHangingEndpoint() {
  const sockets: Array<Socket<undefined>> = [];
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void sockets.push(s), data: () => {} } });
  return {
    url: `http://127.0.0.1:${listener.port}`,
    connections: () => sockets.length,
    stop: () => listener.stop(true),
  };
}

function valueOf(v: AnyValue): string | number | undefined {
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue);
}

/** A series' key, as `name{a="x",b="y"}` with sorted labels: one form for both sides. */
function seriesKey(name: string, labels: Array<[string, string]>): string {
  return `${name}{${labels
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;
}

function pointKey(name: string, attributes: KeyValue[]): string {
  return seriesKey(
    name,
    attributes.map((a) => [a.key, String(valueOf(a.value))]),
  );
}

function metricsOf(r: Received): OtlpMetric[] {
  return r.request.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
}

/** The cumulative values of an export in Prometheus' names: counters as _total, histograms as _count and _sum. */
function exportedCounters(r: Received): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metricsOf(r)) {
    if (m.sum) for (const p of m.sum.dataPoints) out.set(pointKey(`${m.name}_total`, p.attributes), Number(p.asInt ?? p.asDouble));
    if (m.histogram) {
      for (const p of m.histogram.dataPoints) {
        out.set(pointKey(`${m.name}_count`, p.attributes), Number(p.count));
        out.set(pointKey(`${m.name}_sum`, p.attributes), p.sum ?? Number.NaN);
      }
    }
  }
  return out;
}

/** The Prometheus text's metric types (counters named with _total), and the samples of its counters and histograms (without buckets). */
function scraped(text: string): { types: Map<string, string>; counters: Map<string, number> } {
  const types = new Map([...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const counters = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labels = "", value] = m;
    const histogram = types.get(name!.replace(/_(count|sum)$/, "")) === "histogram" && /_(count|sum)$/.test(name!);
    if (types.get(name!) !== "counter" && !histogram) continue;
    const pairs = [...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l): [string, string] => [l[1]!, l[2]!]);
    counters.set(seriesKey(name!, pairs), Number(value));
  }
  return { types, counters };
}

const OTLP_TYPE = { counter: "sum", gauge: "gauge", histogram: "histogram" } as const;

function otlpType(m: OtlpMetric): string {
  if (m.sum) return m.sum.isMonotonic ? "sum" : "non-monotonic sum";
  return m.gauge ? "gauge" : m.histogram ? "histogram" : "other";
}

function otlpConfig(server: { url: string }, stream: string, count: number, otlp: string): string {
  return writeConfig(`
nats: { url: "${server.url}", mode: jetstream, subject: otlp.${stream.toLowerCase()}, stream: { name: ${stream} } }
telemetry:
  otlp: ${otlp}
collectors:
  synthetic: { config: { count: ${count}, rate: 0, payload_bytes: 256 } }
`);
}

const exportFailureLines = (stdout: string) => logLines(stdout).filter((l) => typeof l.msg === "string" && l.msg.startsWith("telemetry.otlp: metrics export to "));

describe("telemetry.otlp", () => {
  test("pushes every instrument /metrics serves, counters equal to a scrape, with the agent's resource and the configured headers", async () => {
    const N = 300;
    const server = await startNatsServer({ jetstream: true });
    const receiver = startReceiver();
    const SECRET = "Bearer otlp-secret-token-1";
    const file = otlpConfig(server, "OTLP_SAME", N, `{ endpoint: "${receiver.url}", interval: 200ms, headers: { Authorization: "${SECRET}", X-Scope-OrgID: tenant-a } }`);
    const agent = spawnAgent(["-c", file], { env: { NODE_NAME: "node-under-test" } });
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const url = await endpointsUrl(out.lines);
      const published = `orchestrator_events_published_total{collector="synthetic"}`;
      await waitFor(() => receiver.received.some((r) => exportedCounters(r).get(published) === N), `an export with ${N} events published`, 20_000);

      // Nothing changes the counters any more: the next export and a scrape taken before it see one moment.
      const text = await (await fetch(`${url}/metrics`)).text();
      const seen = receiver.received.length;
      await waitFor(() => receiver.received.length > seen, "the export after the scrape", 5_000);
      const last = receiver.received.at(-1)!;
      const scrape = scraped(text);
      expect(scrape.counters.get(published)).toBe(N);

      // names and types: every orchestrator_* metric of the scrape, none more
      // The process metrics move between the scrape and the export: checked for name and type only.
      const agentOnly = <V,>(entries: Map<string, V>) => new Map([...entries].filter(([name]) => name.startsWith("orchestrator_")));
      const everyExported = new Map(metricsOf(last).map((m) => [m.name, otlpType(m)]));
      expect([everyExported.get("process_cpu_seconds"), everyExported.get("process_resident_memory_bytes")]).toEqual(["sum", "gauge"]);
      const exported = agentOnly(everyExported);
      const expected = new Map(
        [...scrape.types].filter(([name]) => name.startsWith("orchestrator_")).map(([name, type]) => [name.replace(/_total$/, ""), OTLP_TYPE[type as keyof typeof OTLP_TYPE]]),
      );
      expect(Object.fromEntries(exported)).toEqual(Object.fromEntries(expected));
      for (const m of metricsOf(last)) {
        const temporality = m.sum?.aggregationTemporality ?? m.histogram?.aggregationTemporality;
        if (temporality !== undefined) expect({ metric: m.name, temporality }).toEqual({ metric: m.name, temporality: AGGREGATION_TEMPORALITY_CUMULATIVE });
      }
      // values: every counter series and histogram count and sum, on both sides
      expect(Object.fromEntries(agentOnly(exportedCounters(last)))).toEqual(Object.fromEntries(agentOnly(scrape.counters)));
      expect(exportedCounters(last).get(`orchestrator_telemetry_export_failures_total{}`)).toBe(0);

      const resource = Object.fromEntries(last.request.resourceMetrics[0]!.resource.attributes.map((a) => [a.key, valueOf(a.value)]));
      expect(resource).toEqual({ "service.name": "tapio-collectors", "service.version": AGENT_VERSION, "host.name": hostname(), "k8s.node.name": "node-under-test" });
      expect(last.headers.get("authorization")).toBe(SECRET);
      expect(last.headers.get("x-scope-orgid")).toBe("tenant-a");
      expect(last.headers.get("content-type")).toBe("application/json");

      expect(await streamCount(server.url, "OTLP_SAME")).toBe(N);
      agent.kill("SIGTERM");
      expect(await agent.exited).toBe(0);
      await out.ended;
      // header values appear in no log line (the start line names the headers only)
      const stdout = out.lines.join("\n");
      expect(stdout).not.toContain("otlp-secret-token-1");
      expect(stdout).not.toContain("tenant-a");
      expect(logLines(stdout).find((l) => l.msg.startsWith("telemetry.otlp: pushing metrics"))?.headers).toEqual(["Authorization", "X-Scope-OrgID"]);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
      receiver.stop();
    }
  }, 60_000);

  test("with http disabled the metrics are still pushed", async () => {
    const server = await startNatsServer({ jetstream: false });
    const receiver = startReceiver();
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core }
http: { enabled: false }
telemetry:
  otlp: { endpoint: "${receiver.url}/", interval: 100ms }
collectors:
  synthetic: { config: { count: 5, rate: 0 } }
`);
    const r = await runAgent(["--once", "-c", file]);
    receiver.stop();
    expect(r.code).toBe(0);
    expect(logLines(r.stdout).some((l) => l.msg.startsWith("HTTP endpoints on"))).toBe(false);
    // the flush at exit carries the round's final counts
    expect(exportedCounters(receiver.received.at(-1)!).get(`orchestrator_events_published_total{collector="synthetic"}`)).toBe(5);
  }, 30_000);

  for (const kind of ["refused (a closed port)", "never answering"] as const) {
    test(`an endpoint ${kind}: every event published, failures counted, logged at most once per ${LOG_THROTTLE_MS / 1000}s`, async () => {
      const N = 2000;
      const stream = kind.startsWith("refused") ? "OTLP_REFUSED" : "OTLP_HANGING";
      const server = await startNatsServer({ jetstream: true });
      const hanging = kind.startsWith("refused") ? undefined : startHangingEndpoint();
      const endpoint = hanging?.url ?? `http://127.0.0.1:${await freePort()}`;
      const file = otlpConfig(server, stream, N, `{ endpoint: "${endpoint}", interval: 100ms, timeout: 100ms }`);
      const startedAt = Date.now();
      const agent = spawnAgent(["-c", file]);
      killAtExit(agent.pid);
      const out = collectLines(agent.stdout);
      try {
        const url = await endpointsUrl(out.lines);
        const failures = async () => Number(/^orchestrator_telemetry_export_failures_total (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
        await waitFor(async () => (await failures()) >= 10, "10 failed exports", 20_000);
        await waitFor(async () => (await streamCount(server.url, stream)) === N, `all ${N} events in the stream`, 20_000);
        if (hanging) expect(hanging.connections()).toBeGreaterThan(0);

        agent.kill("SIGTERM");
        expect(await agent.exited).toBe(0);
        await out.ended;
        const lived = Date.now() - startedAt;
        const lines = exportFailureLines(out.lines.join("\n"));
        expect(lines.length).toBeGreaterThanOrEqual(1);
        expect(lines.length).toBeLessThanOrEqual(Math.ceil(lived / LOG_THROTTLE_MS));
        expect(lines[0]).toMatchObject({ level: "warn", endpoint: `${endpoint}/v1/metrics`, failures: 1 });
        const done = logLines(out.lines.join("\n")).find((l) => l.msg.startsWith("shutdown complete"));
        expect(done).toMatchObject({ accepted: N, published: N, in_spool: 0, lost: 0 });
      } finally {
        agent.kill("SIGKILL");
        await agent.exited;
        spare(agent.pid);
        hanging?.stop();
      }
    }, 60_000);
  }

  test(`an endpoint that never answers does not hold the exit: the flush at exit gives up after ${OTLP_FLUSH_AT_EXIT_MS / 1000}s`, async () => {
    const N = 500;
    const EXPORT_TIMEOUT_MS = 30_000;
    const server = await startNatsServer({ jetstream: true });
    const hanging = startHangingEndpoint();
    // An export may take 30s; the agent is killed (exit code not 0) before that: only the bound on the flush at exit lets it finish.
    const file = otlpConfig(server, "OTLP_EXIT", N, `{ endpoint: "${hanging.url}", interval: 1m, timeout: ${EXPORT_TIMEOUT_MS / 1000}s }`);
    const r = await runAgent(["--once", "-c", file], { timeoutMs: EXPORT_TIMEOUT_MS - 5_000 });
    hanging.stop();
    expect(r.code).toBe(0);
    expect(hanging.connections()).toBeGreaterThan(0);
    expect(await streamCount(server.url, "OTLP_EXIT")).toBe(N);
  }, 60_000);
});
