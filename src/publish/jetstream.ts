// Publishes to a JetStream stream and counts an event delivered once the
// server acknowledged storing it. Each event carries its id as Nats-Msg-Id,
// so retries within the stream's duplicate_window are stored once.
//
// A batch is published in rounds: every pending event is sent through the
// AckWindow (pipelined, at most max_in_flight unacknowledged across all
// concurrent publish() calls), the failures are classified and reported once
// per reason, and the retryable ones go into the next round after an
// exponential backoff with jitter. The JetStream client is used only to
// manage the stream.
import type { Logger } from "pino";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConfig } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import { backoffDelay } from "../backoff.ts";
import { classifyError, isPermanent, type PublishErrorReason } from "./classify.ts";
import type { ConnectionManager } from "./connection.ts";
import { PublisherClosedError, PublisherError } from "./errors.ts";
import { outcome, type Publisher, type PublisherStatus, type PublishErrorListener, type PublishOutcome, type Rejection } from "./publisher.ts";
import { FailureReporter } from "./report.ts";
import { ensureStream } from "./stream.ts";
import { AckWindow, type Failure } from "./ack-window.ts";
import { ABORTED, sleep, unlessAborted } from "../wait.ts";
import { PermissionViolationError } from "@nats-io/nats-core";

export class JetStreamPublisher implements Publisher {
  readonly #config: NatsConfig;
  readonly #log: Logger;
  readonly #connection: ConnectionManager;
  readonly #failures: FailureReporter;
  #js: JetStreamClient | undefined;
  #window: AckWindow | undefined;
  /** resolves with the ack window once the stream is ready, undefined if start() failed for good */
  readonly #ready = Promise.withResolvers<AckWindow | undefined>();
  /** set after a reconnect or a no_responders failure: the stream may be gone (server restarted with an empty store, deleted) */
  #streamStale = false;
  #streamCheck: Promise<void> | undefined;
  /** why the stream is not ready yet (retried): what a publish waiting for it reports */
  #setupFailure: { reason: PublishErrorReason; error: Error } | undefined;

  constructor(config: NatsConfig, log: Logger, connection: ConnectionManager, onError?: PublishErrorListener) {
    this.#config = config;
    this.#log = log;
    this.#connection = connection;
    this.#failures = new FailureReporter(log, connection, onError);
  }

  async start(): Promise<void> {
    try {
      this.#ready.resolve(await this.#prepare());
    } catch (err) {
      this.#ready.resolve(undefined);
      throw err;
    }
  }

  async #prepare(): Promise<AckWindow> {
    const nc = await this.#connection.start();
    const js = jetstream(nc, { timeout: this.#config.timeout.ms });
    const window = new AckWindow(nc, { timeoutMs: this.#config.timeout.ms, maxInFlight: this.#config.max_in_flight, inboxPrefix: this.#config.inbox_prefix });
    this.#window = window;
    this.#connection.onReconnect(() => {
      this.#streamStale = true;
    });
    this.#connection.onTrouble((trouble) => {
      // Acks in flight on a dropped connection never come; a denied subject's never will either.
      if (trouble.type === "disconnect") window.failAll(new Error("disconnected from NATS"));
      else if (trouble.error instanceof PermissionViolationError && trouble.error.operation === "publish") {
        window.failSubject(trouble.error.subject, trouble.error);
      }
    });
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await ensureStream(await js.jetstreamManager(false), this.#config);
        this.#log.info({ stream: this.#config.stream.name, subjects: `${this.#config.subject}.>`, outcome }, "JetStream stream ready");
        this.#setupFailure = undefined;
        this.#failures.succeeded();
        this.#js = js;
        return window;
      } catch (err) {
        if (err instanceof PublisherError) throw err;
        if (this.#connection.state().closed) {
          throw new PublisherError(`NATS connection closed before the JetStream stream was ready: ${(err as Error).message}`, { cause: err });
        }
        const failure = this.#setupFailureOf(err as Error);
        this.#setupFailure = failure;
        this.#failures.setupFailed("stream setup", failure.reason, failure.error);
        if (!(await sleep(backoffDelay(attempt), this.#connection.closing))) {
          throw new PublisherClosedError("publisher closed before the JetStream stream was ready", { cause: err });
        }
      }
    }
  }

