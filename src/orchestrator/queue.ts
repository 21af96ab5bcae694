// The bounded aggregation queue between collectors and workers, bounded by
// event count and by bytes. Producers that find it full wait in FIFO order
// (backpressure); workers take batches.
import type { QueuedEvent } from "../event/event.ts";

export class QueueClosedError extends Error {
  constructor() {
    super("the event queue is closed");
    this.name = "QueueClosedError";
  }
}

interface SpaceWaiter {
  event: QueuedEvent;
  resolve: () => void;
}

export class EventQueue {
  // A growable ring: head index plus a plain array avoids shift() copies.
  #items: (QueuedEvent | undefined)[] = [];
  #head = 0;
  #length = 0;
  #bytes = 0;
  #closed = false;
  readonly #spaceWaiters: SpaceWaiter[] = [];
  readonly #takerQueue: (() => void)[] = [];

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.#length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Producers waiting for space. */
  get waiting(): number {
    return this.#spaceWaiters.length;
  }

  /** 0..1, the fuller of the two bounds */
  get utilization(): number {
    return Math.min(1, Math.max(this.#length / this.maxEvents, this.#bytes / this.maxBytes));
  }

  #fits(size: number): boolean {
    // An event larger than the byte bound still passes alone, or it could never go.
    return this.#length < this.maxEvents && (this.#bytes + size <= this.maxBytes || this.#length === 0);
  }

  /** Queues the event if it fits now and nobody waits before it. */
  tryPush(event: QueuedEvent): boolean {
    if (this.#closed) throw new QueueClosedError();
    if (this.#spaceWaiters.length > 0 || !this.#fits(event.bytes.byteLength)) return false;
    this.#append(event);
    return true;
  }

  /** Queues the event, waiting for space in arrival order. */
  push(event: QueuedEvent): Promise<void> {
    if (this.tryPush(event)) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push({ event, resolve }));
  }

  #append(event: QueuedEvent): void {
    const cap = this.#items.length;
    if (this.#length === cap) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = event;
    this.#length++;
    this.#bytes += event.bytes.byteLength;
    this.#wakeTaker();
  }

  #grow(): void {
    const old = this.#items;
    const next: (QueuedEvent | undefined)[] = new Array(Math.max(16, old.length * 2));
    for (let i = 0; i < this.#length; i++) next[i] = old[(this.#head + i) % old.length];
    this.#items = next;
    this.#head = 0;
  }

  /**
   * Takes up to `max` events, waiting while the queue is empty. Resolves with
   * an empty array only once the queue is closed and empty.
   */
  async take(max: number): Promise<QueuedEvent[]> {
    while (this.#length === 0) {
      if (this.#closed) return [];
      await new Promise<void>((resolve) => this.#takerQueue.push(resolve));
    }
    const out = this.takeNow(max);
    if (this.#length > 0) this.#wakeTaker();
    return out;
  }

  /** Takes up to `max` events without waiting (possibly none). */
  takeNow(max: number): QueuedEvent[] {
    if (this.#length === 0) return [];
    const n = Math.min(max, this.#length);
    const out = new Array<QueuedEvent>(n);
    const items = this.#items;
    for (let i = 0; i < n; i++) {
      const idx = (this.#head + i) % items.length;
      out[i] = items[idx]!;
      items[idx] = undefined;
      this.#bytes -= out[i]!.bytes.byteLength;
    }
    this.#head = (this.#head + n) % items.length;
    this.#length -= n;
    this.#admitWaiters();
    return out;
  }

  /** Removes and returns the oldest event, for the drop_oldest policy. */
  evictOldest(): QueuedEvent | undefined {
    if (this.#length === 0) return undefined;
    const items = this.#items;
    const event = items[this.#head]!;
    items[this.#head] = undefined;
    this.#head = (this.#head + 1) % items.length;
    this.#length--;
    this.#bytes -= event.bytes.byteLength;
    return event;
  }

  #admitWaiters(): void {
    while (this.#spaceWaiters.length > 0 && this.#fits(this.#spaceWaiters[0]!.event.bytes.byteLength)) {
      const w = this.#spaceWaiters.shift()!;
      this.#append(w.event);
      w.resolve();
    }
  }

  #wakeTaker(): void {
    const next = this.#takerQueue.shift();
    if (next) next();
  }

  /**
   * No more pushes. Producers still waiting were already accepted, so their
   * events are queued past the bounds rather than refused (their number is
   * bounded by each collector's overflow allowance); workers drain everything,
   * then get [].
   */
  close(): void {
    if (this.#closed) return;
    for (const w of this.#spaceWaiters.splice(0)) {
      this.#append(w.event);
      w.resolve();
    }
    this.#closed = true;
    for (const t of this.#takerQueue.splice(0)) t();
  }
}
