// Profiles: `profile: low | medium | high` sets poll intervals, thresholds,
// workers and buffer sizes together. A profile only supplies defaults: its
// values are merged into the file's document before validation wherever the
// file does not set the key, so the file always wins, and errors still point
// at what the file says.
import * as v from "valibot";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { expectedGot, type Schema } from "./kit.ts";
import { isPlainMapping } from "./parse.ts";
import { configSchema } from "./schema.ts";
import { suggest } from "./suggest.ts";
import { instanceType } from "../orchestrator/instance.ts";

export const PROFILE_NAMES = ["low", "medium", "high"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** A key's value under low and high, written as in a config file (durations and sizes as text). */
export type ProfileRow = Readonly<Record<Exclude<ProfileName, "medium">, number | string>>;

/**
 * The one table of profile values, by dotted path as written in a file
 * (collector keys under `collectors.<name>.config`). Every profile sets every
 * key, so switching profiles changes the same keys. `medium` is each key's
 * default in its schema (mediumValues), not repeated here: `profile: medium`
 * changes nothing.
 *
 * low: small nodes, few events; poll less often, report only clear problems,
 * and keep memory and disk small. high: busy nodes with capacity to spare;
 * poll more often to see short-lived problems, and move and hold more events.
 * The thresholds stay at medium for high: a busy node runs hot by design, and
 * more sensitive thresholds there would only add noise.
 */
export const PROFILE_TABLE = {
  // --- delivery -----------------------------------------------------------
  // Batches in flight at once. Bun runs the workers on one thread, so more
  // workers cost memory, not cores; they hide NATS round trips at high rates.
  // Two keep a small node's few events flowing while one batch awaits its ack.
  "orchestrator.workers": { low: 2, high: 8 },
  // Events per batch: larger batches mean fewer flushes and acks per event
  // when there are many events; smaller ones keep each batch's memory low.
  "orchestrator.batch_size": { low: 256, high: 1024 },
  // The in-memory queue absorbs bursts and short NATS stalls before the spool
  // takes over. At low's rates 2000 events is still minutes of headroom; a busy
  // node fills 10000 in seconds during a burst.
  "orchestrator.buffer.max_events": { low: 2000, high: 50_000 },
  // Bytes bound of the same queue, the agent's main memory use: low fits a
  // 128Mi container limit; high needs a limit of about 1Gi (the DaemonSet's
  // 512Mi leaves room for medium's 64MiB).
  "orchestrator.buffer.max_bytes": { low: "16MiB", high: "256MiB" },
  // How much of a NATS outage the node can ride out on disk, at roughly 600
  // bytes per event: 256MiB is ~450k events (hours at a small node's rate,
  // and small nodes have small disks); 4GiB is ~7M, about two hours at
  // 1000 events/s.
  "spool.max_bytes": { low: "256MiB", high: "4GiB" },

  // --- kubelet --------------------------------------------------------------
  // Each poll is a full /pods list. 30s still sees every waiting or failed
  // container, only later; 5s sees a crash loop's first restarts (the
  // kubelet's back-off starts at 10s).
  "collectors.kubelet.config.pods_interval": { low: "30s", high: "5s" },
  // /stats/summary is the kubelet's most expensive endpoint. Its numbers are
  // refreshed about every 10-15s, so polling faster than 15s (metrics-server's
  // resolution) reads the same numbers again.
  "collectors.kubelet.config.stats_interval": { low: "60s", high: "15s" },
  // Restarts before a container counts as crash looping: low waits for a
  // clearer pattern.
  "collectors.kubelet.config.crash_loop_restarts": { low: 5, high: 3 },
  // Slow readiness probes on a small, loaded node are common; wait longer.
  "collectors.kubelet.config.not_ready_after": { low: "60s", high: "30s" },
  // Small nodes run close to their limits more often: report only the last
  // few percent before trouble.
  "collectors.kubelet.config.ephemeral_storage_percent": { low: 95, high: 90 },
  "collectors.kubelet.config.node_memory_percent": { low: 95, high: 90 },
  "collectors.kubelet.config.node_cpu_percent": { low: 95, high: 90 },

  // --- memory (PSI, meminfo, cgroups) ----------------------------------------
  // Each round reads PSI, meminfo and every pod's cgroup. PSI avg10 is already
  // a 10s average, so 30s still catches sustained pressure and only misses
  // brief spikes; avg10 updates every 2s, so 5s sees pressure begin sooner.
  "collectors.memory.config.interval": { low: "30s", high: "5s" },
  // PSI thresholds (percent of wall time stalled): low reports only pressure
  // that clearly hurts, twice medium's (about 1.5x for the already high cpu and io).
  "collectors.memory.config.psi.memory.some_avg10": { low: 20, high: 10 },
  "collectors.memory.config.psi.memory.full_avg10": { low: 10, high: 5 },
  "collectors.memory.config.psi.cpu.some_avg10": { low: 90, high: 80 },
  "collectors.memory.config.psi.io.some_avg10": { low: 60, high: 40 },
  "collectors.memory.config.psi.io.full_avg10": { low: 30, high: 20 },
  // Node memory pressure at either bound. Both move for low: on a 1GiB node
  // 100MiB is already 10%, so lowering the percent alone would change nothing.
  "collectors.memory.config.memory_available.percent": { low: 5, high: 10 },
  "collectors.memory.config.memory_available.bytes": { low: "50MiB", high: "100MiB" },
  // Containers near their memory limit, and CFS throttling: only the clear cases on low.
  "collectors.memory.config.cgroup_memory_percent": { low: 95, high: 90 },
  "collectors.memory.config.cpu_throttling.percent": { low: 50, high: 25 },

  // --- kernel -----------------------------------------------------------------
  // How often an idle kernel log is checked: records wait in the kernel's ring
  // buffer meanwhile, so a longer wait only delays them; checking is cheap.
  "collectors.kernel.config.read_interval": { low: "5s", high: "500ms" },
  // The oom_kill counter only counts; the kernel log gives the details.
  "collectors.kernel.config.vmstat_interval": { low: "30s", high: "5s" },

  // --- process ----------------------------------------------------------------
  // Each poll lists /proc; a process living shorter than the interval may be
  // missed. low accepts that for short-lived ones; 2s catches most of them on
  // a busy node at the cost of more /proc reads.
  "collectors.process.config.interval": { low: "15s", high: "2s" },
  // Events per poll before the rest of a fork storm is only counted: about
  // 7/s on low, 100/s on medium, 1000/s on high.
  "collectors.process.config.max_events_per_poll": { low: 100, high: 2000 },

  // --- network ----------------------------------------------------------------
  // Counters are cheap to read; rates and ratios are per interval, and busy
  // nodes send enough segments for a 10s ratio to mean something.
  "collectors.network.config.interval": { low: "30s", high: "10s" },
  "collectors.network.config.retransmit_ratio": { low: 0.1, high: 0.05 },
  // Per interface and interval. Errors are rare and real, but low waits for
  // more than a stray one; drops of a few hundred are normal under load.
  "collectors.network.config.interface_errors_min": { low: 5, high: 1 },
  "collectors.network.config.interface_drops_min": { low: 500, high: 100 },
  "collectors.network.config.conntrack_ratio": { low: 0.9, high: 0.8 },

  // --- dns ----------------------------------------------------------------------
  // Every node probes the cluster DNS: fewer probes from many small nodes
  // spare CoreDNS; 10s finds an outage within seconds on busy nodes.
  "collectors.dns.config.interval": { low: "60s", high: "10s" },
  // Small nodes' answers are slower (CPU, a busier network): report later.
  "collectors.dns.config.latency_warning": { low: "500ms", high: "250ms" },
  "collectors.dns.config.latency_high": { low: "2s", high: "1s" },
} as const satisfies Readonly<Record<string, ProfileRow>>;

/** A collector's row of the table: `collectors.<type>.config.<keys>`. */
const COLLECTOR_PATH = /^collectors\.([^.]+)\.config\.(.+)$/;

/**
 * A profile key that is not filled where the file sets this other key: the
 * short forms of the queue bounds, which the schema refuses alongside their
 * long forms. The user's short form must win, not become an error.
 */
const SUPPRESSED_BY: Readonly<Record<string, string>> = {
  "orchestrator.buffer.max_events": "orchestrator.buffer_size",
  "orchestrator.buffer.max_bytes": "orchestrator.buffer_bytes",
};

export function isProfileName(value: unknown): value is ProfileName {
  return PROFILE_NAMES.some((name) => name === value);
}

/** The top-level `profile` key: one of the names, with a "did you mean" for a typo. */
export function profileSchema(): Schema<ProfileName> {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const input = dataset.value;
      if (isProfileName(input)) return input;
      const close = typeof input === "string" ? suggest(input, PROFILE_NAMES) : undefined;
      addIssue({ message: `${expectedGot(`one of ${PROFILE_NAMES.join(", ")}`, input)}${close ? ` (did you mean "${close}"?)` : ""}` });
      return NEVER;
    }),
  );
}

