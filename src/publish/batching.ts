// nats.batch: for users who control the consumer, events are packed into one
// NDJSON message per subject, up to max_events and max_bytes, with the
// header `Tapio-Batch: <count>`. It wraps any publisher: the wrapped one sees
// fewer, larger messages; the caller still gets its outcome per event.
// The message id is the first and last event ids joined, so a batch resent
// whole is deduplicated; a batch regrouped after a restart may repeat events
// (at-least-once, as ever).
import type { QueuedEvent } from "../event/event.ts";
import { follows, NEWLINE } from "../event/arena.ts";
import { DELIVERED, outcome, type Publisher, type PublisherStatus, type PublishOutcome, type Rejection } from "./publisher.ts";

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
}

export class BatchingPublisher implements Publisher {
  constructor(
    readonly inner: Publisher,
    readonly limits: BatchLimits,
  ) {}

  start(): Promise<void> {
    return this.inner.start();
  }

  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    const packed = pack(batch, this.limits);
    const result = await this.inner.publish(packed.map((p) => p.message), signal);
    if (result === DELIVERED) return DELIVERED;
    // Map the outcome of messages back to their events.
    const members = new Map(packed.map((p) => [p.message, p.events]));
    const undelivered = result.undelivered.flatMap((m) => members.get(m) ?? []);
    const rejected: Rejection[] = result.rejected.flatMap((r) => (members.get(r.event) ?? []).map((event) => ({ event, reason: r.reason })));
    return outcome(undelivered, rejected, result.failure);
  }

  status(): PublisherStatus {
    return this.inner.status();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
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
      if (group.events.length >= limits.maxEvents || group.bytes + size > limits.maxBytes || (!adjacent && group.run !== undefined && group.events.length > 1)) {
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
