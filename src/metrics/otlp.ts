// telemetry.otlp: the instruments of metrics.ts pushed over OTLP/HTTP (JSON)
// to an OpenTelemetry collector, besides /metrics. Loaded only when
// configured. An endpoint that is down or slow must never touch event
// delivery: an export is a timer callback with its own timeout, its failures
// are counted and logged rate-limited, and nothing waits on it but the
// bounded flush at exit (AgentMetrics.shutdown).
import { hostname } from "node:os";
import type { Logger } from "pino";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { AggregationTemporalityPreference, OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader, type InstrumentType, type PushMetricExporter, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { redactUrlCredentials } from "../config/redact.ts";
import type { Config, OtlpConfig } from "../config/schema.ts";
import { LOG_THROTTLE_MS, LogThrottle } from "../log.ts";

/** The OTLP/HTTP path of metrics, appended to `endpoint` as to OTEL_EXPORTER_OTLP_ENDPOINT. */
const METRICS_PATH = "/v1/metrics";

/** Where the exports go: `endpoint` plus /v1/metrics, unless it already ends so. */
export function otlpMetricsUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return base.endsWith(METRICS_PATH) ? base : `${base}${METRICS_PATH}`;
}

/**
 * The node this agent runs on, for k8s.node.name: $NODE_NAME (the DaemonSet
 * sets it from spec.nodeName), else a `node_name` written in a collector's
 * config. The collectors' default for node_name is the host name, which
 * says nothing about Kubernetes: host.name carries it.
 */
function nodeName(config: Config): string | undefined {
  if (process.env.NODE_NAME) return process.env.NODE_NAME;
  for (const section of Object.values(config.collectors)) {
    const written = (section.config as { node_name?: unknown } | null)?.node_name;
    if (typeof written === "string" && written !== hostname()) return written;
  }
  return undefined;
}

/** Who sends the metrics: the OTLP resource of every export. */
export function agentResource(config: Config, version: string): Resource {
  const node = nodeName(config);
  return resourceFromAttributes({
    "service.name": "tapio-collectors",
    "service.version": version,
    "host.name": hostname(),
    ...(node !== undefined && { "k8s.node.name": node }),
  });
}

/** The OTLP exporter, counting and logging (rate-limited) the exports that fail. */
class CountingExporter implements PushMetricExporter {
  readonly #inner: OTLPMetricExporter;
  readonly #onFailure: (error: Error | undefined) => void;

  constructor(inner: OTLPMetricExporter, onFailure: (error: Error | undefined) => void) {
    this.#inner = inner;
    this.#onFailure = onFailure;
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.#inner.export(metrics, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.#onFailure(result.error);
      resultCallback(result);
    });
  }

  selectAggregationTemporality(instrumentType: InstrumentType) {
    return this.#inner.selectAggregationTemporality(instrumentType);
  }

  selectAggregation(instrumentType: InstrumentType) {
    return this.#inner.selectAggregation(instrumentType);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}

/** The OTLP push of the agent's metrics: a reader for AgentMetrics' MeterProvider, and its failures. */
export class OtlpPush {
  readonly reader: PeriodicExportingMetricReader;
  readonly resource: Resource;
  /** exports that failed (refused, timed out, an error status), retries included in one */
  failures = 0;
  readonly #throttle = new LogThrottle();

  constructor(otlp: OtlpConfig, config: Config, version: string, log: Logger) {
    const url = otlpMetricsUrl(otlp.endpoint);
    const shown = redactUrlCredentials(url);
    const exporter = new OTLPMetricExporter({
      url,
      headers: otlp.headers,
      timeoutMillis: otlp.timeout.ms,
      // cumulative, as /metrics: the same counter has the same value in both
      temporalityPreference: AggregationTemporalityPreference.CUMULATIVE,
    });
    this.reader = new PeriodicExportingMetricReader({
      exporter: new CountingExporter(exporter, (error) => {
        this.failures++;
        const suppressed = this.#throttle.take("export");
        if (suppressed === undefined) return;
        const reason = error?.message || "no reason given";
        log.warn(
          { endpoint: shown, err: reason, failures: this.failures, suppressed },
          `telemetry.otlp: metrics export to ${shown} failed: ${reason}; events are not affected (${this.failures} failed export(s) so far, at most one line per ${LOG_THROTTLE_MS / 1000}s)`,
        );
      }),
      exportIntervalMillis: otlp.interval.ms,
      // the exporter gives up after otlp.timeout (at most the interval, schema.ts); this is the reader's outer bound
      exportTimeoutMillis: otlp.interval.ms,
    });
    this.resource = agentResource(config, version);
    log.info({ endpoint: shown, interval: otlp.interval.toString(), timeout: otlp.timeout.toString(), headers: Object.keys(otlp.headers) }, `telemetry.otlp: pushing metrics to ${shown} every ${otlp.interval}`);
  }
}
