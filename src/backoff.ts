// Retry delays: exponential with jitter, so agents on many nodes that failed
// together do not retry in lockstep against a recovering server.

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** 50 ms doubling to 5 s: quick for a blip, gentle during an outage. */
export const PUBLISH_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 5000 };

/**
 * Delay before retry number `attempt` (0 for the first retry): half of the
 * exponential step fixed, half random ("equal jitter"), never above maxMs.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = PUBLISH_BACKOFF, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return step / 2 + random() * (step / 2);
}
