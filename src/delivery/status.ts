// What /status, the health monitor and metrics see of delivery: the NATS
// connection, the circuits, the spool (and why it fails, or is missing).
import type { Publisher } from "../publish/publisher.ts";
import type { Spool, SpoolStats } from "../spool/spool.ts";
import type { SpoolError } from "../spool/errors.ts";
import type { CircuitBreakers, CircuitSnapshot } from "./circuit.ts";

/** The spool's last failure: since when it has been failing, and when it last failed (ms since epoch). */
export interface SpoolFault {
  readonly error: SpoolError;
  readonly since: number;
  readonly lastFailureAt: number;
  /** false once an operation succeeded after the last failure */
  failing: boolean;
}

export interface DeliveryStatus {
  nats: ReturnType<Publisher["status"]>;
  circuits: CircuitSnapshot[];
  spool: (SpoolStats & { path: string; oldest_age_seconds: number | undefined }) | undefined;
  /** why the spool fails now, or why the agent runs without one; absent when all is well */
  spool_error: { reason: string; message: string; since: string | undefined } | undefined;
}

export interface DeliveryParts {
  publisher: Publisher;
  breakers: CircuitBreakers;
  spool: Spool | undefined;
  spoolPath: string;
  spoolFault: SpoolFault | undefined;
  spoolUnavailable: SpoolError | undefined;
}

/** Why the spool cannot take events now (it fails, or could not be opened); undefined when it can, or none is configured. */
export function spoolProblem({ spoolFault, spoolUnavailable }: Pick<DeliveryParts, "spoolFault" | "spoolUnavailable">): string | undefined {
  if (spoolUnavailable) return `running without a spool: ${spoolUnavailable.message}; events wait in memory only`;
  if (spoolFault) {
    const seconds = Math.round((Date.now() - spoolFault.since) / 1000);
    return `the spool cannot take events: ${spoolFault.error.message} (for ${seconds}s); batches wait in memory and are retried`;
  }
  return undefined;
}

/** What keeps delivery from being healthy right now; empty when all is well. */
export function deliveryProblems(parts: DeliveryParts): string[] {
  const { publisher, breakers } = parts;
  const out: string[] = [];
  const nats = publisher.status();
  if (nats.closed) out.push(`NATS connection closed: ${nats.lastError ?? "gave up"}`);
  else if (!nats.connected) out.push(`NATS disconnected${nats.lastError ? `: ${nats.lastError}` : ""}`);
  if (nats.permission !== undefined) out.push(`NATS permission denied: ${nats.permission}`);
  for (const b of breakers.all()) {
    if (b.state !== "closed") out.push(`circuit ${b.state.replace("_", "-")} for ${b.subject}: ${b.lastFailure ?? "publishes failing"}`);
  }
  const problem = spoolProblem(parts);
  if (problem) out.push(problem);
  // Checked every second by the health monitor: the depth is a field; the rest (a query, the file sizes) only when it counts.
  const stats = (parts.spool?.depth ?? 0) > 0 ? spoolStats(parts) : undefined;
  if (stats && stats.depth > 0) {
    const age = stats.oldestAt === undefined ? 0 : Math.round((Date.now() - stats.oldestAt) / 1000);
    out.push(`${stats.depth} event(s) waiting in the spool, oldest ${age}s`);
  }
  return out;
}

export function deliveryStatus(parts: DeliveryParts): DeliveryStatus {
  const { publisher, breakers, spoolPath, spoolFault, spoolUnavailable } = parts;
  const stats = spoolStats(parts);
  const error = spoolUnavailable ?? spoolFault?.error;
  return {
    nats: publisher.status(),
    circuits: breakers.all().map((b) => b.snapshot()),
    spool: stats && {
      ...stats,
      path: spoolPath,
      oldest_age_seconds: stats.oldestAt === undefined ? undefined : (Date.now() - stats.oldestAt) / 1000,
    },
    spool_error: error && {
      reason: error.reason,
      message: spoolProblem(parts)!,
      since: spoolFault ? new Date(spoolFault.since).toISOString() : undefined,
    },
  };
}

/** The spool's figures; a spool that cannot even be read reports its in-memory count (its failure is reported by delivery). */
function spoolStats({ spool }: DeliveryParts): SpoolStats | undefined {
  if (!spool) return undefined;
  try {
    return spool.stats();
  } catch {
    return { depth: spool.depth, bytes: 0, oldestAt: undefined, fileBytes: 0 };
  }
}
