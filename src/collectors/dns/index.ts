// Active DNS probes: every interval, each configured name against each
// server, timed. Problems (slow, NXDOMAIN, SERVFAIL, REFUSED, no answer) are
// emitted every time they happen; a healthy answer only when it ends a
// problem, or always with emit_ok.
import type { EventInput, Severity } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { readText } from "../common/paths.ts";
import { readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { canonicalName, rcodeName, type QueryType } from "./message.ts";
import { probe, type ProbeResult } from "./probe.ts";
import { parseResolvConf, parseServer, type Server } from "./resolv.ts";
import { dnsConfigSchema, type DnsConfig } from "./schema.ts";
import { dnsEvents } from "./events.ts";

/** response_code when no DNS response was read (timeout, socket error): RCODE 0 would say NOERROR. */
export const NO_RESPONSE = -1;

interface Outcome {
  /** what changed means: "ok", "slow", "NXDOMAIN", "timeout", ... */
  state: string;
  problem: boolean;
  event: EventInput;
}

function outcome(result: Exclude<ProbeResult, { kind: "aborted" }>, server: Server, name: string, type: QueryType, config: DnsConfig): Outcome {
  const dns: Record<string, unknown> = {
    query_type: type,
    query_name: canonicalName(name),
    response_code: NO_RESPONSE,
    duration: result.durationNs,
    server_ip: server.ip,
    server_port: server.port,
    error: true,
  };
  const make = (state: string, problem: boolean, severity: Severity, typeName = "dns.query"): Outcome => ({
    state,
    problem,
    event: { type: typeName, severity, event_data: { dns } },
  });

  if (result.kind === "timeout") {
    const ignored = result.invalid.length > 0 ? `; ignored ${result.invalid.length} invalid repl${result.invalid.length === 1 ? "y" : "ies"} (${result.invalid.at(-1)})` : "";
    dns.error_message = `no answer within ${config.timeout}${ignored}`;
    return make("timeout", true, "error", "dns.timeout");
  }
  if (result.kind === "unreachable") {
    dns.error_message = result.error;
    return make("unreachable", true, "error");
  }
  const { rcode, answers, truncated } = result.response;
  dns.response_code = rcode;
  if (answers.length > 0) dns.answers = answers;
  if (rcode !== 0) {
    dns.error_message = rcodeName(rcode);
    return make(rcodeName(rcode), true, "error");
  }
  if (answers.length === 0) {
    dns.error_message = `NOERROR without ${type} records${truncated ? " (truncated, not retried over TCP)" : ""}`;
    return make("nodata", true, "warning");
  }
  dns.error = false;
  const ms = result.durationNs / 1e6;
  if (ms >= config.latency_high.ms) return make("slow", true, "high");
  if (ms >= config.latency_warning.ms) return make("slow", true, "warning");
  return make("ok", false, "info");
}

export class DnsCollector implements Collector {
  readonly #config: DnsConfig;
  readonly #configured: Server[];
  /** last state per server/name/type: a healthy answer after a problem is a recovery */
  #states = new Map<string, string>();

  constructor(config: DnsConfig) {
    this.#config = config;
    // The schema has checked every entry.
    this.#configured = config.servers.map((s) => parseServer(s)!);
  }

  run(ctx: CollectorContext): Promise<void> {
    return poll(ctx, this.#config.interval.ms, () => this.#round(ctx));
  }

  async #round(ctx: CollectorContext): Promise<void> {
    const servers = this.#configured.length > 0 ? this.#configured : await this.#resolvConfServers(ctx);
    const { names, query_types, timeout } = this.#config;
    const probes = servers.flatMap((server) => names.flatMap((name) => query_types.map((type) => ({ server, name, type }))));
    const results = await Promise.all(
      probes.map((p) => probe(p.server, p.name, p.type, timeout.ms, ctx.signal, (detail) => ctx.parseError("dns response", detail))),
    );
    const states = new Map<string, string>();
    const events: EventInput[] = [];
    probes.forEach(({ server, name, type }, k) => {
      const result = results[k]!;
      if (result.kind === "aborted") return;
      const key = `${server.ip} ${server.port} ${canonicalName(name)} ${type}`;
      const { state, problem, event } = outcome(result, server, name, type, this.#config);
      const was = this.#states.get(key);
      states.set(key, state);
      if (problem || this.#config.emit_ok || (was !== undefined && was !== "ok")) events.push(event);
    });
    // Keys of servers that left resolv.conf are dropped with the old map.
    this.#states = states;
    await emitAll(ctx, events);
  }

  async #resolvConfServers(ctx: CollectorContext): Promise<Server[]> {
    const path = this.#config.resolv_conf;
    const servers = parseResolvConf(await readText(path), (detail) => ctx.parseError("resolv.conf", detail));
    if (servers.length === 0) throw new Error(`${path} lists no usable nameserver; set servers to probe`);
    return servers;
  }
}

export const dnsFactory: CollectorFactory<DnsConfig> = {
  type: "dns",
  events: dnsEvents,
  description: "active DNS probes of configured names against resolv.conf's or configured servers",
  configSchema: dnsConfigSchema,
  // Without emit_ok a healthy resolver is silent; with it every round emits.
  quietPeriodMs: (config) => (config.emit_ok ? 2 * config.interval.ms + config.timeout.ms : undefined),
  // With servers configured, resolv.conf is never read.
  sources: (c) => (c.servers.length > 0 ? [] : [readableFile(c.resolv_conf)]),
  create: (config) => new DnsCollector(config),
};
