// Readiness (GET /readyz): whether the agent should get traffic, that is,
// whether its events have somewhere to go.
import type { PublisherStatus } from "../publish/publisher.ts";

export interface Readiness {
  ready: boolean;
  reason: string;
}

/** What readiness needs to know of one destination. */
export interface DestinationReadiness {
  name: string;
  nats: PublisherStatus;
  /** a spool holds its events while NATS is away */
  spool: boolean;
  /** why the spool cannot take events now (or why the configured one is missing) */
  spoolProblem?: string;
}

export interface ReadinessInputs {
  started: boolean;
  /** a shutdown is under way */
  draining: boolean;
  /** collectors that have not started yet */
  starting: readonly string[];
  /** every destination, default first */
  destinations: readonly DestinationReadiness[];
}

/**
 * Ready: every collector has started, every destination's events have
 * somewhere to go (its NATS connected, or a working spool to hold them), and
 * no shutdown is under way.
 */
export function readiness({ started, draining, starting, destinations }: ReadinessInputs): Readiness {
  if (!started) return { ready: false, reason: "not started" };
  if (draining) return { ready: false, reason: "shutting down" };
  if (starting.length > 0) return { ready: false, reason: `collectors starting: ${starting.join(", ")}` };
  const reasons: string[] = [];
  for (const d of destinations) {
    const r = destinationReadiness(d);
    if (destinations.length === 1) return r;
    if (!r.ready) return { ready: false, reason: `destination ${d.name}: ${r.reason}` };
    reasons.push(`${d.name}: ${r.reason}`);
  }
  return { ready: true, reason: reasons.join("; ") };
}

function destinationReadiness({ nats, spool, spoolProblem }: DestinationReadiness): Readiness {
  // Refused permissions do not fix themselves: nothing gets published until an operator acts.
  if (nats.permission !== undefined) return { ready: false, reason: `NATS permission denied: ${nats.permission}` };
  if (nats.connected) return { ready: true, reason: "NATS connected" };
  if (spool && !spoolProblem) return { ready: true, reason: "NATS not connected; events go to the spool" };
  return { ready: false, reason: `NATS not connected${nats.lastError ? `: ${nats.lastError}` : ""} and ${spoolProblem ?? "no spool"}` };
}
