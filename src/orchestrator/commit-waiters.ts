// Disk mode's promise to collectors: emit resolves only once its event is
// durable (committed to the spool, or confirmed by NATS), or counted as
// dropped. The workers are the group commit: each takes a batch from the
// queue, delivery writes it in one spool transaction, and the emits of every
// event in it resolve together. A SIGKILL then loses no event whose emit
// resolved; the queue holds only events whose emits are still pending.
import type { QueuedEvent } from "../event/event.ts";

export class CommitWaiters {
  /**
   * By event id. A collector's own ids may repeat (the same record emitted
   * twice): those wait in order, and any one of them durable is enough,
   * since JetStream takes them as duplicates of each other.
   */
  readonly #byId = new Map<string, Array<() => void>>();

  /** Resolves when `settle` is called for an event with this id. */
  wait(id: string): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.#byId.get(id);
      if (waiting) waiting.push(resolve);
      else this.#byId.set(id, [resolve]);
    });
  }

  /** These events are durable (or dropped and counted): their emits resolve. */
  settle(events: readonly QueuedEvent[]): void {
    if (this.#byId.size === 0) return;
    for (const event of events) {
      const id = event.id;
      const waiting = this.#byId.get(id);
      if (!waiting) continue;
      const resolve = waiting.shift()!;
      if (waiting.length === 0) this.#byId.delete(id);
      resolve();
    }
  }

  get pending(): number {
    return this.#byId.size;
  }
}
