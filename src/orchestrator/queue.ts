// The bounded aggregation queue between collectors and workers, bounded by
// event count and by bytes. Producers that find it full wait in FIFO order
// (backpressure); workers take batches.
import type { QueuedEvent } from "../event/event.ts";
import { EVENT_ID_OFFSET } from "../event/encode.ts";

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

/** The encoder writes the id here, so it need not be kept twice. */
const ID_AT = EVENT_ID_OFFSET;

/** Metadata slots allocated up front (the ring grows past this only for events admitted past the bounds at close). */
const MAX_PREALLOCATED = 1 << 20;

/**
 * Bytes, not objects: a queued event is a place in one of the encoder's
 * shared chunks (ByteArena: written once, never reused, so nothing is
 * copied) plus about 26 bytes of metadata in typed arrays, instead of an
 * object, a buffer and an id string each. Events become QueuedEvent objects
 * again only when a worker takes them, a batch at a time. Event bytes are
 * never modified once made, so the queue keeps them by reference.
 */
export class EventQueue {
  // A ring of metadata, struct-of-arrays, sized for max_events at once.
  #cap = 0;
  #bufferOf: (ArrayBufferLike | undefined)[] = [];
  #offset = new Uint32Array(0);
  #size = new Uint32Array(0);
  #emitted = new Float64Array(0);
  /** index into #sources: collectors are few, events many */
  #source = new Uint16Array(0);
  readonly #sources: Array<{ subject: string; collector: string; subjectSuffix: string | undefined }> = [];
  readonly #sourceIndex = new Map<string, number>();
  #lastSource = -1;
  /** ids that cannot be read back from the bytes (a collector's own ids), by slot */
  readonly #ids = new Map<number, string>();
  #head = 0;
  #length = 0;
  #bytes = 0;
  #closed = false;
  readonly #spaceWaiters: SpaceWaiter[] = [];
  readonly #takerQueue: (() => void)[] = [];

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {
    this.#grow(Math.min(maxEvents, MAX_PREALLOCATED));
  }

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

  /**
   * Queues all of `events` if they fit now together and nobody waits before
   * them, or none: for a sender that is answered (ingest), so a request is
   * taken whole or refused. As with one event, a batch larger than the byte
   * bound passes alone into an empty queue.
   */
  tryPushAll(events: readonly QueuedEvent[]): boolean {
    if (!this.fitsAll(events)) return false;
    for (const e of events) this.#append(e);
    return true;
  }

