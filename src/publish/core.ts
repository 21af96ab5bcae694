// Publishes with core NATS: fire and forget, so a batch counts as delivered
// only once a flush (PING/PONG) after its last event came back, which
// proves the server received every event before it. nats.js drops what is
// published while disconnected without telling, hence: wait for the
// connection before publishing, and re-publish the whole batch when the flush
// fails (at-least-once; consumers dedupe on Nats-Msg-Id).
import type { Logger } from "pino";
import { PermissionViolationError, type NatsConnection, type PublishOptions } from "@nats-io/nats-core";
import { MsgIdHeader } from "./msg-id-header.ts";
import { sendEvent, serverLimit } from "./send.ts";
import type { NatsConfig } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import { backoffDelay } from "../backoff.ts";
import { classifyError, isPermanent } from "./classify.ts";
import type { ConnectionManager } from "./connection.ts";
import { outcome, type MessageLimit, type Publisher, type PublisherStatus, type PublishErrorListener, type PublishOutcome, type Rejection } from "./publisher.ts";
import { FailureReporter } from "./report.ts";
import { ABORTED, sleep, unlessAborted, withTimeout } from "../wait.ts";


export class CorePublisher implements Publisher {
  readonly #config: NatsConfig;
  readonly #connection: ConnectionManager;
  readonly #failures: FailureReporter;
  readonly #msgId = new MsgIdHeader();
  readonly #options: PublishOptions = { headers: this.#msgId.headers };
  /** resolves true once connected, false if start() failed for good */
  readonly #ready = Promise.withResolvers<boolean>();
  #isReady = false;
  /**
   * Subjects the server refused, with the refusal's number: the server
   * drops such a message and says so only in an error that comes before the
   * flush's reply, so a flush alone does not prove delivery.
   */
  readonly #refused = new Map<string, { seq: number; error: PermissionViolationError }>();
  #refusals = 0;

  constructor(config: NatsConfig, log: Logger, connection: ConnectionManager, onError?: PublishErrorListener) {
    this.#config = config;
    this.#connection = connection;
    this.#failures = new FailureReporter(log, connection, onError);
    connection.onTrouble((trouble) => {
      if (trouble.type === "error" && trouble.error instanceof PermissionViolationError && trouble.error.operation === "publish") {
        this.#refused.set(trouble.error.subject, { seq: ++this.#refusals, error: trouble.error });
      }
    });
  }

  async start(): Promise<void> {
    try {
      await this.#connection.start();
      this.#isReady = true;
      this.#ready.resolve(true);
    } catch (err) {
      this.#ready.resolve(false);
      throw err;
    }
  }

  /** A batch is confirmed only as a whole, by the flush: until then all of it is undelivered. */
  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    const rejected: Rejection[] = [];
    if (!this.#isReady && (await unlessAborted(this.#ready.promise, signal)) !== true) return outcome(batch, rejected);
    let pending = batch;
    let failure: string | undefined;
    for (let attempt = 0; pending.length > 0 && !signal.aborted; attempt++) {
      if (attempt > 0 && !(await sleep(backoffDelay(attempt - 1), signal))) break;
      if (!(await this.#connection.waitConnected(signal))) break;
      const nc = this.#connection.nc;
      const refusalsBefore = this.#refusals;
      let flushed: Promise<void>;
      try {
        pending = this.#publishAll(nc, pending, rejected);
        flushed = withTimeout(nc.flush(), this.#config.timeout.ms);
      } catch (err) {
        failure = this.#failed(err, pending);
        continue;
      }
      try {
        if ((await unlessAborted(flushed, signal)) === ABORTED) break;
        // The refusals came before the flush's reply, but reach us through the status
        // iterator's promise chain: one turn of the event loop lets them all arrive.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const refused = this.#refusedSince(refusalsBefore, pending);
        if (refused.length === 0) {
          this.#failures.succeeded();
          return outcome([], rejected);
        }
        failure = this.#failed(this.#refused.get(refused[0]!.subject)!.error, refused);
        pending = refused;
      } catch (err) {
        failure = this.#failed(err, pending);
      }
    }
    return outcome(pending, rejected, failure);
  }

  #failed(err: unknown, messages: readonly QueuedEvent[]): string {
    const reason = classifyError(err);
    this.#failures.publishFailed(reason, err as Error, messages);
    return `${reason}: ${(err as Error).message}`;
  }

  /** The events of `events` whose subject the server refused after refusal number `after`. */
  #refusedSince(after: number, events: readonly QueuedEvent[]): readonly QueuedEvent[] {
    if (this.#refusals === after) return [];
    return events.filter((e) => (this.#refused.get(e.subject)?.seq ?? 0) > after);
  }

  status(): PublisherStatus {
    return { mode: "core", ...this.#connection.state() };
  }

  onStatusChange(listener: () => void): () => void {
    return this.#connection.onStateChange(listener);
  }

  /** The server's max_payload, from the INFO of the server connected to now. */
  messageLimit(): MessageLimit | undefined {
    return this.#isReady ? serverLimit(this.#connection.nc) : undefined;
  }

  close(): Promise<void> {
    return this.#connection.close();
  }

  /** Publishes every event; moves the ones NATS can never accept to `rejected` (reported), throws on anything else. */
  #publishAll(nc: NatsConnection, events: readonly QueuedEvent[], rejected: Rejection[]): readonly QueuedEvent[] {
    let dropped: Set<QueuedEvent> | undefined;
    for (const event of events) {
      try {
        sendEvent(nc, event, this.#msgId, this.#options);
      } catch (err) {
        const reason = classifyError(err);
        if (!isPermanent(reason)) throw err;
        this.#failures.publishFailed(reason, err as Error, [event]);
        rejected.push({ event, reason });
        (dropped ??= new Set()).add(event);
      }
    }
    return dropped ? events.filter((e) => !dropped.has(e)) : events;
  }
}
