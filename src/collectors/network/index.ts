// Node network health from /proc counters: TCP retransmit spikes, listen
// queue overflows, interface errors and drops, conntrack table filling up.
// Counters only mean something as deltas, so every poll is compared with
// the one before; the first poll (and the first after a source was missing
// or a counter went backwards) only sets the baseline.
import type { EventInput } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { readTextSync, under } from "../common/paths.ts";
import { readableDirectory } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { parseCounterPairs, parseGauge, parseNetDev, parseSockstat } from "./parse.ts";
import { networkConfigSchema, type NetworkConfig } from "./schema.ts";
import { networkEvents } from "./events.ts";

/** One poll's readings. A source that could not be read is absent, so it has no deltas next time. */
export interface Sample {
  /** performance.now() of the reading: intervals are measured, not assumed */
  at: number;
  /** snmp and netstat: "Tcp.RetransSegs", "TcpExt.ListenOverflows", ... */
  counters: Map<string, number>;
  /** net/dev: iface -> "rx_errs", "tx_drop", ... */
  interfaces: Map<string, Map<string, number>>;
  /** sockstat gauges: "TCP.inuse", "TCP.tw", ... (context for TCP events) */
  sockets: Map<string, number>;
  conntrack?: { count: number; max: number };
}

/**
 * How much a counter grew. Undefined without a baseline, or when it went
 * backwards: a counter reset (namespace or interface re-created, a 32-bit
 * counter wrapped) has no meaningful delta, so it only re-baselines.
 */
function delta(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined || after < before ? undefined : after - before;
}

/** Bytes and packets only say how busy an interface is; every other column of net/dev is a kind of failure. */
function isFailureColumn(column: string): boolean {
  return !/_(bytes|packets|compressed|multicast)$/.test(column);
}

const fixed = (x: number, digits: number) => String(Number(x.toFixed(digits)));

function socketContext(sockets: Map<string, number>): Record<string, string> {
  const context: Record<string, string> = {};
  for (const key of ["inuse", "orphan", "tw", "alloc", "mem"]) {
    const value = sockets.get(`TCP.${key}`);
    if (value !== undefined) context[`tcp_${key}`] = String(value);
  }
  return context;
}

/** Events from the counter deltas between two polls. */
export function counterEvents(prev: Sample, cur: Sample, config: NetworkConfig): EventInput[] {
  const events: EventInput[] = [];
  const seconds = (cur.at - prev.at) / 1000;
  if (seconds <= 0) return events;
  const grew = (key: string) => delta(prev.counters.get(key), cur.counters.get(key));
  const interval = { interval_seconds: fixed(seconds, 3) };

  const retrans = grew("Tcp.RetransSegs");
  const out = grew("Tcp.OutSegs");
  if (retrans !== undefined && out !== undefined && retrans > 0) {
    const ratio = out > 0 ? retrans / out : 1;
    const rate = retrans / seconds;
    const byRatio = out >= config.retransmit_min_segments && ratio >= config.retransmit_ratio;
    const byRate = config.retransmit_rate > 0 && rate >= config.retransmit_rate;
    if (byRatio || byRate) {
      const timeouts = grew("TcpExt.TCPTimeouts");
      events.push({
        type: "network.tcp.retransmits",
        severity: "warning",
        event_data: {
          network: { event_type: "tcp_retransmits", protocol: "tcp" },
          custom: {
            retrans_segs: String(retrans),
            out_segs: String(out),
            ratio: fixed(ratio, 4),
            rate_per_second: fixed(rate, 2),
            ...(timeouts !== undefined ? { tcp_timeouts: String(timeouts) } : {}),
            ...interval,
            ...socketContext(cur.sockets),
          },
        },
      });
    }
  }

  // ListenDrops counts every SYN or ACK a listener dropped, overflows included.
  const overflows = grew("TcpExt.ListenOverflows");
  const drops = grew("TcpExt.ListenDrops");
  if ((overflows ?? 0) > 0 || (drops ?? 0) > 0) {
    events.push({
      type: "network.listen_overflow",
      severity: "warning",
      event_data: {
        network: { event_type: "listen_overflow", protocol: "tcp", direction: "inbound" },
        custom: {
          ...(overflows !== undefined ? { listen_overflows: String(overflows) } : {}),
          ...(drops !== undefined ? { listen_drops: String(drops) } : {}),
          ...interval,
          ...socketContext(cur.sockets),
        },
      },
    });
  }

  for (const [name, after] of cur.interfaces) {
    const before = prev.interfaces.get(name);
    if (!before) continue;
    let errors = 0;
    let dropped = 0;
    for (const [column, value] of after) {
      if (column === "rx_errs" || column === "tx_errs") errors += delta(before.get(column), value) ?? 0;
      if (column === "rx_drop" || column === "tx_drop") dropped += delta(before.get(column), value) ?? 0;
    }
    const isErrors = config.interface_errors_min > 0 && errors >= config.interface_errors_min;
    const isDrops = config.interface_drops_min > 0 && dropped >= config.interface_drops_min;
    if (!isErrors && !isDrops) continue;
    // Every failure column's delta, for the event only: most polls of most interfaces have none to report.
    const custom: Record<string, string> = { interface: name };
    for (const [column, value] of after) {
      const d = delta(before.get(column), value);
      if (d !== undefined && isFailureColumn(column)) custom[column] = String(d);
    }
    events.push({
      type: "network.interface.errors",
      severity: isErrors ? "warning" : "low",
      event_data: {
        network: { event_type: isErrors ? "interface_errors" : "interface_drops", protocol: "link" },
        custom: { ...custom, errors: String(errors), drops: String(dropped), ...interval },
      },
    });
  }
  return events;
}

