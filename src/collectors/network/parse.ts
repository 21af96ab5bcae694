// Parsers for /proc/net files. Columns are found by their header names,
// never by position: kernels add, drop and reorder them (OutTransmits in
// Ip since 6.x, TcpExt grows every few releases). Each parser keeps what it
// can read and reports the rest through `fail`.
//
// The network collector parses these every poll; a node's files keep their
// shape (the same header lines, numbers in single-space columns), so a header
// line is split once and remembered, and values in the usual shape are
// scanned in place. Anything else takes the general path, so what comes out
// is the same either way.

export type OnError = (detail: string) => void;

const INT = /^-?\d+$/;
const PREFIX = /^(\w+):$/;

/**
 * The complete lines of a file: every /proc file ends with a newline, so
 * text without one was cut short (a short read, a truncated copy) and its last
 * line may hold a number missing digits. That line is dropped and reported.
 */
function completeLines(text: string, fail: OnError): string[] {
  const lines = text.split("\n");
  const last = lines.pop()!;
  const complete = lines.filter((l) => l.trim() !== "");
  if (last !== "") fail(`truncated: no newline after ${clip(last)}`);
  else if (complete.length === 0) fail("empty");
  return complete;
}

function clip(line: string): string {
  return JSON.stringify(line.length > 48 ? `${line.slice(0, 48)}...` : line);
}

/**
 * /proc/net/snmp and /proc/net/netstat: for each protocol a line of names and
 * a line of values, both starting with the same `Prefix:`. Returns
 * "Prefix.Name" -> value, e.g. "Tcp.RetransSegs", "TcpExt.ListenOverflows".
 * A section whose two lines do not match is skipped whole. `counters`: the
 * map to add them to (snmp's and netstat's go in one: their prefixes differ).
 */
export function parseCounterPairs(text: string, fail: OnError, counters = new Map<string, number>()): Map<string, number> {
  const lines = completeLines(text, fail);
  for (let i = 0; i < lines.length; i += 2) {
    const header = pairHeader(lines[i]!);
    const { names, prefix } = header;
    const line = lines[i + 1];
    if (line !== undefined && header.keys && scanValues(line, names[0]!, header.keys, counters)) continue;
    const values = line?.trim().split(/\s+/);
    if (prefix === undefined || values === undefined || values[0] !== names[0]) {
      fail(`expected a "${names[0]}" line of names and one of values, got ${clip(lines[i]!)}`);
      // Re-synchronise on the next line: one stray line must not shift every later pair.
      i -= 1;
      continue;
    }
    if (names.length !== values.length) {
      fail(`${prefix}: ${names.length - 1} names but ${values.length - 1} values`);
      continue;
    }
    const bad = values.slice(1).find((x) => !INT.test(x));
    if (bad !== undefined) {
      fail(`${prefix}: value ${clip(bad)} is not an integer`);
      continue;
    }
    for (let k = 1; k < names.length; k++) counters.set(`${prefix}.${names[k]}`, Number(values[k]));
  }
  return counters;
}

interface PairHeader {
  /** the line's words: `Prefix:` and the counters' names */
  names: string[];
  prefix: string | undefined;
  /** "Prefix.Name" of each name, when the line is a header with at least one name */
  keys: string[] | undefined;
}

/** Header lines seen, by their text: a node has a dozen (Ip, Tcp, TcpExt, ...), the same every poll. */
const pairHeaders = new Map<string, PairHeader>();

function pairHeader(line: string): PairHeader {
  let header = pairHeaders.get(line);
  if (header) return header;
  const names = line.trim().split(/\s+/);
  const prefix = PREFIX.exec(names[0] ?? "")?.[1];
  const keys = prefix !== undefined && names.length > 1 && names[0] === line.slice(0, names[0]!.length) ? names.slice(1).map((n) => `${prefix}.${n}`) : undefined;
  header = { names, prefix, keys };
  // Bounded: garbage input must not grow it without end.
  if (pairHeaders.size >= 64) pairHeaders.clear();
  pairHeaders.set(line, header);
  return header;
}

/**
 * A values line in the usual shape, `Prefix: 1 -2 3` (the header's `Prefix:`
 * at its start, then exactly one integer per key, each after one space),
 * read into `into` without splitting it. False, and nothing read, for any
 * other shape: the caller takes the general path.
 */
function scanValues(line: string, first: string, keys: string[], into: Map<string, number>): boolean {
  if (!line.startsWith(first)) return false;
  const end = line.length;
  let at = first.length;
  for (let k = 0; k < keys.length; k++) {
    if (line.charCodeAt(at) !== SPACE) return false;
    at = integerEnd(line, at + 1, end);
    if (at < 0) return false;
  }
  if (at !== end) return false;
  at = first.length;
  for (let k = 0; k < keys.length; k++) {
    const from = at + 1;
    at = integerEnd(line, from, end);
    into.set(keys[k]!, Number(line.slice(from, at)));
  }
  return true;
}

