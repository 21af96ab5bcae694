// Pipelined JetStream publishing, the way Go's PublishAsync works: every
// event is published with a reply subject under one wildcard inbox
// subscription, and acks are matched to events by the reply token. The
// client's js.publish() makes a request (a promise, a timer and a
// subscription entry) per message; here one batch costs one promise, and one
// sweep timer fails the acks that never came. The sweep runs only while acks
// are awaited: an idle agent has no timer here.
import {
  createInbox,
  NoRespondersError,
  PermissionViolationError,
  TimeoutError,
  type Msg,
  type NatsConnection,
  type PublishOptions,
  type Subscription,
} from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { QueuedEvent } from "../event/event.ts";
import { MsgIdHeader } from "./msg-id-header.ts";
import { withTimeout } from "../wait.ts";
import { sendEvent } from "./send.ts";

export interface Failure {
  readonly event: QueuedEvent;
  readonly error: Error;
}

/** One publishBatch() call: settles when every event was acked or failed. */
interface Batch {
  readonly events: readonly QueuedEvent[];
  /** 1 where the server acknowledged the event */
  readonly acked: Uint8Array;
  readonly failed: Failure[];
  /** sent and not yet settled */
  open: number;
  /** still sending: the batch cannot be done even when `open` drops to 0 */
  sending: boolean;
  done: () => void;
}

interface Pending {
  readonly batch: Batch;
  readonly index: number;
  readonly sentAt: number;
}

const utf8 = new TextDecoder();

export class AckWindow {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #prefix: string;
  #sub: Subscription;
  /** the server refused our reply subscription (permissions): no ack can come until a new one is allowed */
  #refused: Error | undefined;
  // Map keeps insertion order, which is send order: the sweep stops at the first young entry.
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  readonly #spaceWaiters: Array<() => void> = [];
  readonly #sweepMs: number;
  /** set while acks are pending */
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #msgId = new MsgIdHeader();
  readonly #options: PublishOptions = { headers: this.#msgId.headers, reply: "" };

  constructor(nc: NatsConnection, options: { timeoutMs: number; maxInFlight: number; inboxPrefix: string }) {
    this.#nc = nc;
    this.#timeoutMs = options.timeoutMs;
    this.#maxInFlight = options.maxInFlight;
    // the connection's inbox prefix (nats.inbox_prefix), which the account lets us subscribe to
    this.#prefix = `${createInbox(options.inboxPrefix)}.`;
    this.#sub = this.#subscribe();
    this.#sweepMs = Math.max(50, Math.min(1000, this.#timeoutMs / 4));
  }

