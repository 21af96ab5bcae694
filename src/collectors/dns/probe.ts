// One DNS question over UDP to one server, timed. A fresh socket per probe:
// its own ephemeral port, so a late answer to an earlier probe cannot be
// taken for this one's.
import dgram from "node:dgram";
import { isIP } from "node:net";
import { decodeResponse, encodeQuery, type DnsResponse, type QueryType } from "./message.ts";
import type { Server } from "./resolv.ts";

export type ProbeResult =
  | { kind: "response"; response: DnsResponse; durationNs: number }
  /** nothing valid arrived in time; `invalid` says what arrived instead */
  | { kind: "timeout"; durationNs: number; invalid: string[] }
  /** the socket failed: ICMP port unreachable (ECONNREFUSED), no route, ... */
  | { kind: "unreachable"; durationNs: number; error: string }
  | { kind: "aborted" };

function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0]!;
}

/**
 * Asks `server` for `name`/`type`. A reply that is not the answer (another
 * id, another question, garbage) goes to `onInvalid` and the probe keeps
 * waiting, as a stub resolver does: a forged or stray packet must not end it.
 */
export function probe(
  server: Server,
  name: string,
  type: QueryType,
  timeoutMs: number,
  signal: AbortSignal,
  onInvalid: (detail: string) => void,
): Promise<ProbeResult> {
  if (signal.aborted) return Promise.resolve({ kind: "aborted" });
  return new Promise((resolve) => {
    const id = randomId();
    const invalid: string[] = [];
    const socket = dgram.createSocket(isIP(server.ip.split("%")[0] ?? "") === 6 ? "udp6" : "udp4");
    const startedAt = performance.now();
    const elapsedNs = () => Math.round((performance.now() - startedAt) * 1e6);
    let done = false;
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.close();
      resolve(result);
    };
    const onAbort = () => finish({ kind: "aborted" });
    const timer = setTimeout(() => finish({ kind: "timeout", durationNs: elapsedNs(), invalid }), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("error", (err) => finish({ kind: "unreachable", durationNs: elapsedNs(), error: err.message }));
    socket.on("message", (message) => {
      const response = decodeResponse(message, { id, name, type }, (detail) => {
        invalid.push(detail);
        onInvalid(detail);
      });
      if (response) finish({ kind: "response", response, durationNs: elapsedNs() });
    });
    // Connected: the kernel drops datagrams from any other address, and reports ICMP errors to us.
    socket.connect(server.port, server.ip, () => socket.send(encodeQuery(id, name, type)));
  });
}
