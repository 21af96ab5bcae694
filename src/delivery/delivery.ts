// Delivery: where a batch the workers took from the queue goes. It goes to
// NATS when NATS can take it now, and to the spool when it cannot (NATS
// down, stream unavailable, circuit open, acks slower than spill_after), or
// always first in disk mode. The drainer (drainer.ts) replays the spool.
// Every accepted event ends published, discarded with a reason, or in the
// spool (accounting.ts counts which).
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import type { Publisher, PublishOutcome } from "../publish/publisher.ts";
import type { DeliveryLedger } from "../orchestrator/ledger.ts";
import type { Spool } from "../spool/spool.ts";
import { LogThrottle } from "../log.ts";
import { sleep } from "../wait.ts";
import type { CircuitBreakers } from "./circuit.ts";
import { DeliveryAccounting } from "./accounting.ts";
import { SpoolDrainer } from "./drainer.ts";
import { PublisherSlot } from "./publisher-slot.ts";
import { deliveryProblems, deliveryStatus, type DeliveryParts, type DeliveryStatus } from "./status.ts";

export interface DeliveryOptions {
  publisher: Publisher;
  /** absent: no spool (spool.enabled: false); events wait in memory until the shutdown deadline */
  spool: Spool | undefined;
  /** where the spool lives, for status and messages */
  spoolPath: string;
  /** disk: every event is written to the spool first */
  bufferType: Config["orchestrator"]["buffer"]["type"];
  /** how long a batch may wait for NATS before it goes to the spool */
  spillAfterMs: number;
  breakers: CircuitBreakers;
  ledger: DeliveryLedger;
  log: Logger;
  /** aborted when shutdown_timeout passes: in-flight publishes give up */
  deadline: AbortSignal;
  /** events the drainer replays at once (its acks in flight) */
  drainBatch: number;
  /** nats.subject as configured now: spooled events are replayed to it */
  subjectPrefix: () => string;
  /** the publisher gave up for good (max_reconnects reached) */
  onFatal: (err: Error) => void;
  /** seconds from emit to the hand-off to the NATS client, sampled per batch (first and last event) */
  onHandoff?: (seconds: number) => void;
}

export class Delivery {
  readonly #o: DeliveryOptions;
  readonly #spool: Spool | undefined;
  readonly #slot: PublisherSlot;
  readonly #accounting: DeliveryAccounting;
  readonly #drainer: SpoolDrainer | undefined;
  readonly #throttle = new LogThrottle();
  /** events found in the spool at start, left by a previous run or a crash */
  readonly inherited: number;
  #fatal = false;
  /** when NATS was last seen not connected (0: connected) */
  #notConnectedSince = 0;

