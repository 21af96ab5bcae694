// Parsers for /proc/net files. Columns are found by their header names,
// never by position: kernels add, drop and reorder them (OutTransmits in
// Ip since 6.x, TcpExt grows every few releases). Each parser keeps what it
// can read and reports the rest through `fail`.

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
 * A section whose two lines do not match is skipped whole.
 */
export function parseCounterPairs(text: string, fail: OnError): Map<string, number> {
  const counters = new Map<string, number>();
  const lines = completeLines(text, fail);
  for (let i = 0; i < lines.length; i += 2) {
    const names = lines[i]!.trim().split(/\s+/);
    const values = lines[i + 1]?.trim().split(/\s+/);
    const prefix = PREFIX.exec(names[0] ?? "")?.[1];
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

/**
 * /proc/net/dev: two header lines, the second naming the receive and transmit
 * columns between `|`s, then `iface: values`. Returns iface -> "rx_errs",
 * "tx_drop", ... -> value.
 */
export function parseNetDev(text: string, fail: OnError): Map<string, Map<string, number>> {
  const interfaces = new Map<string, Map<string, number>>();
  const lines = completeLines(text, fail);
  const sections = lines[1]?.split("|");
  if (sections?.length !== 3) {
    if (lines.length > 0) fail("no `face |receive|transmit` header line");
    return interfaces;
  }
  const columns = [
    ...sections[1]!.trim().split(/\s+/).map((c) => `rx_${c}`),
    ...sections[2]!.trim().split(/\s+/).map((c) => `tx_${c}`),
  ];
  for (const line of lines.slice(2)) {
    // Interface names cannot contain ':', and a long one runs into its first value ("vethf345468:  648").
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim();
    const values = line.slice(colon + 1).trim().split(/\s+/);
    if (colon < 0 || name === "" || values.length !== columns.length || !values.every((x) => INT.test(x))) {
      fail(`not an interface line of ${columns.length} counters: ${clip(line)}`);
      continue;
    }
    interfaces.set(name, new Map(columns.map((c, k) => [c, Number(values[k])])));
  }
  return interfaces;
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
