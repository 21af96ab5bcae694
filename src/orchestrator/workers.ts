// The workers: each takes a batch from the queue and hands it to delivery,
// until the queue is closed and empty (or delivery says stop).
import type { Delivery } from "../delivery/delivery.ts";
import type { BatchPolicy } from "../publish/batch-policy.ts";
import type { EventQueue } from "./queue.ts";

export interface WorkerOptions {
  queue: EventQueue;
  delivery: Delivery;
  /** orchestrator.batch_size */
  batchSize: number;
  /** read before each batch: a reload may change nats.batch */
  policy: () => BatchPolicy;
  /** called once per batch with the seconds a worker spent on it (metrics) */
  onBatchDone?: (seconds: number) => void;
}

/** Starts `count` workers; each promise resolves when its worker ends. */
export function startWorkers(count: number, options: WorkerOptions): Promise<void>[] {
  return Array.from({ length: count }, () => work(options));
}

async function work({ queue, delivery, batchSize, policy, onBatchDone }: WorkerOptions): Promise<void> {
  for (;;) {
    const packing = policy();
    const take = packing.take(batchSize);
    let batch = await queue.take(take);
    if (batch.length === 0) return;
    // Packing events into messages: wait a little for a fuller batch.
    if (packing.lingerMs > 0 && batch.length < take && !queue.closed) {
      await Bun.sleep(packing.lingerMs);
      batch = batch.concat(queue.takeNow(take - batch.length));
    }
    const t0 = performance.now();
    const goOn = await delivery.deliver(batch);
    onBatchDone?.((performance.now() - t0) / 1000);
    if (!goOn) return;
  }
}
