// Readiness (GET /readyz): whether the agent should get traffic, that is,
// whether its events have somewhere to go.
import type { PublisherStatus } from "../publish/publisher.ts";

export interface Readiness {
  ready: boolean;
  reason: string;
}

export interface ReadinessInputs {
  started: boolean;
  /** a shutdown is under way */
  draining: boolean;
  /** collectors that have not started yet */
  starting: readonly string[];
  nats: PublisherStatus;
  /** a spool holds events while NATS is away */
  spool: boolean;
  /** why the spool cannot take events now (or why the configured one is missing) */
  spoolProblem?: string;
}

/** Ready: every collector has started, events have somewhere to go (NATS connected, or a working spool to hold them), and no shutdown is under way. */
export function readiness({ started, draining, starting, nats, spool, spoolProblem }: ReadinessInputs): Readiness {
  if (!started) return { ready: false, reason: "not started" };
  if (draining) return { ready: false, reason: "shutting down" };
  if (starting.length > 0) return { ready: false, reason: `collectors starting: ${starting.join(", ")}` };
  // Refused permissions do not fix themselves: nothing gets published until an operator acts.
  if (nats.permission !== undefined) return { ready: false, reason: `NATS permission denied: ${nats.permission}` };
  if (nats.connected) return { ready: true, reason: "NATS connected" };
  if (spool && !spoolProblem) return { ready: true, reason: "NATS not connected; events go to the spool" };
  return { ready: false, reason: `NATS not connected${nats.lastError ? `: ${nats.lastError}` : ""} and ${spoolProblem ?? "no spool"}` };
}
