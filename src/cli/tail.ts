// `tail`: subscribes (core NATS) to the agent's subjects and prints events
// as they pass, like `vector tap`. It only listens: with JetStream the
// stream keeps every event whether tail runs or not.
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { NatsConnection, Msg, Subscription } from "@nats-io/nats-core";
import { loadConfigFile } from "../config/load.ts";
import { DEFAULT_NATS_URL, SUBJECT_PREFIX, SUBJECT_PREFIX_EXPECTED, defaultConfig } from "../config/schema.ts";
import { redactUrlCredentials } from "../config/redact.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { connectionOptions } from "../publish/connect.ts";
import { collectorSubject } from "../orchestrator/instance.ts";
import { EXIT, HELP, UsageError, parseFlags } from "./usage.ts";
import { clockTime, truncate } from "./table.ts";
import { BATCH_HEADER } from "../publish/msg-id-header.ts";

const CLIENT_NAME = "tapio-collectors-tail";
const COLLECTOR_NAME = /^[^\s*>]+$/;
/** Without a terminal, the summary of event_data is cut at this many characters. */
const SUMMARY_WIDTH = 100;

export async function tailCommand(args: string[]): Promise<number> {
  const flags = parseFlags("tail", args);
  if (flags.help) {
    process.stdout.write(`${HELP.tail}\n`);
    return EXIT.ok;
  }
  const count = flags.count === undefined ? Infinity : parseCount(flags.count);
  if (flags.subject !== undefined && !SUBJECT_PREFIX.test(flags.subject)) {
    throw new UsageError(`tail: --subject: expected ${SUBJECT_PREFIX_EXPECTED}, got "${flags.subject}"`);
  }
  if (flags.collector !== undefined && !COLLECTOR_NAME.test(flags.collector)) {
    throw new UsageError(`tail: --collector: expected a collector name like kubelet or dns/external, got "${flags.collector}"`);
  }
  const matchType = typeMatcher(flags.type);
  const servers = flags.nats === undefined ? undefined : parseServers(flags.nats);

  // Without --config, the defaults of an empty config file.
  const registry = builtinRegistry();
  const config = flags.config === undefined ? defaultConfig(registry) : await loadConfigFile(flags.config, registry);
  const options: NodeConnectionOptions = { ...connectionOptions(config.nats), name: CLIENT_NAME };
  const prefix = flags.subject ?? config.nats.subject;
  if (servers) options.servers = servers;
  const shown = (servers ?? config.nats.url).map(redactUrlCredentials).join(",");
  // A collector's own subject and those below it: the named instances of a
  // type (dns.external below dns) and sub-subjects (ingest.<source>).
  const subjects =
    flags.collector === undefined
      ? [`${prefix}.>`]
      : [collectorSubject(prefix, flags.collector), `${collectorSubject(prefix, flags.collector)}.>`];

  // Ctrl-C (or SIGTERM) ends tail with exit 0, also while it connects
  let stopped = false;
  let stop = () => {
    stopped = true;
  };
  const onSignal = () => stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (err) {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (stopped) return EXIT.ok;
    throw new Error(`tail: cannot connect to NATS at ${shown}: ${redactUrlCredentials((err as Error).message)}`);
  }

  const out = new LineWriter(process.stdout);
  const tty = process.stdout.isTTY === true;
  const summaryWidth = tty ? Math.max(20, (process.stdout.columns ?? 120) - 60) : SUMMARY_WIDTH;
  let matched = 0;
  const subs = subjects.map((subject) => nc.subscribe(subject));
  const unsubscribe = () => {
    for (const sub of subs) if (!sub.isClosed()) sub.unsubscribe();
  };
  stop = () => {
    stopped = true;
    unsubscribe();
  };
  if (stopped) unsubscribe();
  out.onClosed(stop); // `tail | head`: the reader went away
  void watchConnection(nc);

  try {
    await nc.flush();
    process.stderr.write(`tailing ${subjects.join(" and ")} on ${shown}${flags.type ? ` (type ${flags.type})` : ""}; Ctrl-C to stop\n`);
    read: for await (const msg of merged(subs)) {
      if (stopped) break;
      // A batch message (nats.batch) holds several events, one JSON line each.
      const texts = msg.headers?.get(BATCH_HEADER) ? msg.string().split("\n").filter((l) => l !== "") : [msg.string()];
      for (const text of texts) {
        const decoded = decode(text, msg);
        if (typeof decoded === "string") {
          process.stderr.write(`${clockTime(Date.now())} warning: ${decoded}\n`);
          continue;
        }
        if (!matchType(decoded.type)) continue;
        await out.write(flags.json ? text : formatEvent(decoded, summaryWidth));
        if (++matched >= count) break read;
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    unsubscribe();
  }
  const closedForGood = nc.isClosed();
  if (!closedForGood) await nc.close().catch(() => {});
  if (closedForGood && !stopped && matched < count) {
    const why = await nc.closed();
    throw new Error(`tail: the connection to NATS at ${shown} closed${why ? `: ${redactUrlCredentials(why.message)}` : ""}`);
  }
  return EXIT.ok;
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`tail: --count: expected a whole number of at least 1, got "${text}"`);
  return n;
}

function parseServers(text: string): string[] {
  const urls = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (urls.length === 0) throw new UsageError(`tail: --nats: expected a URL like ${DEFAULT_NATS_URL}, got "${text}"`);
  for (const url of urls) {
    let ok = false;
    try {
      const parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`);
      ok = ["nats:", "tls:", "ws:", "wss:"].includes(parsed.protocol) && parsed.hostname !== "";
    } catch {
      ok = false;
    }
    if (!ok) throw new UsageError(`tail: --nats: expected a URL like ${DEFAULT_NATS_URL}, got "${redactUrlCredentials(url)}"`);
  }
  return urls;
}

/** `--type kubelet.pod_oom` matches exactly; `--type kubelet.*` (or `kubelet*`) matches the prefix. */
export function typeMatcher(pattern: string | undefined): (type: string) => boolean {
  if (pattern === undefined) return () => true;
  if (pattern === "" || /\s/.test(pattern) || pattern.indexOf("*") !== pattern.lastIndexOf("*") || (pattern.includes("*") && !pattern.endsWith("*"))) {
    throw new UsageError(`tail: --type: expected an event type like kubelet.pod_oom, or a prefix ending in * like kubelet.*, got "${pattern}"`);
  }
  if (!pattern.endsWith("*")) return (type) => type === pattern;
  const prefix = pattern.slice(0, -1);
  return (type) => type.startsWith(prefix);
}

interface TailedEvent {
  type: string;
  source: string;
  severity: string;
  timestamp: unknown;
  event_data: unknown;
}

/** The event in `text` (a message, or one line of a batch message), or why it cannot be shown. */
function decode(text: string, msg: Msg): TailedEvent | string {
  const where = `message on ${msg.subject} (${msg.data.length} bytes)`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `undecodable ${where}: not JSON (${(err as Error).message}): ${truncate(JSON.stringify(text.slice(0, 80)), 82)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return `undecodable ${where}: JSON but not an event object`;
  const e = value as Record<string, unknown>;
  if (typeof e.type !== "string") return `undecodable ${where}: no "type" field, not a tapio event`;
  return {
    type: e.type,
    source: typeof e.source === "string" ? e.source : "?",
    severity: typeof e.severity === "string" ? e.severity : "?",
    timestamp: e.timestamp,
    event_data: e.event_data,
  };
}

/** `HH:MM:SS.mmm source type severity key=value ...` */
export function formatEvent(e: TailedEvent, summaryWidth = SUMMARY_WIDTH): string {
  const at = eventTime(e.timestamp) ?? Date.now();
  return `${clockTime(at)} ${e.source.padEnd(10)} ${e.type.padEnd(22)} ${e.severity.padEnd(8)} ${summarize(e.event_data, summaryWidth)}`.trimEnd();
}

/** RFC 3339 with up to nanoseconds: Date takes milliseconds only. */
function eventTime(ts: unknown): number | undefined {
  if (typeof ts !== "string") return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,3})?\d*(Z|[+-]\d\d:\d\d)$/.exec(ts);
  const at = m ? Date.parse(`${m[1]}${m[2] ?? ""}${m[3]}`) : Date.parse(ts);
  return Number.isNaN(at) ? undefined : at;
}

/** The first leaves of event_data as `path=value`, values cut short, the whole cut at `width`. */
export function summarize(data: unknown, width = SUMMARY_WIDTH): string {
  const parts: string[] = [];
  let length = 0;
  const visit = (value: unknown, path: string, depth: number): boolean => {
    if (length > width) return false;
    if (value !== null && typeof value === "object" && depth < 4) {
      const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
      if (entries.length === 0) return add(`${path}=${Array.isArray(value) ? "[]" : "{}"}`);
      for (const [k, v] of entries) if (!visit(v, path ? `${path}.${k}` : k, depth + 1)) return false;
      return true;
    }
    return add(`${path}=${leaf(value)}`);
  };
  const add = (part: string): boolean => {
    parts.push(part);
    length += part.length + 1;
    return length <= width;
  };
  visit(data, "", 0);
  return truncate(parts.join(" "), width);
}

function leaf(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]{1,32}$/.test(value) ? value : truncate(JSON.stringify(value), 34);
  if (value === undefined) return "undefined";
  return truncate(JSON.stringify(value) ?? String(value), 34);
}

/** Reports reconnects on stderr while tailing. */
async function watchConnection(nc: NatsConnection): Promise<void> {
  try {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") process.stderr.write(`${clockTime(Date.now())} disconnected from NATS${"server" in s ? ` (${s.server})` : ""}; reconnecting\n`);
      else if (s.type === "reconnect") process.stderr.write(`${clockTime(Date.now())} reconnected to NATS${"server" in s ? ` (${s.server})` : ""}\n`);
    }
  } catch {
    // the connection is closing
  }
}

/** Line output that waits for the pipe (backpressure) and notices a reader that went away. */
class LineWriter {
  #closed = false;
  #onClosed: (() => void) | undefined;

  constructor(readonly stream: NodeJS.WriteStream) {
    stream.on("error", () => this.#close());
  }

  onClosed(listener: () => void): void {
    this.#onClosed = listener;
  }

  write(line: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.stream.write(`${line}\n`, (err) => {
        if (err) this.#close();
        resolve();
      });
    });
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClosed?.();
  }
}

/** The messages of several subscriptions as they come; ends when all have ended. */
async function* merged(subs: readonly Subscription[]): AsyncGenerator<Msg> {
  const iterators = subs.map((sub) => sub[Symbol.asyncIterator]());
  const pull = (i: number) => iterators[i]!.next().then((result) => ({ result, i }));
  const pending = new Map(iterators.map((_, i) => [i, pull(i)] as const));
  while (pending.size > 0) {
    const { result, i } = await Promise.race(pending.values());
    if (result.done) {
      pending.delete(i);
      continue;
    }
    pending.set(i, pull(i));
    yield result.value;
  }
}
