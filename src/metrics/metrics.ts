// Every metric the agent exports, defined once, through @opentelemetry/api
// instruments. Counters and gauges are observed at scrape time from the
// counters the agent keeps anyway (health records and the ledger, queue, spool, breakers):
// no work on the hot path. The Prometheus exporter is only a reader here;
// /metrics is served by our own Bun.serve (src/http/server.ts). With
// telemetry.otlp, a second reader pushes the same instruments (otlp.ts).
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import type { Counter, Histogram } from "@opentelemetry/api";
import type { OtlpPush } from "./otlp.ts";
import type { Orchestrator } from "../orchestrator/orchestrator.ts";
import type { CollectorState } from "../orchestrator/health.ts";
import type { CircuitState } from "../delivery/circuit.ts";
import type { Destination } from "../orchestrator/destination.ts";
import { DROP_REASONS } from "../event/drop-reasons.ts";
import { PUBLISH_ERROR_REASONS } from "../publish/classify.ts";
import { SPOOL_ERROR_REASONS } from "../spool/errors.ts";

const COLLECTOR_STATES: readonly CollectorState[] = ["starting", "running", "degraded", "failed", "stopped"];
const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };
/** Batch processing times: 100 µs to 10 s. */
const PROCESSING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Poll rounds: a read of a few files to HTTP requests that time out (30 s). */
const POLL_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type ReloadResult = "success" | "failure";

/** The last OTLP export at exit may take this long; the agent exits then, whatever the endpoint does. */
export const OTLP_FLUSH_AT_EXIT_MS = 2_000;

export class AgentMetrics {
  readonly #exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  readonly #serializer = new PrometheusSerializer(undefined, false, undefined, true, true);
  readonly #provider: MeterProvider;
  readonly #processing: Histogram;
  readonly #handoff: Histogram;
  readonly #pollSeconds: Histogram;
  readonly #pollCpu: Counter;
  /** one attribute object per collector, so that a round allocates none */
  readonly #pollAttributes = new Map<string, { collector: string }>();
  /** config reloads by result; counted by reloaded() */
  readonly #reloads: Record<ReloadResult, number> = { success: 0, failure: 0 };
  /** the last reload's result: a failed one leaves the agent on the previous config until one succeeds */
  #lastReload: ReloadResult = "success";