/**
 * medium: each profile key's default, found by parsing an empty config with
 * the schemas (the agent's, and each collector's for `collectors.<name>.config`).
 * A collector that requires a key (dns: names) still fills in its defaults.
 */
export function mediumValues(registry: CollectorRegistry): Record<keyof typeof PROFILE_TABLE, unknown> {
  const agent = v.safeParse(configSchema(registry), {}).output;
  const collectors = new Map<string, unknown>();
  const values: Record<string, unknown> = {};
  for (const path of Object.keys(PROFILE_TABLE)) {
    const collector = COLLECTOR_PATH.exec(path);
    let node: unknown = agent;
    let keys = path;
    if (collector) {
      const [, name, rest] = collector as unknown as [string, string, string];
      if (!collectors.has(name)) collectors.set(name, v.safeParse(registry.get(name)!.configSchema, {}).output);
      node = collectors.get(name);
      keys = rest;
    }
    for (const key of keys.split(".")) node = (node as Record<string, unknown> | undefined)?.[key];
    values[path] = node;
  }
  return values as Record<keyof typeof PROFILE_TABLE, unknown>;
}

/** A profile as a partial config document, as if written in a file. */
export function profileDocument(name: ProfileName, registry: CollectorRegistry): Record<string, unknown> {
  const medium = name === "medium" ? mediumValues(registry) : undefined;
  let document: Record<string, unknown> = {};
  for (const [path, row] of Object.entries(PROFILE_TABLE)) {
    const value = medium ? medium[path as keyof typeof PROFILE_TABLE] : row[name as keyof ProfileRow];
    // Durations go back to their notation, as a file writes them.
    document = fill(document, path.split("."), typeof value === "object" && value !== null ? String(value) : value, "", true);
  }
  return document;
}