  /**
   * On an abort mid-round, events acknowledged so far count as delivered;
   * those still in flight count as undelivered (if the server stores them
   * anyway, a replay is deduplicated by its msg id).
   */
  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    const rejected: Rejection[] = [];
    const window = this.#js ? this.#window : await unlessAborted(this.#ready.promise, signal);
    if (window === ABORTED && this.#setupFailure) {
      // Say why these events were not published: the stream setup keeps failing (permission, timeout...).
      const { reason, error } = this.#setupFailure;
      this.#failures.publishFailed(reason, error, batch.length);
      return outcome(batch, rejected, `${reason}: ${(reason === "permission" && this.#connection.state().permission) || `stream setup: ${error.message}`}`);
    }
    if (window === undefined || window === ABORTED) return outcome(batch, rejected);
    let pending = batch;
    const seen: { failure?: string } = {};
    for (let attempt = 0; pending.length > 0 && !signal.aborted; attempt++) {
      if (attempt > 0 && !(await sleep(backoffDelay(attempt - 1), signal))) break;
      if (!(await this.#connection.waitConnected(signal))) break;
      if (this.#streamStale) await unlessAborted(this.#checkStream(), signal);
      const acked = new Uint8Array(pending.length);
      const next = await unlessAborted(this.#round(window, pending, signal, rejected, acked, seen), signal);
      if (next === ABORTED) {
        // What the server confirmed before the abort is delivered; the rest is not (yet).
        pending = pending.filter((_, i) => acked[i] === 0);
        break;
      }
      pending = next;
    }
    return outcome(pending, rejected, seen.failure);
  }

  status(): PublisherStatus {
    return { mode: "jetstream", ...this.#connection.state() };
  }

  async close(): Promise<void> {
    this.#window?.close();
    await this.#connection.close();
  }

  /** Publishes `events` once each; resolves with the ones to retry. */
  async #round(
    window: AckWindow,
    events: readonly QueuedEvent[],
    signal: AbortSignal,
    rejected: Rejection[],
    acked: Uint8Array,
    seen: { failure?: string },
  ): Promise<readonly QueuedEvent[]> {
    const failed = await window.publishBatch(events, acked, signal);
    if (acked.includes(1) && !failed.some((f) => classifyError(f.error) === "permission")) this.#failures.succeeded();
    if (signal.aborted) {
      // Events never sent (the abort came while waiting for window space) are neither acked nor failed.
      return events.filter((_, i) => acked[i] === 0);
    }
    return failed.length === 0 ? [] : this.#triage(failed, rejected, seen);
  }

  /** Reports failures once per reason, moves permanent ones to `rejected`, returns the events worth retrying. */
  #triage(failed: readonly Failure[], rejected: Rejection[], seen: { failure?: string }): QueuedEvent[] {
    const byReason = new Map<PublishErrorReason, { error: Error; events: number }>();
    const retry: QueuedEvent[] = [];
    for (const { event, error } of failed) {
      const reason = classifyError(error);
      const entry = byReason.get(reason);
      if (entry) entry.events++;
      else byReason.set(reason, { error, events: 1 });
      if (isPermanent(reason)) rejected.push({ event, reason });
      else retry.push(event);
    }
    for (const [reason, { error, events }] of byReason) {
      this.#failures.publishFailed(reason, error, events);
      seen.failure = `${reason}: ${error.message}`;
    }
    if (byReason.has("no_responders")) this.#streamStale = true;
    return retry;
  }

  /** Re-ensures the stream, once for all concurrent publish() calls. Never rejects: failures leave it stale for the next round. */
  #checkStream(): Promise<void> {
    this.#streamCheck ??= this.#recheck().finally(() => {
      this.#streamCheck = undefined;
    });
    return this.#streamCheck;
  }

  async #recheck(): Promise<void> {
    const js = this.#js;
    if (!js) return;
    this.#streamStale = false;
    try {
      const outcome = await ensureStream(await js.jetstreamManager(false), this.#config);
      if (outcome === "created") this.#log.warn({ stream: this.#config.stream.name }, "JetStream stream was missing; created it again");
    } catch (err) {
      this.#streamStale = true;
      const { reason, error } = this.#setupFailureOf(err as Error);
      this.#failures.setupFailed("stream check", reason, error);
    }
  }

  /**
   * A stream API request whose reply inbox the server refused times out;
   * the refusal came as a separate server error, which names the cause.
   */
  #setupFailureOf(error: Error): { reason: PublishErrorReason; error: Error } {
    const reason = classifyError(error);
    const refusal = this.#connection.refusedSubscription;
    return reason === "timeout" && refusal ? { reason: "permission", error: refusal } : { reason, error };
  }
}
