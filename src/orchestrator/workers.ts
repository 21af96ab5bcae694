// The workers: each takes a batch from the queue and hands it to delivery,
// until the queue is closed and empty (or delivery says stop). No error ends
// a worker: delivery deals with NATS and spool failures itself, and anything
// else thrown is logged and the batch tried again.
import type { Logger } from "pino";
import type { Delivery } from "../delivery/delivery.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { LogThrottle } from "../log.ts";
import { sleep } from "../wait.ts";
import type { BatchPolicy } from "../publish/batch-policy.ts";
import type { EventQueue } from "./queue.ts";
import type { CommitWaiters } from "./commit-waiters.ts";

export interface WorkerOptions {
  queue: EventQueue;
  delivery: Delivery;
  /** orchestrator.batch_size */
  batchSize: number;
  /** read before each batch: a reload may change nats.batch */
  policy: () => BatchPolicy;
  /** called once per batch with the seconds a worker spent on it (metrics) */
  onBatchDone?: (seconds: number) => void;
  /** the waits on events' fates: a batch delivered (spooled or confirmed) ends those of its events */
  commits: CommitWaiters;
  /** disk mode: every emit waits on its event's commit; no linger then */
  emitsWaitForCommit: boolean;
  log: Logger;
  /** the shutdown deadline: a worker whose delivery still throws then gives up its batch (counted as unaccounted) */
  deadline: AbortSignal;
}

/** Pauses before a batch whose delivery threw is tried again. */
const RETRY_AFTER_THROW: BackoffPolicy = { initialMs: 100, maxMs: 5000 };

/** Starts `count` workers; each promise resolves when its worker ends. */
export function startWorkers(count: number, options: WorkerOptions): Promise<void>[] {
  const throttle = new LogThrottle();
  return Array.from({ length: count }, () => work(options, throttle));
}

async function work({ queue, delivery, batchSize, policy, onBatchDone, commits, emitsWaitForCommit, log, deadline }: WorkerOptions, throttle: LogThrottle): Promise<void> {
  for (;;) {
    const packing = policy();
    const take = packing.take(batchSize);
    let batch = await queue.take(take);
    if (batch.length === 0) return;
    // Packing events into messages: wait a little for a fuller batch.
    if (packing.lingerMs > 0 && !emitsWaitForCommit && batch.length < take && !queue.closed) {
      await Bun.sleep(packing.lingerMs);
      batch = batch.concat(queue.takeNow(take - batch.length));
    }
    const t0 = performance.now();
    let goOn: boolean;
    for (let attempt = 0; ; attempt++) {
      try {
        goOn = await delivery.deliver(batch);
        break;
      } catch (err) {
        const suppressed = throttle.take("worker");
        if (suppressed !== undefined) {
          log.error({ err: (err as Error).message, stack: (err as Error).stack, events: batch.length, suppressed }, `worker: delivering a batch failed unexpectedly (a bug): ${(err as Error).message}; retrying it`);
        }
        if (!(await sleep(backoffDelay(attempt, RETRY_AFTER_THROW), deadline))) return;
      }
    }
    if (emitsWaitForCommit) {
      // Emits resolve through promises alone: a collector awaiting each one
      // would keep the event loop in microtasks, starving NATS I/O, the drainer and timers.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    // (costs a map size check when nothing waits)
    commits.settle(batch);
    onBatchDone?.((performance.now() - t0) / 1000);
    if (!goOn) return;
  }
}
