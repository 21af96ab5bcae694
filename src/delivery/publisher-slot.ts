// The publisher in use, and its replacement on reload. Every publish goes
// through here, so a swap knows when the old publisher is idle: new
// publishes wait behind the swap, those under way finish on the old one.
import type { QueuedEvent } from "../event/event.ts";
import type { Publisher, PublishOutcome } from "../publish/publisher.ts";

export class PublisherSlot {
  #publisher: Publisher;
  /** publish calls under way (workers and drainer) */
  #busy = 0;
  #idleWaiters: Array<() => void> = [];
  /** set while a swap waits: new publishes wait behind it */
  #gate: Promise<void> | undefined;

  constructor(publisher: Publisher) {
    this.#publisher = publisher;
  }

  get current(): Publisher {
    return this.#publisher;
  }

  /** True while a swap is under way. */
  get swapping(): boolean {
    return this.#gate !== undefined;
  }

  /** Resolves when no swap is under way: call before choosing `current` for a publish. */
  async open(): Promise<void> {
    if (this.#gate) await this.#gate;
  }

  async publish(publisher: Publisher, batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    this.#busy++;
    try {
      return await publisher.publish(batch, signal);
    } finally {
      if (--this.#busy === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /**
   * Replaces the publisher once those under way are done (they finish on the
   * old publisher, or spill to the spool after spill_after, so no event is
   * lost); returns the old one for the caller to close.
   */
  async swap(next: Publisher): Promise<Publisher> {
    const gate = Promise.withResolvers<void>();
    this.#gate = gate.promise;
    try {
      if (this.#busy > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      const old = this.#publisher;
      this.#publisher = next;
      return old;
    } finally {
      this.#gate = undefined;
      gate.resolve();
    }
  }
}
