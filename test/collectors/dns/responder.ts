// A small DNS responder on a loopback UDP port for the dns collector's
// tests. It reads queries and writes answers with its own code, not the
// collector's, so a shared misunderstanding of the wire format would show.
import dgram from "node:dgram";

export type Reply =
  /** NOERROR with these addresses (dotted IPv4, or 16-byte IPv6 given as 8 groups) */
  | { addresses: string[] }
  | { rcode: number }
  | { silent: true }
  | { delayMs: number; then: Reply }
  /** any bytes at all, from the query's */
  | { raw: (query: Uint8Array) => Uint8Array }
  /** several datagrams in order */
  | { sequence: Reply[] };

export interface Query {
  id: number;
  name: string;
  qtype: number;
  /** the flags word: 0x0100 for a standard query with RD */
  flags: number;
  bytes: Uint8Array;
}

export function parseQuery(bytes: Uint8Array): Query {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const labels: string[] = [];
  let at = 12;
  while (bytes[at] !== 0) {
    const len = bytes[at]!;
    labels.push(new TextDecoder().decode(bytes.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  return { id: view.getUint16(0), flags: view.getUint16(2), name: labels.join("."), qtype: view.getUint16(at + 1), bytes };
}

function ipv6Bytes(text: string): number[] {
  // Only the full 8-group form: the responder need not parse "::".
  return text.split(":").flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

/** The answer to `query`: its header and question, then one RR per address, named by a pointer to the question. */
export function answer(query: Query, rcode: number, addresses: string[] = []): Uint8Array {
  const questionEnd = query.bytes.length; // the query holds header and question only
  const rrs = addresses.map((a) => {
    const data = a.includes(":") ? ipv6Bytes(a) : a.split(".").map(Number);
    const type = data.length === 4 ? 1 : 28;
    return [0xc0, 12, type >> 8, type & 0xff, 0, 1, 0, 0, 0, 30, 0, data.length, ...data];
  });
  const out = new Uint8Array(questionEnd + rrs.reduce((n, r) => n + r.length, 0));
  out.set(query.bytes.subarray(0, questionEnd));
  const view = new DataView(out.buffer);
  view.setUint16(0, query.id);
  view.setUint16(2, 0x8180 | rcode); // QR, RD copied, RA
  view.setUint16(6, rrs.length);
  let at = questionEnd;
  for (const rr of rrs) {
    out.set(rr, at);
    at += rr.length;
  }
  return out;
}

export interface Responder {
  port: number;
  queries: Query[];
  close(): void;
}

export async function startResponder(host: "127.0.0.1" | "::1", reply: (q: Query) => Reply): Promise<Responder> {
  const socket = dgram.createSocket(host === "::1" ? "udp6" : "udp4");
  const queries: Query[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const send = (r: Reply, q: Query, port: number, address: string) => {
    if ("silent" in r) return;
    if ("delayMs" in r) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send(r.then, q, port, address);
      }, r.delayMs);
      timers.add(timer);
      return;
    }
    if ("sequence" in r) {
      for (const each of r.sequence) send(each, q, port, address);
      return;
    }
    const bytes = "raw" in r ? r.raw(q.bytes) : "rcode" in r ? answer(q, r.rcode) : answer(q, 0, r.addresses);
    socket.send(bytes, port, address);
  };
  socket.on("message", (message, from) => {
    const q = parseQuery(new Uint8Array(message));
    queries.push(q);
    send(reply(q), q, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()));
  return {
    port: socket.address().port,
    queries,
    close() {
      for (const timer of timers) clearTimeout(timer);
      socket.close();
    },
  };
}
