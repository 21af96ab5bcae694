// What a reloaded configuration changes in a running agent, worked out
// before anything is touched: which collectors start, stop or restart,
// whether NATS reconnects, and which changed settings wait for a restart.
import type { Config } from "../config/schema.ts";

/** Settings a reload cannot change in a running agent: they are read once at start. */
const RESTART_KEYS = [
  ["orchestrator", "workers"],
  ["orchestrator", "batch_size"],
  ["orchestrator", "buffer"],
  ["nats", "circuit_breaker"],
  ["spool", "enabled"],
  ["spool", "path"],
  ["spool", "max_bytes"],
  ["spool", "when_full"],
  ["spool", "spill_after"],
  ["http", "enabled"],
  ["http", "listen"],
  // the MeterProvider's readers are fixed when it is built (sdk-metrics 2.x)
  ["telemetry", "otlp"],
] as const;

export type CollectorChange = "start" | "stop" | "restart";

export interface ReloadPlan {
  /** the default destination's NATS settings changed: a new publisher takes over */
  reconnect: boolean;
  /** destinations (default among them) to add, remove, or give a new publisher */
  destinations: { add: string[]; remove: string[]; reconnect: string[] };
  /** by collector name */
  collectors: Array<{ name: string; change: CollectorChange }>;
  /** changed settings that are read once at start */
  needRestart: string[];
}

/** `running`: the collectors running now. */
export function planReload(before: Config, next: Config, running: ReadonlySet<string>): ReloadPlan {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  // Encoders are made for a subject: a new one restarts every collector.
  const resubject = next.nats.subject !== before.nats.subject;
  const collectors: ReloadPlan["collectors"] = [];
  for (const name of new Set([...Object.keys(before.collectors), ...Object.keys(next.collectors)])) {
    const was = running.has(name);
    const wanted = next.collectors[name]?.enabled === true;
    const changed = resubject || !same(before.collectors[name]?.config, next.collectors[name]?.config);
    if (was && !wanted) collectors.push({ name, change: "stop" });
    else if (wanted && !was) collectors.push({ name, change: "start" });
    else if (wanted && changed) collectors.push({ name, change: "restart" });
  }
  const needRestart = RESTART_KEYS.filter(([section, key]) => !same((before[section] as Record<string, unknown>)[key], (next[section] as Record<string, unknown>)[key])).map(
    ([section, key]) => `${section}.${key}`,
  );
  const destinations: ReloadPlan["destinations"] = { add: [], remove: [], reconnect: [] };
  const reconnect = !same(publisherSettings(before.nats), publisherSettings(next.nats));
  if (reconnect) destinations.reconnect.push("default");
  for (const name of new Set([...Object.keys(before.destinations), ...Object.keys(next.destinations)])) {
    const was = before.destinations[name];
    const wanted = next.destinations[name];
    if (!wanted) destinations.remove.push(name);
    else if (!was) destinations.add.push(name);
    else {
      if (!same(publisherSettings(was), publisherSettings(wanted))) destinations.reconnect.push(name);
      if (!same(was.circuit_breaker, wanted.circuit_breaker)) needRestart.push(`destinations.${name}.circuit_breaker`);
    }
  }
  return { reconnect, destinations, collectors, needRestart };
}

/** The nats settings a publisher is built from: the circuit breakers are the orchestrator's, read once at start. */
function publisherSettings({ circuit_breaker: _, ...publisher }: Config["nats"]): Omit<Config["nats"], "circuit_breaker"> {
  return publisher;
}
