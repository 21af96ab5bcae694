// The loop every polling collector shares: one round now, then one every
// interval until stopped; in --once mode exactly one round. A round that
// throws (source missing, unreadable, refused) makes the collector degraded
// and is retried at the next interval: a missing source never fails the agent.
import type { CollectorContext } from "../../orchestrator/collector.ts";
import { sleep } from "../../wait.ts";

export async function poll(ctx: CollectorContext, intervalMs: number, round: () => Promise<void>): Promise<void> {
  for (;;) {
    // CPU is the whole process's while the round runs: exact for a round that
    // does not wait, and an upper bound for one that awaits I/O meanwhile.
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
    if (ctx.once || !(await sleep(intervalMs, ctx.signal))) return;
  }
}

/** Emits events in order, waiting whenever the queue asks for it (backpressure). */
export async function emitAll(ctx: CollectorContext, events: Iterable<Parameters<CollectorContext["emit"]>[0]>): Promise<void> {
  for (const event of events) {
    const wait = ctx.emit(event);
    if (wait) await wait;
  }
}
