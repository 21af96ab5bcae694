// Shared by the multi-destination tests (issue 15): the per-destination
// accounts of the agent's final log line and of GET /status, metric values
// by label, a core subscriber that timestamps each arrival, and a kernel
// "node" (a kmsg recording and a /proc) for the kernel collector.
import { expect } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { makeTempDir } from "../helpers/cleanup.ts";
import { OOM_6_18, TESTDATA } from "../collectors/kernel/helpers.ts";
import type { LogLine, StreamMessage } from "../fault/harness.ts";

// ---------------------------------------------------------------- accounts

export const ACCOUNT_KEYS = ["accepted", "inherited", "published", "discarded", "in_spool", "lost"] as const;
export type Accounts = Record<(typeof ACCOUNT_KEYS)[number], number>;

/**
 * One destination's accounts on the final log line (`destinations.<name>`):
 * all six numbers present, accepted + inherited = published + discarded +
 * in_spool + lost, and whatever `expected` pins.
 */
export function expectDestinationAccounts(final: LogLine | undefined, name: string, expected: Partial<Accounts> = {}): Accounts {
  expect(final).toBeDefined();
  const accounts = final!.destinations?.[name] as Accounts | undefined;
  if (!accounts) throw new Error(`the final log line has no destinations.${name}: ${JSON.stringify(final)}`);
  for (const key of ACCOUNT_KEYS) expect({ [key]: typeof accounts[key] }).toEqual({ [key]: "number" });
  expect({ [name]: accounts.accepted + accounts.inherited }).toEqual({ [name]: accounts.published + accounts.discarded + accounts.in_spool + accounts.lost });
  expect(accounts).toMatchObject(expected);
  return accounts;
}

/** Every destination on the final line balances; returns their names. */
export function expectEveryDestinationBalances(final: LogLine | undefined): string[] {
  const names = Object.keys(final?.destinations ?? {});
  for (const name of names) expectDestinationAccounts(final, name);
  return names;
}

export function pickAccounts(a: Record<string, any> | undefined): Partial<Accounts> | undefined {
  if (!a) return undefined;
  return Object.fromEntries(ACCOUNT_KEYS.map((k) => [k, a[k]]));
}

// ---------------------------------------------------------------- HTTP

/** GET /status of the agent at `base` (its "HTTP endpoints on" URL). */
export async function getStatus(base: string): Promise<Record<string, any>> {
  const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as Record<string, any>;
}

/** GET /status, undefined if the agent did not answer (busy, starting, gone). */
export async function tryStatus(base: string): Promise<Record<string, any> | undefined> {
  try {
    return await getStatus(base);
  } catch {
    return undefined;
  }
}

export async function getMetrics(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
}

/**
 * The sum of every sample of `name` whose labels include all of `labels`
 * (other labels, e.g. `collector`, summed over); 0 when there is none.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Whether any sample of `name` carries the label `destination="<destination>"`. */
export function hasDestinationSeries(text: string, name: string, destination: string): boolean {
  return text.split("\n").some((l) => l.startsWith(`${name}{`) && l.includes(`destination="${destination}"`));
}

// ---------------------------------------------------------------- a subscriber

export interface Arrival {
  /** ms since epoch (fractional), when the message reached this process */
  at: number;
  subject: string;
  /** the Nats-Msg-Id header: the event's id */
  id: string;
}

export interface Subscriber {
  readonly arrivals: Arrival[];
  close(): Promise<void>;
}

/**
 * A core NATS subscriber on `subject`: it sees every publish the server
 * takes (a JetStream publish too, and a retried one twice), stamped as it arrives.
 */
export async function subscribe(url: string, subject: string): Promise<Subscriber> {
  const nc: NatsConnection = await connect({ servers: url });
  const arrivals: Arrival[] = [];
  const origin = performance.timeOrigin;
  nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) return;
      arrivals.push({ at: origin + performance.now(), subject: msg.subject, id: msg.headers?.get("Nats-Msg-Id") ?? "" });
    },
  });
  await nc.flush(); // the subscription is registered at the server before anything is published
  return { arrivals, close: () => nc.close() };
}

export interface Gap {
  ms: number;
  /** the arrival that ended the gap */
  at: number;
}

/** The largest gap between consecutive arrivals at or after `from` and at or before `to` (ms since epoch). */
export function largestGap(arrivals: readonly Arrival[], from = -Infinity, to = Infinity): Gap {
  let best: Gap = { ms: 0, at: Number.NaN };
  let prev: number | undefined;
  for (const a of arrivals) {
    if (a.at < from || a.at > to) continue;
    if (prev !== undefined && a.at - prev > best.ms) best = { ms: a.at - prev, at: a.at };
    prev = a.at;
  }
  return best;
}

// ---------------------------------------------------------------- streams

/** Message counts by subject. */
export function countBySubject(messages: readonly StreamMessage[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of messages) counts[m.subject] = (counts[m.subject] ?? 0) + 1;
  return counts;
}

/** The event ids of the messages on `subject`. */
export function idsOn(messages: readonly StreamMessage[], subject: string): Set<string> {
  return new Set(messages.filter((m) => m.subject === subject).map((m) => m.eventId));
}

/** The synthetic seqs on `subject`, sorted. */
export function seqsOn(messages: readonly StreamMessage[], subject: string): number[] {
  return messages
    .filter((m) => m.subject === subject)
    .map((m) => m.seq)
    .sort((x, y) => x - y);
}

/** seqs are lo, lo+1, ..., hi: each once, none missing between the first and the last. */
export function expectContiguous(seqs: readonly number[], what: string): { lo: number; hi: number } {
  expect({ what, empty: seqs.length === 0 }).toEqual({ what, empty: false });
  const lo = seqs[0]!;
  const hi = seqs.at(-1)!;
  const broken = seqs.findIndex((s, i) => s !== lo + i);
  expect({ what, count: seqs.length, firstBreakAt: broken === -1 ? undefined : seqs.slice(Math.max(0, broken - 1), broken + 2) }).toEqual({
    what,
    count: hi - lo + 1,
    firstBreakAt: undefined,
  });
  return { lo, hi };
}

// ---------------------------------------------------------------- the kernel collector

/** The real OOM kill of testdata (Linux 6.18): two events, container.oom (error) and NPD's OOMKilling kernel.problem (warning). */
export const KERNEL_EVENTS = 2;

/**
 * A kmsg recording and a /proc (a boot id, vmstat as recorded, so no vmstat
 * event) for the kernel collector; `config` is its `collectors.kernel` value.
 */
export function kernelNode(): { config: string } {
  const dir = makeTempDir("kernel-node");
  const proc = join(dir, "proc");
  mkdirSync(join(proc, "sys/kernel/random"), { recursive: true });
  writeFileSync(join(proc, "sys/kernel/random/boot_id"), "6e1f0a52-94c4-4f7e-b0a6-3b1de4c0a1f1\n");
  writeFileSync(join(proc, "vmstat"), readFileSync(join(TESTDATA, "proc/vmstat"), "utf8"));
  const kmsg = join(dir, "kmsg");
  writeFileSync(kmsg, readFileSync(OOM_6_18));
  return { config: `{ config: { kmsg_path: ${kmsg}, replay: true, proc_root: ${proc}, read_interval: 100ms } }` };
}