  /** Whether tryPushAll(events) would take them now (so several queues can be checked before any is pushed). */
  fitsAll(events: readonly QueuedEvent[]): boolean {
    if (this.#closed) throw new QueueClosedError();
    if (this.#spaceWaiters.length > 0 || this.#length + events.length > this.maxEvents) return false;
    let size = 0;
    for (const e of events) size += e.bytes.byteLength;
    return this.#bytes + size <= this.maxBytes || this.#length === 0;
  }

  /** Queues the event, waiting for space in arrival order. */
  push(event: QueuedEvent): Promise<void> {
    if (this.tryPush(event)) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push({ event, resolve }));
  }

  #append(event: QueuedEvent): void {
    if (this.#length === this.#cap) this.#grow(this.#cap * 2);
    const slot = (this.#head + this.#length) % this.#cap;
    const { bytes } = event;
    const size = bytes.byteLength;
    this.#bufferOf[slot] = bytes.buffer;
    this.#offset[slot] = bytes.byteOffset;
    this.#size[slot] = size;
    this.#emitted[slot] = event.emittedAt ?? Number.NaN;
    this.#source[slot] = this.#sourceOf(event);
    if (!idInBytes(event)) this.#ids.set(slot, event.id);
    this.#length++;
    this.#bytes += size;
    this.#wakeTaker();
  }

  #sourceOf(event: QueuedEvent): number {
    // Events come in runs from one collector: the last source is the likely one.
    const last = this.#sources[this.#lastSource];
    if (last !== undefined && last.collector === event.collector && last.subject === event.subject) return this.#lastSource;
    const key = `${event.collector}\u0000${event.subject}`;
    let index = this.#sourceIndex.get(key);
    if (index === undefined) {
      index = this.#sources.length;
      this.#sources.push({ subject: event.subject, collector: event.collector, subjectSuffix: event.subjectSuffix ?? undefined });
      this.#sourceIndex.set(key, index);
    }
    this.#lastSource = index;
    return index;
  }

  #grow(capacity: number): void {
    const cap = Math.max(16, capacity);
    const n = this.#length;
    const bufferOf = new Array<ArrayBufferLike | undefined>(cap).fill(undefined);
    const offset = new Uint32Array(cap);
    const size = new Uint32Array(cap);
    const emitted = new Float64Array(cap);
    const source = new Uint16Array(cap);
    const ids = new Map<number, string>();
    for (let i = 0; i < n; i++) {
      const from = (this.#head + i) % this.#cap;
      bufferOf[i] = this.#bufferOf[from];
      offset[i] = this.#offset[from]!;
      size[i] = this.#size[from]!;
      emitted[i] = this.#emitted[from]!;
      source[i] = this.#source[from]!;
      const id = this.#ids.get(from);
      if (id !== undefined) ids.set(i, id);
    }
    this.#bufferOf = bufferOf;
    this.#offset = offset;
    this.#size = size;
    this.#emitted = emitted;
    this.#source = source;
    this.#ids.clear();
    for (const [slot, id] of ids) this.#ids.set(slot, id);
    this.#cap = cap;
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
    for (let i = 0; i < n; i++) {
      const slot = (this.#head + i) % this.#cap;
      out[i] = this.#materialize(slot);
      this.#release(slot);
    }
    this.#head = (this.#head + n) % this.#cap;
    this.#length -= n;
    this.#admitWaiters();
    return out;
  }

  /** The event in `slot`, its bytes a view of the same memory it came in. */
  #materialize(slot: number): QueuedEvent {
    const bytes = new Uint8Array(this.#bufferOf[slot]!, this.#offset[slot]!, this.#size[slot]!);
    const emitted = this.#emitted[slot]!;
    const { subject, collector, subjectSuffix } = this.#sources[this.#source[slot]!]!;
    return new TakenEvent(subject, bytes, collector, Number.isNaN(emitted) ? undefined : emitted, this.#ids.size > 0 ? this.#ids.get(slot) : undefined, subjectSuffix);
  }

  #release(slot: number): void {
    this.#bytes -= this.#size[slot]!;
    this.#bufferOf[slot] = undefined;
    if (this.#ids.size > 0) this.#ids.delete(slot);
  }

  /** Removes and returns the oldest event, for the drop_oldest policy. */
  evictOldest(): QueuedEvent | undefined {
    if (this.#length === 0) return undefined;
    const slot = this.#head;
    const event = this.#materialize(slot);
    this.#release(slot);
    this.#head = (this.#head + 1) % this.#cap;
    this.#length--;
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

/** True when the bytes carry the event's id verbatim at ID_AT (the encoder's own ids always do). */
function idInBytes(event: QueuedEvent): boolean {
  const { id, bytes } = event;
  if (bytes[ID_AT - 1] !== 0x22 || bytes[ID_AT + id.length] !== 0x22) return false;
  for (let i = 0; i < id.length; i++) if (bytes[ID_AT + i] !== id.charCodeAt(i)) return false;
  return true;
}

/**
 * An event as a worker gets it. Its id is read back from the bytes only
 * when asked for: a batch message needs two of them, not all.
 */
class TakenEvent implements QueuedEvent {
  #id: string | undefined;

  constructor(
    readonly subject: string,
    readonly bytes: Uint8Array,
    readonly collector: string,
    readonly emittedAt: number | undefined,
    id: string | undefined,
    readonly subjectSuffix: string | undefined,
  ) {
    this.#id = id;
  }

  get id(): string {
    return (this.#id ??= readId(this.bytes));
  }
}

const latin1 = new TextDecoder("latin1");

/** The id written verbatim at ID_AT, up to its closing quote (idInBytes checked it has no escapes). */
function readId(bytes: Uint8Array): string {
  return latin1.decode(bytes.subarray(ID_AT, bytes.indexOf(0x22, ID_AT)));
}
