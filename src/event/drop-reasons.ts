// Why an event was dropped: the `reason` of events_dropped in /status, of the
// orchestrator_events_dropped metric and of the README's table (a test checks
// that the table lists exactly these). One reason, one meaning.
import { MAX_EVENT_BYTES } from "./encode.ts";

/** Dropped before the queue accepted it. */
export const REFUSED = {
  invalid_event: "the event has no type, or a severity outside the list",
  unserializable: "the event cannot be serialised to JSON (a cycle, a BigInt, a throwing toJSON)",
  too_large: `the encoded event is larger than ${MAX_EVENT_BYTES / 1024 / 1024} MiB, NATS's default max_payload`,
  queue_full: "the queue was full: buffer.when_full is drop_newest, or the collector ignored backpressure",
  stopped: "emitted after the collector was stopped",
  unrouted: "matched no rule of routes",
  route_drop: "matched a routes rule with drop: true",
} as const;

/** Accepted, then dropped: counted as discarded. */
export const DISCARDED = {
  queue_full_oldest: "the oldest queued event, dropped to make room (buffer.when_full: drop_oldest)",
  spool_full: "the spool was full and spool.when_full is drop_newest",
  spool_full_oldest: "the oldest spooled event, dropped to make room (spool.when_full: drop_oldest)",
  too_large_for_spool: "larger than spool.max_bytes on its own",
  spool_full_at_shutdown: "the spool was full (spool.when_full: block) when the shutdown deadline passed",
  spool_corrupt: "its spool row failed its checksum (damaged on disk): deleted, never published",
  // The permanent publish errors (publish/classify.ts): a retry could never deliver these.
  max_payload: "NATS refused it: larger than the server's max_payload or the stream's max_msg_size",
  invalid: "NATS refused its subject or its event id",
} as const;

export const DROP_REASONS = { ...REFUSED, ...DISCARDED } as const;

export type RefusedReason = keyof typeof REFUSED;
export type DiscardedReason = keyof typeof DISCARDED;
export type DropReason = keyof typeof DROP_REASONS;