type ConntrackLevel = "ok" | "near" | "full";
/** Recovery needs the ratio this far below the threshold, so a table hovering at it does not flap. */
const CONNTRACK_HYSTERESIS = 0.05;

function conntrackLevel(count: number, max: number, threshold: number, was: ConntrackLevel): ConntrackLevel {
  if (count >= max) return "full";
  const ratio = count / max;
  if (ratio >= threshold) return "near";
  return was !== "ok" && ratio >= threshold - CONNTRACK_HYSTERESIS ? "near" : "ok";
}

export class NetworkCollector implements Collector {
  readonly #config: NetworkConfig;
  #last: Sample | undefined;
  #conntrack: ConntrackLevel = "ok";

  constructor(config: NetworkConfig) {
    this.#config = config;
  }

  run(ctx: CollectorContext): Promise<void> {
    return poll(ctx, this.#config.interval.ms, () => this.#round(ctx));
  }

  /** One poll: read every source, emit what changed, then report the sources that were missing. */
  async #round(ctx: CollectorContext): Promise<void> {
    const { sample, missing } = this.#read(ctx);
    const events = this.#last ? counterEvents(this.#last, sample, this.#config) : [];
    // A gauge needs no baseline: conntrack is judged from the first poll on.
    const conntrack = this.#conntrackEvent(sample.conntrack);
    if (conntrack) events.push(conntrack);
    this.#last = sample;
    await emitAll(ctx, events);
    if (missing.length > 0) throw new Error(missing.join("; "));
  }

  /** Reads every source, synchronously: six small procfs files the kernel builds in memory. */
  #read(ctx: CollectorContext): { sample: Sample; missing: string[] } {
    const net = (file: string) => under(this.#config.proc_root, this.#config.net_dir, file);
    const netfilter = (file: string) => under(this.#config.proc_root, "sys/net/netfilter", file);
    const read = <T>(path: string, source: string, parse: (text: string, fail: (d: string) => void) => T): { value?: T; missing?: string } => {
      let text: string;
      try {
        text = readTextSync(path);
      } catch (err) {
        return { missing: (err as Error).message };
      }
      return { value: parse(text, (detail) => ctx.parseError(source, detail)) };
    };
    const skipped: { value?: number; missing?: string } = {};
    const counters = new Map<string, number>();
    const [snmp, netstat, dev, sockstat, count, max] = [
      read(net("snmp"), "net/snmp", (text, fail) => parseCounterPairs(text, fail, counters)),
      read(net("netstat"), "net/netstat", (text, fail) => parseCounterPairs(text, fail, counters)),
      read(net("dev"), "net/dev", parseNetDev),
      read(net("sockstat"), "net/sockstat", parseSockstat),
      this.#config.conntrack ? read(netfilter("nf_conntrack_count"), "nf_conntrack_count", parseGauge) : skipped,
      this.#config.conntrack ? read(netfilter("nf_conntrack_max"), "nf_conntrack_max", parseGauge) : skipped,
    ];
    const sample: Sample = {
      at: performance.now(),
      counters,
      interfaces: dev.value ?? new Map(),
      sockets: sockstat.value ?? new Map(),
    };
    // nf_conntrack_max 0 means no limit was set: nothing to be near.
    if (count.value !== undefined && max.value !== undefined && max.value > 0) sample.conntrack = { count: count.value, max: max.value };
    // In a fixed order, so the degraded reason only changes when the problem does.
    const missing = [snmp, netstat, dev, sockstat, count, max].flatMap((r) => (r.missing ? [r.missing] : []));
    return { sample, missing };
  }

  /** An event when the table crosses into near-full or full, and one when it is back below. */
  #conntrackEvent(reading: Sample["conntrack"]): EventInput | undefined {
    if (!reading) return undefined;
    const { count, max } = reading;
    const was = this.#conntrack;
    const level = conntrackLevel(count, max, this.#config.conntrack_ratio, was);
    this.#conntrack = level;
    const rank = { ok: 0, near: 1, full: 2 };
    if (rank[level] === rank[was] || (level === "near" && was === "full")) return undefined;
    const custom = {
      count: String(count),
      max: String(max),
      ratio: fixed(count / max, 4),
      threshold: String(this.#config.conntrack_ratio),
    };
    if (level === "ok") {
      return {
        type: "network.conntrack.recovered",
        severity: "info",
        event_data: { network: { event_type: "conntrack_recovered", protocol: "ip" }, custom },
      };
    }
    return {
      type: "network.conntrack.near_limit",
      // Full: the kernel drops new connections ("nf_conntrack: table full, dropping packet").
      severity: level === "full" ? "critical" : "warning",
      event_data: { network: { event_type: level === "full" ? "conntrack_full" : "conntrack_near_limit", protocol: "ip" }, custom },
    };
  }
}

export const networkFactory: CollectorFactory<NetworkConfig> = {
  type: "network",
  events: networkEvents,
  description: "TCP retransmits, listen overflows, interface errors and conntrack usage from /proc/net counters",
  configSchema: networkConfigSchema,
  // Healthy networks are quiet: it emits only on trouble.
  quietPeriodMs: () => undefined,
  sources: (c) => [readableDirectory(under(c.proc_root, c.net_dir))],
  create: (config) => new NetworkCollector(config),
};
