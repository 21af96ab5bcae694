// What the worker pool publishes through. Implementations: NATS core,
// JetStream, and stdout NDJSON for --dry-run (src/publish/).
import type { QueuedEvent } from "../event/event.ts";

export interface PublisherStatus {
  /** "core" | "jetstream" | "stdout" */
  readonly mode: string;
  readonly connected: boolean;
  /** the server currently connected to, if any */
  readonly server?: string;
  /** last publish or connection error message, if any */
  readonly lastError?: string;
  /** reconnects since start */
  readonly reconnects: number;
}

/** Reports publish failures by reason, for logs now and metrics later. */
export type PublishErrorListener = (reason: string, error: Error, events: number) => void;

export interface Publisher {
  /**
   * Connects and prepares (JetStream: ensures the stream). Resolves once ready.
   * While NATS is unreachable it keeps trying (max_reconnects -1 = forever) and
   * `publish` waits. Rejects with a PublisherError only for problems a retry
   * cannot fix (stream does not cover the subjects, bad credentials file).
   */
  start(): Promise<void>;
  /**
   * Delivers every event of `batch`, retrying transient failures with
   * exponential backoff and jitter, and resolves with the number delivered:
   * `batch.length`, unless `signal` aborts first (shutdown deadline), when it
   * resolves with how many were confirmed before that. Never rejects.
   */
  publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<number>;
  status(): PublisherStatus;
  /** Flushes what was handed over and closes the connection. */
  close(): Promise<void>;
}