const SPACE = 32;

/** Where the integer (-?\d+) starting at `from` ends: the next space or `end`; -1 when there is none, or something else. */
function integerEnd(line: string, from: number, end: number): number {
  let at = from;
  if (line.charCodeAt(at) === 45) at++; // -
  const digits = at;
  while (at < end) {
    const c = line.charCodeAt(at);
    if (c === SPACE) break;
    if (c < 48 || c > 57) return -1;
    at++;
  }
  return at > digits ? at : -1;
}

/**
 * /proc/net/dev: two header lines, the second naming the receive and transmit
 * columns between `|`s, then `iface: values`. Returns iface -> "rx_errs",
 * "tx_drop", ... -> value.
 */
export function parseNetDev(text: string, fail: OnError): Map<string, Map<string, number>> {
  const interfaces = new Map<string, Map<string, number>>();
  const lines = completeLines(text, fail);
  const columns = lines.length > 1 ? devColumns(lines[1]!) : undefined;
  if (!columns) {
    if (lines.length > 0) fail("no `face |receive|transmit` header line");
    return interfaces;
  }
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    // Interface names cannot contain ':', and a long one runs into its first value ("vethf345468:  648").
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim();
    const scanned = colon < 0 || name === "" ? undefined : scanDevValues(line, colon + 1, columns);
    if (scanned) {
      interfaces.set(name, scanned);
      continue;
    }
    const values = line.slice(colon + 1).trim().split(/\s+/);
    if (colon < 0 || name === "" || values.length !== columns.length || !values.every((x) => INT.test(x))) {
      fail(`not an interface line of ${columns.length} counters: ${clip(line)}`);
      continue;
    }
    interfaces.set(name, new Map(columns.map((c, k) => [c, Number(values[k])])));
  }
  return interfaces;
}

/** net/dev's second header line -> its columns ("rx_bytes", ..., "tx_compressed"); undefined when it is not `face |receive|transmit`. */
const devHeaders = new Map<string, string[] | undefined>();

function devColumns(line: string): string[] | undefined {
  if (devHeaders.has(line)) return devHeaders.get(line);
  const sections = line.split("|");
  const columns =
    sections.length === 3
      ? [...sections[1]!.trim().split(/\s+/).map((c) => `rx_${c}`), ...sections[2]!.trim().split(/\s+/).map((c) => `tx_${c}`)]
      : undefined;
  if (devHeaders.size >= 16) devHeaders.clear();
  devHeaders.set(line, columns);
  return columns;
}

/**
 * The counters after an interface's colon in the usual shape (integers
 * between runs of spaces, one per column) without splitting the line;
 * undefined for any other shape: the caller takes the general path.
 */
function scanDevValues(line: string, from: number, columns: string[]): Map<string, number> | undefined {
  const values = new Map<string, number>();
  const end = line.length;
  let at = from;
  for (const column of columns) {
    while (line.charCodeAt(at) === SPACE) at++;
    const to = integerEnd(line, at, end);
    if (to < 0) return undefined;
    values.set(column, Number(line.slice(at, to)));
    at = to;
  }
  while (line.charCodeAt(at) === SPACE) at++;
  return at === end ? values : undefined;
}

/** /proc/net/sockstat: `TCP: inuse 16 orphan 0 tw 37 alloc 16 mem 242`. Returns "TCP.inuse" -> 16, ... */
export function parseSockstat(text: string, fail: OnError): Map<string, number> {
  const gauges = new Map<string, number>();
  const lines = completeLines(text, fail);
  for (const line of lines) {
    const [head = "", ...pairs] = line.trim().split(/\s+/);
    const prefix = PREFIX.exec(head)?.[1];
    if (prefix === undefined || pairs.length % 2 !== 0) {
      fail(`not a "Proto: name value ..." line: ${clip(line)}`);
      continue;
    }
    for (let k = 0; k < pairs.length; k += 2) {
      const value = pairs[k + 1]!;
      if (INT.test(value)) gauges.set(`${prefix}.${pairs[k]}`, Number(value));
      else fail(`${prefix} ${pairs[k]}: ${clip(value)} is not an integer`);
    }
  }
  return gauges;
}

/** A file holding one non-negative integer, like nf_conntrack_count. */
export function parseGauge(text: string, fail: OnError): number | undefined {
  const lines = completeLines(text, fail);
  if (lines.length === 1 && /^\d+$/.test(lines[0]!.trim())) return Number(lines[0]);
  if (lines.length > 0) fail(`not one integer: ${clip(text.trim())}`);
  return undefined;
}
