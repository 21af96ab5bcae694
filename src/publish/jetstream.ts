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
import { jetstream, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConfig } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import { backoffDelay } from "../backoff.ts";
import { classifyError, isPermanent, type PublishErrorReason } from "./classify.ts";
import type { ConnectionManager } from "./connection.ts";
import { PublisherClosedError, PublisherError } from "./errors.ts";
import { outcome, type MessageLimit, type Publisher, type PublisherStatus, type PublishErrorListener, type PublishOutcome, type Rejection } from "./publisher.ts";
import { FailureReporter } from "./report.ts";
import { ensureStream } from "./stream.ts";
import { AckWindow, type Failure } from "./ack-window.ts";
import { ABORTED, sleep, unlessAborted } from "../wait.ts";
import { PermissionViolationError, type NatsConnection } from "@nats-io/nats-core";
import { messageBytes } from "./msg-id-header.ts";
import { serverLimit } from "./send.ts";

export class JetStreamPublisher implements Publisher {
  readonly #config: NatsConfig;
  readonly #log: Logger;
  readonly #connection: ConnectionManager;
  readonly #failures: FailureReporter;
  #js: JetStreamClient | undefined;
  #nc: NatsConnection | undefined;
  #window: AckWindow | undefined;
  /** resolves with the ack window once the stream is ready, undefined if start() failed for good */
  readonly #ready = Promise.withResolvers<AckWindow | undefined>();
  /** set after a reconnect or a no_responders failure: the stream may be gone (server restarted with an empty store, deleted) */
  #streamStale = false;
  #streamCheck: Promise<void> | undefined;
  /** the stream's max_msg_size when it has one, read with the stream */
  #streamMaxMsgSize: number | undefined;
  /** set when NATS refused a message for its size that fit the limit we knew: re-read the stream's before the next batch */
  #limitStale = false;
  #limitCheck: Promise<void> | undefined;
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
    this.#nc = nc;
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
        const jsm = await js.jetstreamManager(false);
        const outcome = await ensureStream(jsm, this.#config);
        await this.#readStreamLimit(jsm);
        this.#log.info(
          { stream: this.#config.stream.name, subjects: `${this.#config.subject}.>`, outcome, max_msg_size: this.#streamMaxMsgSize ?? -1 },
          "JetStream stream ready",
        );
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
      this.#failures.publishFailed(reason, error, batch);
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
    // The caller packs the next messages (or the halves of this batch's) with the limit as it is now.
    if (this.#limitStale) await unlessAborted(this.#checkLimit(), signal);
    return outcome(pending, rejected, seen.failure);
  }

  status(): PublisherStatus {
    return { mode: "jetstream", ...this.#connection.state() };
  }

  onStatusChange(listener: () => void): () => void {
    return this.#connection.onStateChange(listener);
  }

  /** The server's max_payload or the stream's max_msg_size, whichever is smaller; known once the stream is ready. */
  messageLimit(): MessageLimit | undefined {
    if (!this.#js || !this.#nc) return undefined;
    const server = serverLimit(this.#nc);
    const stream = this.#streamMaxMsgSize;
    if (stream !== undefined && (server === undefined || stream < server.bytes)) return { bytes: stream, source: "the stream's max_msg_size" };
    return server;
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

  /**
   * Reports failures once per reason (batch messages too large apart: they
   * are split, not dropped), moves permanent ones to `rejected`, returns the
   * events worth retrying.
   */
  #triage(failed: readonly Failure[], rejected: Rejection[], seen: { failure?: string }): QueuedEvent[] {
    const groups = new Map<string, { reason: PublishErrorReason; error: Error; messages: QueuedEvent[] }>();
    const retry: QueuedEvent[] = [];
    const limit = this.messageLimit()?.bytes ?? Infinity;
    for (const { event, error } of failed) {
      const reason = classifyError(error);
      const key = reason === "max_payload" && event.batchOf !== undefined ? "max_payload:batch" : reason;
      const group = groups.get(key);
      if (group) group.messages.push(event);
      else groups.set(key, { reason, error, messages: [event] });
      if (isPermanent(reason)) rejected.push({ event, reason });
      else retry.push(event);
      // Refused for its size while within the limit we know: the stream's max_msg_size was lowered since we read it.
      if (reason === "max_payload" && messageBytes(event) <= limit) this.#limitStale = true;
    }
    for (const { reason, error, messages } of groups.values()) {
      this.#failures.publishFailed(reason, error, messages);
      seen.failure = `${reason}: ${error.message}`;
    }
    if (groups.has("no_responders")) this.#streamStale = true;
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
      const jsm = await js.jetstreamManager(false);
      const outcome = await ensureStream(jsm, this.#config);
      if (outcome === "created") this.#log.warn({ stream: this.#config.stream.name }, "JetStream stream was missing; created it again");
      await this.#readStreamLimit(jsm);
    } catch (err) {
      this.#streamStale = true;
      const { reason, error } = this.#setupFailureOf(err as Error);
      this.#failures.setupFailed("stream check", reason, error);
    }
  }

  /** Re-reads the stream's max_msg_size, once for all concurrent publish() calls. Never rejects. */
  #checkLimit(): Promise<void> {
    this.#limitCheck ??= (async () => {
      this.#limitStale = false;
      const before = this.#streamMaxMsgSize;
      if (this.#js) await this.#readStreamLimit(await this.#js.jetstreamManager(false));
      if (this.#streamMaxMsgSize !== before) {
        this.#log.warn({ stream: this.#config.stream.name, max_msg_size: this.#streamMaxMsgSize ?? -1 }, "the JetStream stream's max_msg_size changed");
      }
    })()
      .catch((err: Error) => this.#failures.setupFailed("stream limit check", classifyError(err), err))
      .finally(() => {
        this.#limitCheck = undefined;
      });
    return this.#limitCheck;
  }

  /** The stream's max_msg_size (set by whoever made the stream); if it cannot be read now, what was known stays. */
  async #readStreamLimit(jsm: JetStreamManager): Promise<void> {
    try {
      const max = (await jsm.streams.info(this.#config.stream.name)).config.max_msg_size;
      this.#streamMaxMsgSize = max !== undefined && max > 0 ? max : undefined;
    } catch (err) {
      this.#failures.setupFailed("stream limit check", classifyError(err), err as Error);
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
