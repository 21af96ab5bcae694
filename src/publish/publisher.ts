// What the worker pool publishes through. Implementations: NATS core,
// JetStream, and stdout NDJSON for --dry-run (src/publish/).
import type { PermanentPublishError } from "./classify.ts";
import type { QueuedEvent } from "../event/event.ts";

export interface PublisherStatus {
  /** "core" | "jetstream" | "stdout" */
  readonly mode: string;
  readonly connected: boolean;
  /** gave up for good (reconnects exhausted, start failed) or closed: nothing more will be delivered */
  readonly closed: boolean;
  /** the server currently connected to, if any */
  readonly server?: string;
  /** last publish or connection error message, if any */
  readonly lastError?: string;
  /** the server refused a permission the agent needs, and nothing has worked since (README "NATS permissions") */
  readonly permission?: string;
  /** reconnects since start */
  readonly reconnects: number;
}

/** An event NATS can never accept (over max_payload, invalid subject): dropped, not retried. */
export interface Rejection {
  readonly event: QueuedEvent;
  readonly reason: PermanentPublishError;
}

/**
 * What became of a batch. Events in neither list were delivered (confirmed by
 * the server). `undelivered` is non-empty only when the signal aborted or the
 * publisher gave up for good (connection closed, start failed).
 */
export interface PublishOutcome {
  readonly undelivered: readonly QueuedEvent[];
  readonly rejected: readonly Rejection[];
  /** the last failure this call saw, as "reason: message", when some events were not delivered */
  readonly failure?: string;
}

const NONE: readonly never[] = Object.freeze([]);
/** The outcome of a batch delivered whole; shared, so the common case allocates nothing. */
export const DELIVERED: PublishOutcome = Object.freeze({ undelivered: NONE, rejected: NONE });

export function outcome(undelivered: readonly QueuedEvent[], rejected: readonly Rejection[], failure?: string): PublishOutcome {
  if (undelivered.length === 0 && rejected.length === 0) return DELIVERED;
  return failure === undefined ? { undelivered, rejected } : { undelivered, rejected, failure };
}

/** The largest message NATS accepts right now, headers and payload together, and what sets that limit. */
export interface MessageLimit {
  readonly bytes: number;
  readonly source: "the server's max_payload" | "the stream's max_msg_size";
}

/** How many events `messages` hold: a batch message (nats.batch) holds `batchOf`, any other one. */
export function eventCount(messages: readonly QueuedEvent[]): number {
  let n = 0;
  for (const m of messages) n += m.batchOf ?? 1;
  return n;
}

/** Reports publish failures by reason (counted for /status and the orchestrator_publish_errors metric). */
export type PublishErrorListener = (reason: string, error: Error, events: number) => void;

export interface Publisher {
  /**
   * Connects and prepares (JetStream: ensures the stream). Resolves once ready.
   * While NATS is unreachable it keeps trying (max_reconnects -1 = forever).
   * Rejects with a PublisherError only for problems a retry cannot fix
   * (stream does not cover the subjects, rejected credentials, bad files).
   */
  start(): Promise<void>;
  /**
   * Delivers every event of `batch`, retrying transient failures with
   * exponential backoff and jitter. May be called before start() resolves: it
   * waits for readiness. Returns early, with the rest undelivered, only when
   * `signal` aborts (shutdown deadline) or the publisher gave up for good.
   * Never rejects.
   */
  publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome>;
  status(): PublisherStatus;
  /**
   * Calls `listener` whenever status() may report another health: connected
   * or not, closed, a permission refused or restored (not each new
   * lastError). A publisher without it is watched by polling (the health
   * monitor). Returns what removes the listener (a publisher swapped out on
   * reload stops telling).
   */
  onStatusChange?(listener: () => void): () => void;
  /**
   * The largest message NATS accepts now (known once connected), for
   * packing batch messages that fit; undefined when not known or unlimited.
   */
  messageLimit?(): MessageLimit | undefined;
  /** Flushes what was handed over and closes the connection. */
  close(): Promise<void>;
}