  /** `otlp`: telemetry.otlp's reader, beside the Prometheus one (its resource names the agent in every export) */
  constructor(orchestrator: Orchestrator, build: { version: string; bun: string }, otlp?: OtlpPush) {
    this.#provider = new MeterProvider({ readers: otlp ? [this.#exporter, otlp.reader] : [this.#exporter], ...(otlp && { resource: otlp.resource }) });
    const meter = this.#provider.getMeter("tapio-collectors");
    const o = orchestrator;

    const perCollector = (name: string, description: string, value: (h: ReturnType<Orchestrator["health"]["all"]>[number]) => number) =>
      meter.createObservableCounter(name, { description }).addCallback((r) => {
        for (const h of o.health.all()) r.observe(value(h), { collector: h.name });
      });
    perCollector("orchestrator_events_received", "Events accepted from collectors into the queue", (h) => h.accepted);
    perCollector("orchestrator_events_published", "Events confirmed by NATS (JetStream ack, or core flush)", (h) => h.published);
    perCollector("orchestrator_events_spooled", "Events written to the disk spool", (h) => h.spooled);
    perCollector("orchestrator_collector_restarts", "Collector restarts after a failure", (h) => h.restarts);

    meter.createObservableCounter("orchestrator_events_dropped", { description: `Events dropped, by collector and reason (${Object.keys(DROP_REASONS).join(", ")})` }).addCallback((r) => {
      for (const h of o.health.all()) for (const [reason, n] of h.dropped) r.observe(n, { collector: h.name, reason });
    });
    meter.createObservableCounter("orchestrator_collector_parse_errors", { description: "Input a collector could not parse, by source" }).addCallback((r) => {
      for (const h of o.health.all()) for (const [source, n] of h.parseErrors) r.observe(n, { collector: h.name, source });
    });
    meter.createObservableCounter("orchestrator_publish_errors", { description: `Failed publish attempts, in events, by destination and reason (${PUBLISH_ERROR_REASONS.join(", ")})` }).addCallback((r) => {
      for (const d of o.destinations()) for (const [reason, n] of d.ledger.publishErrors) r.observe(n, { destination: d.name, reason });
    });
    // For the quiet-collector alert (deploy/monitoring): the same test as the runner's warning, in PromQL.
    meter.createObservableGauge("orchestrator_collector_last_event_timestamp_seconds", { description: "Unix time of a running collector's last event, or of its (re)start when it has emitted none since" }).addCallback((r) => {
      for (const c of o.runners()) r.observe(c.silentSince / 1000, { collector: c.name });
    });
    meter.createObservableGauge("orchestrator_collector_quiet_period_seconds", { description: "How long a running collector may emit nothing before it is suspect; only collectors that declare a quiet period" }).addCallback((r) => {
      for (const c of o.runners()) if (c.quietPeriodMs !== undefined) r.observe(c.quietPeriodMs / 1000, { collector: c.name });
    });
    meter.createObservableGauge("orchestrator_ready", { description: "1 while the agent is ready (GET /readyz answers 200), 0 otherwise" }).addCallback((r) => r.observe(o.readiness().ready ? 1 : 0));
    meter.createObservableGauge("orchestrator_collector_state", { description: "1 for the collector's current state (starting, running, degraded, failed, stopped)" }).addCallback((r) => {
      for (const h of o.health.all()) for (const state of COLLECTOR_STATES) r.observe(h.state === state ? 1 : 0, { collector: h.name, state });
    });

    // Per destination (issue 15): `default` is the nats section; each of `destinations:` has its own queue, spool, circuits and connection.
    const perDestination = (observe: (d: Destination, attributes: { destination: string }) => void) => {
      for (const d of o.destinations()) observe(d, { destination: d.name });
    };
    meter.createObservableGauge("orchestrator_buffer_utilization", { description: "Fill of a destination's in-memory queue, 0 to 1 (the fuller of its event and byte bounds)" }).addCallback((r) =>
      perDestination((d, a) => r.observe(d.queue.utilization, a)),
    );
    meter.createObservableGauge("orchestrator_buffer_events", { description: "Events in a destination's in-memory queue" }).addCallback((r) => perDestination((d, a) => r.observe(d.queue.length, a)));
    meter.createObservableGauge("orchestrator_buffer_bytes", { description: "Bytes in a destination's in-memory queue" }).addCallback((r) => perDestination((d, a) => r.observe(d.queue.bytes, a)));

    const spoolOf = (d: Destination) => d.delivery.status().spool;
    meter.createObservableGauge("orchestrator_spool_events", { description: "Events waiting in a destination's disk spool" }).addCallback((r) =>
      perDestination((d, a) => {
        const s = spoolOf(d);
        if (s) r.observe(s.depth, a);
      }),
    );
    meter.createObservableGauge("orchestrator_spool_bytes", { description: "Bytes a destination's disk spool holds (events plus row overhead)" }).addCallback((r) =>
      perDestination((d, a) => {
        const s = spoolOf(d);
        if (s) r.observe(s.bytes, a);
      }),
    );
    meter.createObservableGauge("orchestrator_spool_max_bytes", { description: "spool.max_bytes: the bound of orchestrator_spool_bytes" }).addCallback((r) =>
      perDestination((d, a) => {
        const max = d.delivery.spoolMaxBytes;
        if (max !== undefined) r.observe(max, a);
      }),
    );
    meter.createObservableGauge("orchestrator_spool_oldest_age_seconds", { description: "Age of the oldest event in a destination's spool; 0 when empty" }).addCallback((r) =>
      perDestination((d, a) => {
        const s = spoolOf(d);
        if (s) r.observe(s.oldest_age_seconds ?? 0, a);
      }),
    );

    meter.createObservableCounter("orchestrator_spool_errors", { description: `Spool operations that failed, and spools that could not be opened, by destination and reason (${SPOOL_ERROR_REASONS.join(", ")})` }).addCallback((r) =>
      perDestination((d, { destination }) => {
        for (const [reason, n] of d.delivery.spoolErrors) r.observe(n, { destination, reason });
      }),
    );

    meter.createObservableGauge("orchestrator_circuit_state", { description: "Circuit per destination and subject: 0 closed, 1 half-open, 2 open" }).addCallback((r) =>
      perDestination((d, { destination }) => {
        for (const b of d.breakers.all()) r.observe(CIRCUIT_VALUE[b.state], { destination, subject: b.subject });
      }),
    );
    meter.createObservableGauge("orchestrator_nats_connected", { description: "1 while the destination is connected to a NATS server" }).addCallback((r) =>
      perDestination((d, a) => r.observe(d.delivery.publisher.status().connected ? 1 : 0, a)),
    );
    meter.createObservableCounter("orchestrator_nats_reconnects", { description: "Reconnects to a destination's NATS since start" }).addCallback((r) =>
      perDestination((d, a) => r.observe(d.delivery.publisher.status().reconnects, a)),
    );
    meter.createObservableCounter("orchestrator_destination_events", { description: "Events per destination by outcome: accepted (routed to it and queued), published, spooled, discarded, lost" }).addCallback((r) =>
      perDestination((d, { destination }) => {
        const t = d.ledger.totals();
        r.observe(t.accepted, { destination, outcome: "accepted" });
        r.observe(t.published, { destination, outcome: "published" });
        r.observe(t.spooled, { destination, outcome: "spooled" });
        r.observe(t.discarded, { destination, outcome: "discarded" });
        r.observe(t.lost, { destination, outcome: "lost" });
      }),
    );

    meter.createObservableCounter("orchestrator_config_reloads", { description: "Configuration reloads, by result" }).addCallback((r) => {
      for (const result of Object.keys(this.#reloads) as ReloadResult[]) r.observe(this.#reloads[result], { result });
    });
    meter.createObservableGauge("orchestrator_config_last_reload_successful", { description: "0 while the last config reload failed (the agent runs on the previous config), 1 otherwise" }).addCallback((r) =>
      r.observe(this.#lastReload === "success" ? 1 : 0),
    );
    meter.createObservableCounter("orchestrator_telemetry_export_failures", { description: "OTLP metric exports (telemetry.otlp) that failed or timed out" }).addCallback((r) =>
      r.observe(otlp?.failures ?? 0),
    );
    // The process's own cost, under the names Prometheus client libraries use, for dashboards that already know them.
    meter.createObservableCounter("process_cpu_seconds", { description: "CPU time (user + system) of the agent process, in seconds" }).addCallback((r) => {
      const { user, system } = process.cpuUsage();
      r.observe((user + system) / 1e6);
    });
    meter.createObservableGauge("process_resident_memory_bytes", { description: "Resident set size of the agent process, in bytes" }).addCallback((r) => r.observe(process.memoryUsage.rss()));
    meter.createObservableGauge("orchestrator_build_info", { description: "Always 1; the labels say which agent build runs" }).addCallback((r) =>
      r.observe(1, { version: build.version, bun: build.bun }),
    );

    this.#processing = meter.createHistogram("orchestrator_worker_processing_time_seconds", {
      description: "Time a worker spends on one batch: publish and acknowledgement, or writing it to the spool",
      advice: { explicitBucketBoundaries: PROCESSING_BUCKETS },
    });
    this.#handoff = meter.createHistogram("orchestrator_event_handoff_seconds", {
      description: "Agent-internal latency: from a collector's emit to the hand-off of the event to the NATS client (first and last event of each batch)",
      advice: { explicitBucketBoundaries: PROCESSING_BUCKETS },
    });
    this.#pollSeconds = meter.createHistogram("orchestrator_collector_poll_seconds", {
      description: "Wall time of one poll round of a polling collector (reading its sources, emitting what changed)",
      advice: { explicitBucketBoundaries: POLL_BUCKETS },
    });
    this.#pollCpu = meter.createCounter("orchestrator_collector_poll_cpu_seconds", {
      description: "CPU time (user + system) of the agent process during poll rounds, by collector; divided by orchestrator_collector_poll_seconds_count: CPU per round",
    });
  }

  /** A config reload ended (see ConfigReloader's onResult). */
  readonly reloaded = (result: ReloadResult): void => {
    this.#reloads[result]++;
    this.#lastReload = result;
  };

  /** A collector's poll round is done (see OrchestratorOptions.onPollRound). */
  readonly pollRound = (collector: string, wallSeconds: number, cpuSeconds: number): void => {
    let attributes = this.#pollAttributes.get(collector);
    if (!attributes) this.#pollAttributes.set(collector, (attributes = { collector }));
    this.#pollSeconds.record(wallSeconds, attributes);
    this.#pollCpu.add(cpuSeconds, attributes);
  };

  /** Emit to hand-off to the NATS client, sampled per batch (see OrchestratorOptions.onHandoff). */
  readonly handoff = (seconds: number): void => {
    this.#handoff.record(seconds);
  };

  /** Called by the workers once per batch (see OrchestratorOptions.onBatchDone). */
  readonly batchDone = (seconds: number): void => {
    this.#processing.record(seconds);
  };

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    const { resourceMetrics, errors } = await this.#exporter.collect();
    if (errors.length > 0) throw new AggregateError(errors, "collecting metrics failed");
    return this.#serializer.serialize(resourceMetrics);
  }

  /** Flushes the OTLP reader once (bounded by OTLP_FLUSH_AT_EXIT_MS) and stops the readers. */
  async shutdown(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, OTLP_FLUSH_AT_EXIT_MS)));
    await Promise.race([this.#provider.shutdown(), bound]);
    clearTimeout(timer);
  }
}
