// Shared pieces of the fault tests: the agent as a real process whose log is
// read line by line while it runs, reading back a whole JetStream stream,
// reading the ids a spool file holds, sampling the agent's RSS, and the
// delivery accounting every test asserts on the agent's final log line.
// FAULT_DEBUG=1 prints each agent's whole log when it exits.
import { expect } from "bun:test";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import type { Subprocess } from "bun";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { spawnAgent } from "../helpers/agent.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";
import type { NatsServer } from "../helpers/nats-server.ts";

// ---------------------------------------------------------------- the agent

export type LogLine = Record<string, any>;

export interface AgentProcess {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly pid: number;
  /** ms since epoch when spawned */
  readonly startedAt: number;
  /** every JSON log line so far, parsed, in order */
  readonly lines: LogLine[];
  /** resolves with the exit code once the process ended and its output was read */
  readonly exited: Promise<number>;
  /** ms since epoch when it exited (set once `exited` resolved) */
  readonly endedAt: number | undefined;
  stderr(): string;
  /** The first log line (from the start) matching `match`; rejects after `timeoutMs` or if the agent exits first. */
  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** The "shutdown complete" / "shutdown deadline passed" line, if logged. */
  final(): LogLine | undefined;
  kill(signal: NodeJS.Signals): void;
}

const agents = new Set<AgentProcess>();

/** Starts the agent from source (bun src/main.ts, or `command`); its stdout is parsed as it arrives. */
export function startAgent(args: string[], command?: string[]): AgentProcess {
  const proc = spawnAgent(args, { command }) as Subprocess<"ignore", "pipe", "pipe">;
  killAtExit(proc.pid);
  const lines: LogLine[] = [];
  let stderrText = "";
  const readStdout = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) if (p.startsWith("{")) lines.push(JSON.parse(p));
    }
    if (rest.startsWith("{")) lines.push(JSON.parse(rest));
  })();
  const readStderr = new Response(proc.stderr).text().then((t) => {
    stderrText = t;
  });
  let endedAt: number | undefined;
  const exited = (async () => {
    const code = await proc.exited;
    endedAt = Date.now();
    await Promise.all([readStdout, readStderr]);
    spare(proc.pid);
    return code;
  })();
  const agent: AgentProcess = {
    proc,
    pid: proc.pid,
    startedAt: Date.now(),
    lines,
    exited,
    get endedAt() {
      return endedAt;
    },
    stderr: () => stderrText,
    async waitForLog(match, what, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      let done = false;
      void agent.exited.then(() => (done = true));
      for (;;) {
        const hit = lines.find(match);
        if (hit) return hit;
        if (done) throw new Error(`agent exited before logging ${what}; last lines:\n${tail(lines)}\nstderr: ${stderrText}`);
        if (Date.now() > until) throw new Error(`agent did not log ${what} within ${timeoutMs} ms; last lines:\n${tail(lines)}`);
        await Bun.sleep(10);
      }
    },
    final: () => lines.findLast((l) => typeof l.msg === "string" && /^shutdown (complete|deadline passed)/.test(l.msg)),
    kill: (signal) => proc.kill(signal),
  };
  agents.add(agent);
  void exited.then(() => agents.delete(agent));
  return agent;
}

/** SIGKILLs every agent still running; use in afterEach/afterAll. */
/** After a fault test, even a failed one: its agents killed, its servers thawed (SIGSTOP) and stopped. */
export async function endFaultTest(servers: NatsServer[]): Promise<void> {
  await killAllAgents();
  for (const server of servers.splice(0)) {
    await server.kill("SIGCONT").catch(() => {});
    await server.stop();
  }
}

export async function killAllAgents(): Promise<void> {
  const running = [...agents];
  for (const a of running) a.kill("SIGKILL");
  await Promise.all(running.map((a) => a.exited));
}

/** Waits for the exit, but SIGKILLs the agent (and fails) after `timeoutMs`. */
export async function exitCode(agent: AgentProcess, timeoutMs: number): Promise<number> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    agent.kill("SIGKILL");
  }, timeoutMs);
  const code = await agent.exited;
  clearTimeout(timer);
  if (process.env.FAULT_DEBUG) console.log(`agent ${agent.pid} exited ${code} at ${new Date(agent.endedAt!).toISOString()}:\n${tail(agent.lines, 1000)}`);
  if (timedOut) throw new Error(`agent did not exit within ${timeoutMs} ms; last lines:\n${tail(agent.lines)}`);
  return code;
}

export function tail(lines: LogLine[], n = 15): string {
  return lines.slice(-n).map((l) => JSON.stringify(l)).join("\n");
}