/**
 * The document with its profile's values filled in where the file does not
 * set them. Without a valid profile the document is returned as is (the
 * schema reports a bad name). The document is not changed: a copy is made
 * along each path filled, so locations still refer to the file as written.
 *
 * - A key written in the file counts as set, whatever its value: a value from
 *   the environment, or one that is invalid (the schema reports it). A key left
 *   out because it expanded to nothing is not set, so the profile's value
 *   applies, as a default would.
 * - An empty mapping (`orchestrator:`) is filled like a missing one.
 * - A collector is only configured, never enabled: its keys are filled only
 *   when the file names it under `collectors`, in each instance of its type
 *   (`dns` and `dns/external` alike).
 */
export function applyProfile(document: Record<string, unknown>): Record<string, unknown> {
  const name = document.profile;
  // medium is the schemas' defaults: nothing to fill.
  if (!isProfileName(name) || name === "medium") return document;
  let result = document;
  const collectorKeys = isPlainMapping(document.collectors) ? Object.keys(document.collectors) : [];
  for (const [path, row] of Object.entries(PROFILE_TABLE)) {
    const other = SUPPRESSED_BY[path];
    if (other !== undefined && isSet(document, other.split("."))) continue;
    const collector = COLLECTOR_PATH.exec(path);
    if (!collector) {
      result = fill(result, path.split("."), row[name], "", false);
      continue;
    }
    // Every instance of the type the file names: dns, dns/cluster, dns/external.
    const [, type, rest] = collector as unknown as [string, string, string];
    for (const key of collectorKeys) {
      if (instanceType(key) === type) result = fill(result, ["collectors", key, "config", ...rest.split(".")], row[name], "", false);
    }
  }
  return result;
}

function isSet(node: unknown, keys: readonly string[]): boolean {
  for (const key of keys) {
    if (!isPlainMapping(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return true;
}

function withKey(mapping: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  // Spread and a computed key define own properties, so a written __proto__ key stays a key.
  return { ...mapping, [key]: value };
}

/** `mapping` with `value` at `keys` unless set there; the same object when nothing changed. */
function fill(mapping: Record<string, unknown>, keys: readonly string[], value: unknown, path: string, createCollectors: boolean): Record<string, unknown> {
  const [key, ...rest] = keys;
  if (key === undefined) return mapping;
  const has = Object.hasOwn(mapping, key);
  if (rest.length === 0) return has ? mapping : withKey(mapping, key, value);
  if (!has && path === "collectors" && !createCollectors) return mapping;
  const current = has ? mapping[key] : undefined;
  // A scalar or list where a mapping belongs is the file's to get wrong.
  if (has && current !== null && !isPlainMapping(current)) return mapping;
  const base = isPlainMapping(current) ? current : {};
  const next = fill(base, rest, value, path === "" ? key : `${path}.${key}`, createCollectors);
  return next === base ? mapping : withKey(mapping, key, next);
}
