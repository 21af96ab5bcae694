// The few DNS wire-format pieces a probe needs (RFC 1035 section 4): one
// question out, the header and the address answers back. Anything that does
// not add up is reported through `fail` and the message is not used.

export type OnError = (detail: string) => void;

export const QUERY_TYPES = ["A", "AAAA"] as const;
export type QueryType = (typeof QUERY_TYPES)[number];
const QTYPE: Record<QueryType, number> = { A: 1, AAAA: 28 };
const CLASS_IN = 1;

const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
};

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** Lower-case, without the root's trailing dot: how names are compared and reported. */
export function canonicalName(name: string): string {
  return name.replace(/\.$/, "").toLowerCase();
}

/**
 * A fully-qualified name as probes accept it: dot-separated labels of
 * letters, digits, '-' and '_' (SRV-style names), 1 to 63 bytes each, at most
 * 253 in all, with or without the trailing dot.
 */
export function isProbeName(name: string): boolean {
  const labels = canonicalName(name).split(".");
  return canonicalName(name).length <= 253 && labels.every((l) => /^[a-z0-9_-]{1,63}$/i.test(l));
}

/** A standard query with recursion desired (RD), as a stub resolver sends it. */
export function encodeQuery(id: number, name: string, type: QueryType): Uint8Array {
  const labels = canonicalName(name).split(".");
  const bytes = new Uint8Array(12 + labels.reduce((n, l) => n + 1 + l.length, 0) + 1 + 4);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // QR=0 query, OPCODE=0, RD=1
  view.setUint16(4, 1); // QDCOUNT
  let at = 12;
  for (const label of labels) {
    bytes[at++] = label.length;
    for (let k = 0; k < label.length; k++) bytes[at++] = label.charCodeAt(k);
  }
  bytes[at++] = 0;
  view.setUint16(at, QTYPE[type]);
  view.setUint16(at + 2, CLASS_IN);
  return bytes;
}

export interface DnsResponse {
  rcode: number;
  /** TC: the answer did not fit in UDP; the addresses may be incomplete (probes do not retry over TCP) */
  truncated: boolean;
  /** addresses of the asked type, in answer order; CNAMEs on the way are followed by the server, not listed */
  answers: string[];
}

class Malformed extends Error {}

/** Reads a possibly compressed name at `at`; returns it and the offset just after it in place. */
function readName(bytes: Uint8Array, at: number): { name: string; next: number } {
  const labels: string[] = [];
  let next: number | undefined;
  // Pointers must go backwards, so a loop of pointers cannot run forever.
  let limit = at;
  for (;;) {
    const len = bytes[at];
    if (len === undefined) throw new Malformed("name runs past the end");
    if (len === 0) {
      next ??= at + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      const low = bytes[at + 1];
      if (low === undefined) throw new Malformed("compression pointer runs past the end");
      const target = ((len & 0x3f) << 8) | low;
      if (target >= limit) throw new Malformed("compression pointer does not point backwards");
      next ??= at + 2;
      limit = target;
      at = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Malformed(`label type 0x${len.toString(16)} is not supported`);
    if (at + 1 + len > bytes.length) throw new Malformed("label runs past the end");
    labels.push(String.fromCharCode(...bytes.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  return { name: labels.join("."), next };
}

function formatAddress(rdata: Uint8Array): string {
  if (rdata.length === 4) return rdata.join(".");
  const groups: number[] = [];
  for (let k = 0; k < 16; k += 2) groups.push((rdata[k]! << 8) | rdata[k + 1]!);
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = { start: -1, len: 0 };
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let end = k;
    while (end < 8 && groups[end] === 0) end++;
    if (end - k > best.len && end - k >= 2) best = { start: k, len: end - k };
    k = end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.len).join(":")}`;
}

/**
 * The response to the query `id` for `name`/`type`, or undefined (with a
 * reason through `fail`) for anything else: not a response, another id,
 * another question, or bytes that run out or do not parse.
 */
export function decodeResponse(bytes: Uint8Array, expect: { id: number; name: string; type: QueryType }, fail: OnError): DnsResponse | undefined {
  try {
    if (bytes.length < 12) throw new Malformed(`${bytes.length} bytes, shorter than a DNS header`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const id = view.getUint16(0);
    const flags = view.getUint16(2);
    if ((flags & 0x8000) === 0) throw new Malformed("a query, not a response (QR=0)");
    if (id !== expect.id) throw new Malformed(`id ${id}, expected ${expect.id}`);
    const qdcount = view.getUint16(4);
    const ancount = view.getUint16(6);
    let at = 12;
    // Servers echo the question; some leave it out of an error answer (REFUSED, FORMERR).
    if (qdcount > 1) throw new Malformed(`${qdcount} questions`);
    if (qdcount === 1) {
      const question = readName(bytes, at);
      at = question.next;
      if (at + 4 > bytes.length) throw new Malformed("question runs past the end");
      const qtype = view.getUint16(at);
      if (canonicalName(question.name) !== canonicalName(expect.name) || qtype !== QTYPE[expect.type]) {
        throw new Malformed(`answers another question (${question.name} type ${qtype})`);
      }
      at += 4;
    }
    const answers: string[] = [];
    for (let k = 0; k < ancount; k++) {
      at = readName(bytes, at).next;
      if (at + 10 > bytes.length) throw new Malformed(`answer ${k + 1} of ${ancount} runs past the end`);
      const type = view.getUint16(at);
      const rdlength = view.getUint16(at + 8);
      at += 10;
      if (at + rdlength > bytes.length) throw new Malformed(`answer ${k + 1} of ${ancount}: data runs past the end`);
      if (type === QTYPE[expect.type]) {
        if (rdlength !== (type === QTYPE.A ? 4 : 16)) throw new Malformed(`address record of ${rdlength} bytes`);
        answers.push(formatAddress(bytes.subarray(at, at + rdlength)));
      }
      at += rdlength;
    }
    return { rcode: flags & 0x000f, truncated: (flags & 0x0200) !== 0, answers };
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    fail(err.message);
    return undefined;
  }
}
