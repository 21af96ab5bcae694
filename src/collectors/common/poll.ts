// The loop every polling collector shares: one round now, then one every
// interval until stopped; in --once mode exactly one round. A round that
// throws (source missing, unreadable, refused) makes the collector degraded
// and is retried at the next interval: a missing source never fails the agent.
import type { CollectorContext } from "../../orchestrator/collector.ts";
import { sleep } from "../../wait.ts";

/**
 * Asks a poll loop for its next round now rather than at the interval (a
 * source saw something the round must look at: a new cgroup, say). Requests
 * made while a round runs, or several at once, make one early round.
 */
export class PollNudge {
  #requested = false;
  #wake: (() => void) | undefined;

  request(): void {
    this.#requested = true;
    this.#wake?.();
  }

  /** Calls `wake` at the next request (at once if one came since the last round began); replaces an earlier one. */
  onRequest(wake: () => void): void {
    this.#wake = wake;
    if (this.#requested) wake();
  }

  /** A round begins: it covers every request so far. */
  taken(): void {
    this.#requested = false;
    this.#wake = undefined;
  }
}

export async function poll(ctx: CollectorContext, intervalMs: number, round: () => Promise<void>, nudge?: PollNudge): Promise<void> {
  for (;;) {
    // CPU is the whole process's while the round runs: exact for a round that
    // does not wait, and an upper bound for one that awaits I/O meanwhile.
    nudge?.taken();
    const wall = performance.now();
    const cpu = process.cpuUsage();
    try {
      await round();
      ctx.healthy();
    } catch (err) {
      if (ctx.signal.aborted) return;
      ctx.degraded(err instanceof Error ? err.message : String(err));
    }
    const used = process.cpuUsage(cpu);
    ctx.pollRound((performance.now() - wall) / 1000, (used.user + used.system) / 1e6);
    if (ctx.once || !(await pause(ctx.signal, intervalMs, nudge))) return;
  }
}

/** Waits for the interval, or less when nudged; false once the collector is stopping. */
async function pause(signal: AbortSignal, intervalMs: number, nudge: PollNudge | undefined): Promise<boolean> {
  if (!nudge) return sleep(intervalMs, signal);
  const cut = new AbortController();
  nudge.onRequest(() => cut.abort());
  await sleep(intervalMs, AbortSignal.any([signal, cut.signal]));
  return !signal.aborted;
}

/** Emits events in order, waiting whenever the queue asks for it (backpressure). */
export async function emitAll(ctx: CollectorContext, events: Iterable<Parameters<CollectorContext["emit"]>[0]>): Promise<void> {
  for (const event of events) {
    const wait = ctx.emit(event);
    if (wait) await wait;
  }
}