  #subscribe(): Subscription {
    return this.#nc.subscribe(`${this.#prefix}*`, {
      callback: (err, msg) => {
        if (err) this.#onRefused(err);
        else this.#onAck(msg);
      },
    });
  }

  /** nats.js closes a refused subscription: fail what waits for an ack through it. */
  #onRefused(error: Error): void {
    this.#refused = error;
    this.failAll(error);
  }

  /**
   * After a refusal, subscribes again (the server's permissions may have
   * been fixed) and waits for the server's verdict, so that no event is
   * stored without a way to learn it was. Returns the refusal if it stands.
   */
  async #stillRefused(): Promise<Error | undefined> {
    if (!this.#refused) return undefined;
    this.#refused = undefined;
    this.#sub = this.#subscribe();
    try {
      await withTimeout(this.#nc.flush(), this.#timeoutMs);
    } catch (err) {
      return err as Error;
    }
    return this.#refused;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Publishes every event (at most max_in_flight unacknowledged across all
   * batches) and resolves when each is acked or failed. `acked[i]` is set as
   * acks arrive, so a caller that stops waiting knows what got through.
   */
  async publishBatch(events: readonly QueuedEvent[], acked: Uint8Array, signal: AbortSignal): Promise<Failure[]> {
    const batch: Batch = { events, acked, failed: [], open: 0, sending: true, done: noop };
    const settled = new Promise<void>((resolve) => (batch.done = resolve));
    const refused = await this.#stillRefused();
    if (refused) return events.map((event) => ({ event, error: refused }));
    for (let i = 0; i < events.length; i++) {
      while (this.#pending.size >= this.#maxInFlight) {
        await this.#space();
        if (signal.aborted) break;
      }
      if (signal.aborted) break;
      this.#send(batch, i);
    }
    batch.sending = false;
    if (batch.open > 0) await settled;
    return batch.failed;
  }

  #send(batch: Batch, index: number): void {
    const event = batch.events[index]!;
    const token = this.#next++;
    this.#options.reply = this.#prefix + token;
    try {
      sendEvent(this.#nc, event, this.#msgId, this.#options);
    } catch (error) {
      batch.failed.push({ event, error: error as Error });
      return;
    }
    batch.open++;
    this.#pending.set(token, { batch, index, sentAt: performance.now() });
    if (this.#sweep === undefined) {
      this.#sweep = setInterval(this.#expire, this.#sweepMs);
      this.#sweep.unref?.();
    }
  }

  #onAck(msg: Msg): void {
    const token = Number(msg.subject.slice(this.#prefix.length));
    const p = this.#pending.get(token);
    if (!p) return; // expired already, or a stray reply
    this.#pending.delete(token);
    const error = ackError(msg, p.batch.events[p.index]!.subject);
    if (error) p.batch.failed.push({ event: p.batch.events[p.index]!, error });
    else p.batch.acked[p.index] = 1;
    this.#settle(p.batch);
  }

  #settle(batch: Batch): void {
    if (--batch.open === 0 && !batch.sending) batch.done();
    const waiter = this.#spaceWaiters.shift();
    if (waiter) waiter();
  }

  #space(): Promise<void> {
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  /** Fails what waited longer than the timeout for its ack; stops sweeping once nothing is pending. */
  readonly #expire = (): void => {
    const oldest = performance.now() - this.#timeoutMs;
    for (const [token, p] of this.#pending) {
      if (p.sentAt > oldest) break;
      this.#pending.delete(token);
      p.batch.failed.push({ event: p.batch.events[p.index]!, error: new TimeoutError() });
      this.#settle(p.batch);
    }
    if (this.#pending.size === 0) this.#stopSweep();
  };

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /** Fails everything in flight at once (the connection dropped: those acks will not come). */
  failAll(error: Error): void {
    for (const [token, p] of this.#pending) {
      this.#pending.delete(token);
      p.batch.failed.push({ event: p.batch.events[p.index]!, error });
      this.#settle(p.batch);
    }
  }

  /** The server refused to let us publish to `subject`: that ack will never come. */
  failSubject(subject: string, error: Error): void {
    for (const [token, p] of this.#pending) {
      if (p.batch.events[p.index]!.subject !== subject) continue;
      this.#pending.delete(token);
      p.batch.failed.push({ event: p.batch.events[p.index]!, error });
      this.#settle(p.batch);
    }
  }

  close(): void {
    this.#stopSweep();
    this.failAll(new Error("publisher closed"));
    this.#sub.unsubscribe();
  }
}

function noop(): void {}

/** An ack is `{"stream":..,"seq":..}`; anything else is why the event was not stored. */
function ackError(msg: Msg, subject: string): Error | undefined {
  const data = msg.data;
  if (data.length === 0) {
    // No stream listens on the subject: the server answers with a 503 status.
    if (msg.headers?.code === 503) return new NoRespondersError(subject);
    return new Error(`empty reply${msg.headers ? ` (status ${msg.headers.code} ${msg.headers.description})` : ""}`);
  }
  // Acks are small and start with {"stream"; only errors need parsing.
  if (data[2] === 0x73 /* s */ && data[3] === 0x74 /* t */) {
    const text = utf8.decode(data);
    if (!text.includes('"error"')) return undefined;
  }
  try {
    const reply = JSON.parse(utf8.decode(data)) as { error?: { code: number; err_code?: number; description: string } };
    if (!reply.error) return undefined;
    return new JetStreamApiError({ code: reply.error.code, err_code: reply.error.err_code ?? 0, description: reply.error.description });
  } catch {
    return new Error(`unreadable ack: ${utf8.decode(data.subarray(0, 120))}`);
  }
}

export { PermissionViolationError };
