// nats.batch: for users who control the consumer, events are packed into one
// NDJSON message per subject, up to max_events and max_bytes, with the
// header `Tapio-Batch: <count>`. It wraps any publisher: the wrapped one sees
// fewer, larger messages; the caller still gets its outcome per event.
// The message id is the first and last event ids joined, so a batch resent
// whole is deduplicated; a batch regrouped after a restart may repeat events
// (at-least-once, as ever).
//
// A message must also fit what NATS accepts (the server's max_payload, the
// stream's max_msg_size): messages are packed within that limit when the
// wrapped publisher knows it, and one NATS refuses for its size anyway (a
// limit lowered since) is split in halves and sent again, down to single
// events; only an event too large on its own is rejected.
import type { Logger } from "pino";
import type { QueuedEvent } from "../event/event.ts";
import { follows, NEWLINE } from "../event/arena.ts";
import { batchHeaderFits } from "./msg-id-header.ts";
import { unlessAborted } from "../wait.ts";
import { DELIVERED, outcome, type MessageLimit, type Publisher, type PublisherStatus, type PublishOutcome, type Rejection } from "./publisher.ts";

export interface BatchLimits {
  maxEvents: number;
  /** the NDJSON payload of a message (nats.batch.max_bytes) */
  maxBytes: number;
  /** payload and header together: what NATS accepts, when known */
  maxMessageBytes?: number;
}

export class BatchingPublisher implements Publisher {
  readonly #log: Logger;
  /** the NATS limit last logged as capping max_bytes, so that each is logged once */
  #loggedLimit: number | undefined;
  /** settles when the wrapped publisher is ready (or failed to be), which is when it knows NATS's limit */
  #started: Promise<unknown> | undefined;
  /** the wrapped publisher's, when it has one: without, this one is watched by polling too */
  readonly onStatusChange?: (listener: () => void) => () => void;

  constructor(
    readonly inner: Publisher,
    readonly limits: BatchLimits,
    log: Logger,
  ) {
    this.#log = log;
    if (inner.onStatusChange) this.onStatusChange = (listener) => inner.onStatusChange!(listener);
  }

  start(): Promise<void> {
    const started = this.inner.start();
    this.#started = started.catch(() => undefined);
    return started;
  }

  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    // Batches taken before the connection was up are packed once NATS's limit is known.
    if (this.#started && this.inner.messageLimit?.() === undefined) await unlessAborted(this.#started, signal);
    let messages = pack(batch, this.#limitsNow());
    const undelivered: QueuedEvent[] = [];
    const rejected: Rejection[] = [];
    let failure: string | undefined;
    for (;;) {
      const result = await this.inner.publish(messages.map((p) => p.message), signal);
      if (result === DELIVERED) break;
      if (result.failure !== undefined) failure = result.failure;
      // Map the outcome of messages back to their events.
      const members = new Map(messages.map((p) => [p.message, p.events]));
      for (const m of result.undelivered) undelivered.push(...(members.get(m) ?? []));
      const tooLarge: QueuedEvent[][] = [];
      for (const r of result.rejected) {
        const events = members.get(r.event) ?? [];
        if (r.reason === "max_payload" && events.length > 1) tooLarge.push(events);
        else for (const event of events) rejected.push({ event, reason: r.reason });
      }
      if (tooLarge.length === 0) break;
      if (signal.aborted) {
        for (const events of tooLarge) undelivered.push(...events);
        break;
      }
      const limits = this.#limitsNow();
      messages = tooLarge.flatMap((events) => halves(events).flatMap((half) => pack(half, limits)));
    }
    return outcome(undelivered, rejected, failure);
  }

  status(): PublisherStatus {
    return this.inner.status();
  }

  messageLimit(): MessageLimit | undefined {
    return this.inner.messageLimit?.();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The configured limits, with NATS's own when the wrapped publisher knows it; says once when that caps max_bytes. */
  #limitsNow(): BatchLimits {
    const limit = this.inner.messageLimit?.();
    if (limit === undefined) return this.limits;
    if (limit.bytes < this.limits.maxBytes && limit.bytes !== this.#loggedLimit) {
      this.#loggedLimit = limit.bytes;
      this.#log.warn(
        { max_bytes: this.limits.maxBytes, limit: limit.bytes, source: limit.source },
        `nats.batch.max_bytes (${this.limits.maxBytes}) is more than NATS accepts (${limit.bytes} bytes, ${limit.source}): batch messages are capped to that`,
      );
    }
    return { ...this.limits, maxMessageBytes: limit.bytes };
  }
}

function halves(events: QueuedEvent[]): QueuedEvent[][] {
  const middle = Math.ceil(events.length / 2);
  return [events.slice(0, middle), events.slice(middle)];
}

interface Packed {
  message: QueuedEvent;
  events: QueuedEvent[];
}

interface Group {
  events: QueuedEvent[];
  /** NDJSON size: each event and its newline */
  bytes: number;
  /**
   * A view of the first event's whole chunk while every event so far lies
   * right after the one before it (ByteArena), so the message can be a view
   * of that range instead of a copy; undefined once they do not.
   */
  run: Uint8Array | undefined;
}

/**
 * Groups events by subject, in order, into messages within the limits. A
 * message also ends where a run of adjacent events ends (at the end of an
 * arena chunk), so that it goes out without a copy; events that never lie
 * side by side (read back from the spool) are copied together.
 */
export function pack(batch: readonly QueuedEvent[], limits: BatchLimits): Packed[] {
  const open = new Map<string, Group>();
  const out: Packed[] = [];
  for (const event of batch) {
    const size = event.bytes.byteLength + 1;
    let group = open.get(event.subject);
    if (group) {
      const last = group.events[group.events.length - 1]!;
      const adjacent = group.run !== undefined && follows(group.run, last.bytes, event.bytes);
      if (group.events.length >= limits.maxEvents || !fits(group, event, size, limits) || (!adjacent && group.run !== undefined && group.events.length > 1)) {
        out.push({ message: join(group), events: group.events });
        group = undefined;
      } else if (!adjacent) {
        group.run = undefined;
      }
    }
    if (!group) {
      group = { events: [], bytes: 0, run: new Uint8Array(event.bytes.buffer) };
      open.set(event.subject, group);
    }
    group.events.push(event);
    group.bytes += size;
  }
  for (const group of open.values()) out.push({ message: join(group), events: group.events });
  return out;
}

/** Whether `group` with `event` added stays within the payload limit and, header included, NATS's. */
function fits(group: Group, event: QueuedEvent, size: number, limits: BatchLimits): boolean {
  const payload = group.bytes + size;
  if (payload > limits.maxBytes) return false;
  if (limits.maxMessageBytes === undefined) return true;
  return batchHeaderFits(group.events[0]!.id, event.id, group.events.length + 1, limits.maxMessageBytes - payload);
}

function join({ events, bytes: length, run }: Group): QueuedEvent {
  const first = events[0]!;
  if (events.length === 1) return first;
  const start = first.bytes.byteOffset;
  let bytes: Uint8Array;
  // A run ends in its last event's newline (follows() checked the ones between).
  if (run && run[start + length - 1] === NEWLINE) {
    bytes = run.subarray(start, start + length);
  } else {
    bytes = new Uint8Array(length);
    let at = 0;
    for (const e of events) {
      bytes.set(e.bytes, at);
      at += e.bytes.byteLength;
      bytes[at++] = NEWLINE;
    }
  }
  return { subject: first.subject, id: `${first.id}..${events[events.length - 1]!.id}`, bytes, collector: first.collector, batchOf: events.length };
}