export const msgStartsWith = (prefix: string) => (l: LogLine) => typeof l.msg === "string" && l.msg.startsWith(prefix);

/**
 * The delivery accounting on the agent's final log line: every accepted
 * (or inherited) event is published, discarded, in the spool, or lost.
 */
export function expectAccounting(final: LogLine | undefined, expected: Partial<Record<"accepted" | "inherited" | "published" | "discarded" | "in_spool" | "lost", number>>): LogLine {
  expect(final).toBeDefined();
  const f = final!;
  for (const key of ["accepted", "inherited", "published", "discarded", "dropped", "in_spool", "lost"]) {
    expect(typeof f[key]).toBe("number");
  }
  expect(f.accepted + f.inherited).toBe(f.published + f.discarded + f.in_spool + f.lost);
  expect(f).toMatchObject(expected);
  return f;
}

// ---------------------------------------------------------------- the stream

export interface StreamMessage {
  streamSeq: number;
  subject: string;
  /** the Nats-Msg-Id header */
  msgId: string;
  /** event_id in the payload */
  eventId: string;
  /** event_data.custom.seq of a synthetic event, else NaN */
  seq: number;
  /** the event's timestamp, ms since epoch */
  timestampMs: number;
}

/** Every message of `stream`, in stream order, read with an ordered consumer. */
export async function readStream(url: string, stream: string, timeoutMs = 20_000): Promise<StreamMessage[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const out: StreamMessage[] = [];
    if (total === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.consume({ max_messages: 2000 });
    const timer = setTimeout(() => messages.stop(), timeoutMs);
    try {
      for await (const m of messages) {
        const body = m.json<{ event_id: string; timestamp: string; event_data?: { custom?: { seq?: string } } }>();
        out.push({
          streamSeq: m.seq,
          subject: m.subject,
          msgId: m.headers?.get("Nats-Msg-Id") ?? "",
          eventId: body.event_id,
          seq: Number(body.event_data?.custom?.seq ?? Number.NaN),
          timestampMs: timestampMs(body.timestamp),
        });
        if (out.length >= total) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    if (out.length < total) throw new Error(`read ${out.length} of ${total} messages of ${stream} within ${timeoutMs} ms`);
    return out;
  } finally {
    await nc.close();
  }
}

/** The stream's message count, or undefined when the stream does not exist (yet). */
export async function streamCount(url: string, stream: string): Promise<number | undefined> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } catch (err) {
    if (/stream not found/i.test(String(err))) return undefined;
    throw err;
  } finally {
    await nc.close();
  }
}

/** RFC 3339 with up to nanoseconds, UTC, to ms since epoch. */
function timestampMs(ts: string): number {
  return Date.parse(ts.replace(/(\.\d{3})\d*Z$/, "$1Z"));
}

/**
 * The checks every test makes of a stream: the header id is the payload's
 * event_id, and no event_id occurs twice. Returns the set of ids.
 */
export function expectNoDuplicates(messages: readonly StreamMessage[]): Set<string> {
  const mismatched = messages.filter((m) => m.msgId !== m.eventId);
  expect(mismatched.slice(0, 3)).toEqual([]);
  const ids = new Set(messages.map((m) => m.eventId));
  expect(ids.size).toBe(messages.length);
  return ids;
}

/** Synthetic seqs 0..n-1 each present exactly once. */
export function expectSeqs(messages: readonly StreamMessage[], n: number): void {
  const seen = new Uint8Array(n);
  let outOfRange = 0;
  for (const m of messages) {
    if (Number.isInteger(m.seq) && m.seq >= 0 && m.seq < n) seen[m.seq]!++;
    else outOfRange++;
  }
  expect(outOfRange).toBe(0);
  const missing: number[] = [];
  const twice: number[] = [];
  seen.forEach((c, seq) => {
    if (c === 0) missing.push(seq);
    if (c > 1) twice.push(seq);
  });
  expect({ missing: missing.length, firstMissing: missing.slice(0, 5), twice: twice.length }).toEqual({ missing: 0, firstMissing: [], twice: 0 });
}

// ---------------------------------------------------------------- the spool

export interface SpoolRow {
  seq: number;
  subject: string;
  id: string;
  collector: string;
  /** event_data.custom.seq of a synthetic event, else NaN */
  syntheticSeq: number;
}

/**
 * Every row of a spool file, in spool order, read from a copy: the agent
 * holds the file with an exclusive lock while it runs (this is for after it
 * exited or was killed), and a read-only open of the file itself would leave
 * a -shm file beside it. The copy is opened read-only, so SQLite recovers the
 * copied write-ahead log in memory, as the next agent would from the original.
 */
