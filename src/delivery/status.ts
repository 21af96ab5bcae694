// What /status, the health monitor and metrics see of delivery: the NATS
// connection, the circuits, the spool.
import type { Publisher } from "../publish/publisher.ts";
import type { Spool, SpoolStats } from "../spool/spool.ts";
import type { CircuitBreakers, CircuitSnapshot } from "./circuit.ts";

export interface DeliveryStatus {
  nats: ReturnType<Publisher["status"]>;
  circuits: CircuitSnapshot[];
  spool: (SpoolStats & { path: string; oldest_age_seconds: number | undefined }) | undefined;
}

export interface DeliveryParts {
  publisher: Publisher;
  breakers: CircuitBreakers;
  spool: Spool | undefined;
  spoolPath: string;
}

/** What keeps delivery from being healthy right now; empty when all is well. */
export function deliveryProblems({ publisher, breakers, spool }: DeliveryParts): string[] {
  const out: string[] = [];
  const nats = publisher.status();
  if (nats.closed) out.push(`NATS connection closed: ${nats.lastError ?? "gave up"}`);
  else if (!nats.connected) out.push(`NATS disconnected${nats.lastError ? `: ${nats.lastError}` : ""}`);
  if (nats.permission !== undefined) out.push(`NATS permission denied: ${nats.permission}`);
  for (const b of breakers.all()) {
    if (b.state !== "closed") out.push(`circuit ${b.state.replace("_", "-")} for ${b.subject}: ${b.lastFailure ?? "publishes failing"}`);
  }
  const stats = spool?.stats();
  if (stats && stats.depth > 0) {
    const age = stats.oldestAt === undefined ? 0 : Math.round((Date.now() - stats.oldestAt) / 1000);
    out.push(`${stats.depth} event(s) waiting in the spool, oldest ${age}s`);
  }
  return out;
}

export function deliveryStatus({ publisher, breakers, spool, spoolPath }: DeliveryParts): DeliveryStatus {
  const stats = spool?.stats();
  return {
    nats: publisher.status(),
    circuits: breakers.all().map((b) => b.snapshot()),
    spool: stats && {
      ...stats,
      path: spoolPath,
      oldest_age_seconds: stats.oldestAt === undefined ? undefined : (Date.now() - stats.oldestAt) / 1000,
    },
  };
}
