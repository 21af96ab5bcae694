// Waits for events to be durable: committed to the spool, or confirmed by
// NATS, or counted as dropped. The workers are the group commit: each takes
// a batch from the queue, delivery publishes it or writes it in one spool
// transaction, and the waits of every event in it end together; delivery
// ends the waits of the events it drops (with the reason) as it drops them.
// Disk mode's promise to collectors: every emit waits so, and a SIGKILL then
// loses no event whose emit resolved. In either mode a sender that asked
// (ingest's ?wait=published) learns each event's fate.
import type { QueuedEvent } from "../event/event.ts";
import type { EventFate } from "./collector.ts";

type Waiter = (fate: EventFate) => void;

export class CommitWaiters {
  /**
   * By event id. A collector's own ids may repeat (the same record emitted
   * twice): those wait in order, and any one of them durable is enough,
   * since JetStream takes them as duplicates of each other.
   */
  readonly #byId = new Map<string, Waiter[]>();

  /** Resolves when the event with this id is durable, or dropped (and counted). */
  wait(id: string): Promise<void> {
    return new Promise((resolve) => this.#add(id, () => resolve()));
  }

  /** Resolves with what became of the event: undefined once durable, else why it was dropped. */
  fate(id: string): Promise<EventFate> {
    return new Promise((resolve) => this.#add(id, resolve));
  }

  #add(id: string, waiter: Waiter): void {
    const waiting = this.#byId.get(id);
    if (waiting) waiting.push(waiter);
    else this.#byId.set(id, [waiter]);
  }

  /** These events are durable: their waits end. */
  settle(events: readonly QueuedEvent[]): void {
    this.#end(events, undefined);
  }

  /** These events were dropped for `reason`: their waits end, saying so. */
  drop(events: readonly QueuedEvent[], reason: NonNullable<EventFate>): void {
    this.#end(events, reason);
  }

  #end(events: readonly QueuedEvent[], fate: EventFate): void {
    if (this.#byId.size === 0) return;
    for (const event of events) {
      const id = event.id;
      const waiting = this.#byId.get(id);
      if (!waiting) continue;
      const waiter = waiting.shift()!;
      if (waiting.length === 0) this.#byId.delete(id);
      waiter(fate);
    }
  }

  get pending(): number {
    return this.#byId.size;
  }
}