export function spoolRows(path: string): SpoolRow[] {
  if (!existsSync(path)) return [];
  const dir = makeTempDir("spool-copy");
  const copy = join(dir, "spool.db");
  copyFileSync(path, copy);
  if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
  const db = new Database(copy, { readonly: true });
  try {
    const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE type = 'table'").all().map((t) => t.name);
    // the layout in src/spool/file.ts names the table "spool"
    const table = ["spool", "events"].find((t) => tables.includes(t));
    if (!table) throw new Error(`${path}: no spool table (tables: ${tables.join(", ")})`);
    const decoder = new TextDecoder();
    return db
      .query<{ seq: number; subject: string; id: string; collector: string; data: Uint8Array }, []>(`SELECT seq, subject, id, collector, data FROM ${table} ORDER BY seq`)
      .all()
      .map((r) => {
        let syntheticSeq = Number.NaN;
        try {
          syntheticSeq = Number(JSON.parse(decoder.decode(r.data)).event_data?.custom?.seq ?? Number.NaN);
        } catch {}
        return { seq: r.seq, subject: r.subject, id: r.id, collector: r.collector, syntheticSeq };
      });
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- /status

/** What the fault tests read from the agent's GET /status. */
export interface StatusSample {
  /** ms since epoch when the answer arrived */
  at: number;
  accepted: number;
  spooled: number;
  published: number;
  queued: number;
  spoolDepth: number;
}

/** The agent's HTTP base URL, from its "HTTP endpoints on ..." log line. */
export async function statusUrl(agent: AgentProcess): Promise<string> {
  const line = await agent.waitForLog(msgStartsWith("HTTP endpoints on"), '"HTTP endpoints on"');
  return `${line.url}/status`;
}

/** One GET /status, summed over collectors; undefined if the agent did not answer. */
export async function readStatus(url: string): Promise<StatusSample | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    const doc = (await res.json()) as {
      collectors: Array<{ events_accepted: number; events_spooled: number; events_published: number }>;
      queue: { length: number };
      delivery: { spool?: { depth: number } };
    };
    const sum = (key: "events_accepted" | "events_spooled" | "events_published") => doc.collectors.reduce((n, c) => n + c[key], 0);
    return {
      at: Date.now(),
      accepted: sum("events_accepted"),
      spooled: sum("events_spooled"),
      published: sum("events_published"),
      queued: doc.queue.length,
      spoolDepth: doc.delivery.spool?.depth ?? 0,
    };
  } catch {
    return undefined;
  }
}

export interface Sampler<T> {
  readonly samples: T[];
  stop(): T[];
}
export type StatusSampler = Sampler<StatusSample>;

/** Calls `read` every `intervalMs` (one call at a time) until stopped, keeping what it answers. */
export function sampleEvery<T>(read: () => Promise<T | undefined>, intervalMs = 200): Sampler<T> {
  const samples: T[] = [];
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const s = await read();
      if (s !== undefined && !stopped) samples.push(s);
      await Bun.sleep(intervalMs);
    }
  })();
  return {
    samples,
    stop() {
      stopped = true;
      return samples;
    },
  };
}

/** Reads /status every `intervalMs` (one request at a time) until stopped. */
export function sampleStatus(url: string, intervalMs = 200): StatusSampler {
  return sampleEvery(() => readStatus(url), intervalMs);
}

export function sampleAt(samples: readonly StatusSample[], at: number): StatusSample | undefined {
  return samples.findLast((s) => s.at <= at);
}

// ---------------------------------------------------------------- memory

export interface RssSampler {
  /** stops sampling; the largest VmRSS seen, in bytes, and how many samples */
  stop(): { maxBytes: number; samples: number };
}

/** Samples VmRSS of `pid` from /proc every `intervalMs` until stopped or the process is gone. */
export function sampleRss(pid: number, intervalMs = 200): RssSampler {
  let maxKb = 0;
  let samples = 0;
  const sample = () => {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) {
        maxKb = Math.max(maxKb, Number(m[1]));
        samples++;
      }
    } catch {}
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { maxBytes: maxKb * 1024, samples };
    },
  };
}

// ---------------------------------------------------------------- misc


/** Sleeps until `ms` after `since` (ms since epoch); at once if that is past. */
export function sleepUntil(since: number, ms: number): Promise<void> {
  return Bun.sleep(Math.max(0, since + ms - Date.now()));
}

export const MB = 1024 * 1024;