  constructor(options: DeliveryOptions) {
    this.#o = options;
    this.#spool = options.spool;
    this.#slot = new PublisherSlot(options.publisher);
    this.#accounting = new DeliveryAccounting(options.ledger, options.breakers, options.spillAfterMs);
    this.inherited = this.#spool?.depth ?? 0;
    this.#drainer = options.spool && new SpoolDrainer({
      spool: options.spool,
      slot: this.#slot,
      breakers: options.breakers,
      accounting: this.#accounting,
      settle: (rows, outcome) => this.#settle(rows, outcome),
      batch: options.drainBatch,
      subjectPrefix: options.subjectPrefix,
      spillAfterMs: options.spillAfterMs,
      deadline: options.deadline,
      log: options.log,
      warn: (key, fields, message) => this.#warn(key, fields, message),
    });
  }

  /** Starts the drainer, which replays the spool whenever NATS takes events. */
  start(): void {
    this.#drainer?.start();
    if (this.inherited > 0) {
      this.#o.log.info({ events: this.inherited }, `${this.inherited} event(s) left in the spool by a previous run will be replayed`);
    }
  }

  get publisher(): Publisher {
    return this.#slot.current;
  }

  /** A worker's batch. Resolves false when the worker should stop (no spool and the publisher gave up). */
  async deliver(batch: readonly QueuedEvent[]): Promise<boolean> {
    const spool = this.#spool;
    if (!spool) return this.#deliverWithoutSpool(batch);
    await this.#slot.open();
    const publisher = this.#slot.current;
    const { deadline } = this.#o;
    // In order: while older events wait in the spool, new ones queue behind them.
    if (this.#o.bufferType === "disk" || spool.depth > 0 || this.#awayLongerThanSpill(publisher) || deadline.aborted) {
      await this.#toSpool(spool, batch);
      return true;
    }
    const blocked = this.#o.breakers.blocked();
    let live = batch;
    if (blocked.size > 0) {
      live = batch.filter((e) => !blocked.has(e.subject));
      if (live.length < batch.length) await this.#toSpool(spool, batch.filter((e) => blocked.has(e.subject)));
      if (live.length === 0) return true;
    }
    this.#handoff(live);
    const outcome = await this.#slot.publish(publisher, live, AbortSignal.any([deadline, AbortSignal.timeout(this.#o.spillAfterMs)]));
    this.#settle(live, outcome);
    if (outcome.undelivered.length > 0) await this.#toSpool(spool, outcome.undelivered);
    return true;
  }

  /**
   * NATS not connected for longer than spill_after: batches go to the spool
   * at once instead of each waiting spill_after (which would stall the
   * workers during an outage). A shorter gap (start-up, a quick reconnect)
   * is waited out by the publish itself.
   */
  #awayLongerThanSpill(publisher: Publisher): boolean {
    if (publisher.status().connected) {
      this.#notConnectedSince = 0;
      return false;
    }
    const now = Date.now();
    if (this.#notConnectedSince === 0) this.#notConnectedSince = now;
    return now - this.#notConnectedSince >= this.#o.spillAfterMs;
  }

  /**
   * Replaces the publisher (NATS settings changed on reload). New publishes
   * wait; those under way finish on the old publisher (or spill to the spool
   * after spill_after), so no event is lost; then the old one is returned
   * for the caller to close.
   */
  async swapPublisher(next: Publisher): Promise<Publisher> {
    const old = await this.#slot.swap(next);
    this.#notConnectedSince = 0;
    return old;
  }

  /** The publisher writes a batch to the client as soon as it is called: this is the hand-off. */
  #handoff(batch: readonly QueuedEvent[]): void {
    const record = this.#o.onHandoff;
    if (!record) return;
    const now = performance.now();
    const first = batch[0]!.emittedAt;
    const last = batch[batch.length - 1]!.emittedAt;
    if (first !== undefined) record((now - first) / 1000);
    if (last !== undefined && batch.length > 1) record((now - last) / 1000);
  }

  /** Without a spool: keep trying until the deadline (what is left then is lost, and counted). */
  async #deliverWithoutSpool(batch: readonly QueuedEvent[]): Promise<boolean> {
    await this.#slot.open();
    this.#handoff(batch);
    const outcome = await this.#slot.publish(this.#slot.current, batch, this.#o.deadline);
    this.#settle(batch, outcome);
    if (outcome.undelivered.length === 0) return true;
    this.#accounting.lost(outcome.undelivered);
    if (!this.#o.deadline.aborted) this.#gaveUp();
    return false;
  }

  /** Counts a publish outcome; a publisher that closed for good (not by a swap or the deadline) is fatal. */
  #settle(batch: readonly QueuedEvent[], outcome: PublishOutcome): void {
    this.#accounting.settle(batch, outcome);
    if (batch.length === 0 || (outcome.undelivered.length === 0 && outcome.rejected.length === 0)) return;
    if (!this.#fatal && this.#slot.current.status().closed && !this.#o.deadline.aborted && !this.#slot.swapping) this.#gaveUp();
  }

  #gaveUp(): void {
    if (this.#fatal) return;
    this.#fatal = true;
    const reason = this.#slot.current.status().lastError ?? "the connection is closed";
    this.#o.onFatal(new Error(`the publisher stopped delivering: ${reason}`));
  }

  /**
   * Writes events to the spool. With when_full: block this waits for room
   * (which slows the workers, then the collectors); past the deadline what
   * does not fit is discarded and counted.
   */
  async #toSpool(spool: Spool, events: readonly QueuedEvent[]): Promise<void> {
    const { deadline, log } = this.#o;
    let rest = events;
    while (rest.length > 0) {
      // `appended` counts the events dealt with: written, or dropped and listed.
      const { appended, dropped } = spool.append(rest);
      let gone: Set<QueuedEvent> | undefined;
      if (dropped.length > 0) {
        gone = this.#accounting.spoolDropped(dropped);
        this.#warn(`spool:${dropped[0]!.reason}`, { reason: dropped[0]!.reason, events: dropped.length }, "spool full: events dropped (spool.when_full)");
      }
      this.#accounting.spooled(rest.slice(0, appended), gone);
      if (appended > 0) this.#drainer?.wake();
      rest = rest.slice(appended);
      if (rest.length === 0) return;
      this.#warn("spool:block", { waiting: rest.length }, "spool full: waiting for the drainer to make room (spool.when_full: block)");
      if (!(await spool.waitForSpace(rest[0]!.bytes.byteLength, deadline))) {
        this.#accounting.discarded(rest, "spool_full_at_shutdown");
        log.error({ events: rest.length }, `shutdown deadline passed with the spool full: ${rest.length} event(s) lost`);
        return;
      }
    }
  }

  /** Resolves when the spool is empty, or when the deadline passes. */
  async drained(): Promise<void> {
    const spool = this.#spool;
    if (!spool) return;
    while (spool.depth > 0 && !this.#o.deadline.aborted && !this.#fatal) {
      await sleep(20, this.#o.deadline);
    }
  }

  /** Waits for the drainer to end; it ends once the deadline signal aborts. */
  async stopped(): Promise<void> {
    await this.#drainer?.stopped();
  }

  /** What keeps delivery from being healthy right now; empty when all is well. */
  problems(): string[] {
    return deliveryProblems(this.#parts());
  }

  spoolDepth(): number {
    return this.#spool?.depth ?? 0;
  }

  status(): DeliveryStatus {
    return deliveryStatus(this.#parts());
  }

  #parts(): DeliveryParts {
    return { publisher: this.#slot.current, breakers: this.#o.breakers, spool: this.#spool, spoolPath: this.#o.spoolPath };
  }

  #warn(key: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#o.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
