// Delivery: where a batch the workers took from the queue goes. It goes to
// NATS when NATS can take it now, and to the spool when it cannot (NATS
// down, stream unavailable, circuit open, acks slower than spill_after), or
// always first in disk mode. The drainer (drainer.ts) replays the spool.
// Every accepted event ends published, discarded with a reason, or in the
// spool (accounting.ts counts which). A spool that fails (disk full, read-only,
// corrupt) stops nothing: the batch stays in memory, NATS takes it if it can,
// and the write is retried with backoff until it succeeds or the deadline passes.
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import type { Publisher, PublishOutcome } from "../publish/publisher.ts";
import type { DeliveryLedger } from "../orchestrator/ledger.ts";
import type { CommitWaiters } from "../orchestrator/commit-waiters.ts";
import type { Spool } from "../spool/spool.ts";
import { asSpoolError, diagnoseLocation, SPOOL_ERROR_REASONS, type SpoolError, type SpoolErrorReason } from "../spool/errors.ts";
import { LogThrottle } from "../log.ts";
import { sleep, withTimeLimit } from "../wait.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import type { CircuitBreakers } from "./circuit.ts";
import { DeliveryAccounting } from "./accounting.ts";
import { SpoolDrainer } from "./drainer.ts";
import { PublisherSlot } from "./publisher-slot.ts";
import { deliveryProblems, deliveryStatus, spoolProblem, type DeliveryParts, type DeliveryStatus, type SpoolFault } from "./status.ts";

/** Retry delays for a batch the spool could not take. */
const SPOOL_RETRY: BackoffPolicy = { initialMs: 100, maxMs: 2000 };
/**
 * A nearly full disk lets some writes through and fails others: the spool
 * counts as working again (in health, /readyz, the log) only once it has
 * gone this long without a failure, and a write has succeeded since.
 */
const SPOOL_SETTLE_MS = 5000;

export interface DeliveryOptions {
  publisher: Publisher;
  /** absent: no spool (spool.enabled: false, or it could not be opened); events wait in memory until the shutdown deadline */
  spool: Spool | undefined;
  /** why the configured spool could not be opened: the agent runs without one, and says so in health */
  spoolUnavailable?: SpoolError;
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
  /** events that are durable now (acknowledged, spooled) or gone for good by policy: collectors' saves after them may be written */
  settled?: (events: readonly QueuedEvent[]) => void;
  /** waits on events' fates: those of events a batch drops end here, with the reason (the workers end the rest) */
  commits?: CommitWaiters;
  /**
   * What problems() reads changed: the publisher's status, a spool fault
   * ("now"); events went into an empty spool ("soon": they are a problem
   * only if they are still there a moment later). See HealthMonitor.changed.
   */
  healthChanged?: (when: "now" | "soon") => void;
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
  /** removes the health listener from the current publisher (one swapped out stops telling) */
  #unwatch: () => void = () => {};
  /** the spool's last failure, until it has worked again for SPOOL_SETTLE_MS */
  #spoolFault: SpoolFault | undefined;
  /** spool failures by reason (orchestrator_spool_errors_total) */
  readonly spoolErrors = new Map<SpoolErrorReason, number>(SPOOL_ERROR_REASONS.map((r) => [r, 0]));

  constructor(options: DeliveryOptions) {
    this.#o = options;
    this.#spool = options.spool;
    this.#slot = new PublisherSlot(options.publisher);
    this.#watch(options.publisher);
    this.#accounting = new DeliveryAccounting(options.ledger, options.breakers, options.spillAfterMs, options.settled);
    this.inherited = this.#spool?.depth ?? 0;
    if (options.spoolUnavailable) this.#countSpoolError(options.spoolUnavailable.reason);
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
      spoolFailed: (err, what, next) => this.#spoolFailed(err, what, next),
      spoolWorks: () => this.#spoolWorks(),
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

  /**
   * A worker's batch. Resolves false when the worker should stop (no spool
   * and the publisher gave up). While the spool fails, the worker keeps what
   * it could not write and tries again (NATS first, then the spool), so the
   * queue fills and the collectors feel buffer.when_full.
   */
  async deliver(batch: readonly QueuedEvent[]): Promise<boolean> {
    const spool = this.#spool;
    if (!spool) return this.#deliverWithoutSpool(batch);
    const { deadline, log } = this.#o;
    let rest = batch;
    for (let failures = 0; ; failures++) {
      rest = await this.#deliverOnce(spool, rest);
      if (rest.length === 0) return true;
      if (deadline.aborted) {
        this.#accounting.lost(rest);
        this.#o.commits?.drop(rest, "lost");
        log.error({ events: rest.length, err: this.#spoolFault?.error.message }, `shutdown deadline passed with the spool failing: ${rest.length} event(s) lost`);
        return true;
      }
      await sleep(backoffDelay(failures, SPOOL_RETRY), deadline);
    }
  }

  /** One attempt at a batch; resolves with the events neither NATS nor the spool took. */
  async #deliverOnce(spool: Spool, batch: readonly QueuedEvent[]): Promise<readonly QueuedEvent[]> {
    await this.#slot.open();
    const publisher = this.#slot.current;
    const { deadline } = this.#o;
    // In order: while older events wait in the spool, new ones queue behind them;
    // but while the spool fails, NATS is the only way out, order or not.
    const spoolFirst = !this.#spoolFault?.failing && (this.#o.bufferType === "disk" || spool.depth > 0);
    if (spoolFirst || this.#awayLongerThanSpill(publisher) || deadline.aborted) {
      const unwritten = await this.#toSpool(spool, batch);
      // Spool writes are synchronous and chain through promises alone: a
      // backlog spooled batch after batch would keep the event loop from I/O,
      // stalling every other destination's publishes (disk mode's workers yield already).
      if (this.#o.bufferType !== "disk") await new Promise<void>((resolve) => setImmediate(resolve));
      return unwritten;
    }
    const blocked = this.#o.breakers.blocked();
    let live = batch;
    let unwritten: readonly QueuedEvent[] = [];
    if (blocked.size > 0) {
      live = batch.filter((e) => !blocked.has(e.subject));
      if (live.length < batch.length) unwritten = await this.#toSpool(spool, batch.filter((e) => blocked.has(e.subject)));
      if (live.length === 0) return unwritten;
    }
    this.#handoff(live);
    const outcome = await withTimeLimit(deadline, this.#o.spillAfterMs, (signal) => this.#slot.publish(publisher, live, signal));
    this.#settle(live, outcome);
    this.#rejected(outcome);
    if (outcome.undelivered.length === 0) return unwritten;
    return unwritten.concat(await this.#toSpool(spool, outcome.undelivered));
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
    const unwatchOld = this.#unwatch;
    this.#watch(next);
    const old = await this.#slot.swap(next);
    unwatchOld();
    this.#notConnectedSince = 0;
    this.#o.healthChanged?.("now");
    return old;
  }

  #watch(publisher: Publisher): void {
    const changed = this.#o.healthChanged;
    if (changed) this.#unwatch = publisher.onStatusChange?.(() => changed("now")) ?? (() => {});
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
    this.#rejected(outcome);
    if (outcome.undelivered.length === 0) return true;
    this.#accounting.lost(outcome.undelivered);
    this.#o.commits?.drop(outcome.undelivered, "lost");
    if (!this.#o.deadline.aborted) this.#gaveUp();
    return false;
  }

  /** Counts a publish outcome; a publisher that closed for good (not by a swap or the deadline) is fatal. */
  #settle(batch: readonly QueuedEvent[], outcome: PublishOutcome): void {
    this.#accounting.settle(batch, outcome);
    if (batch.length === 0 || (outcome.undelivered.length === 0 && outcome.rejected.length === 0)) return;
    if (!this.#fatal && this.#slot.current.status().closed && !this.#o.deadline.aborted && !this.#slot.swapping) this.#gaveUp();
  }

  /** Events of a worker's batch NATS can never take: whoever waits on them learns why. */
  #rejected({ rejected }: PublishOutcome): void {
    const commits = this.#o.commits;
    if (!commits || rejected.length === 0) return;
    for (const { event, reason } of rejected) commits.drop([event], reason);
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
   * does not fit is discarded and counted. Resolves with the events a
   * failing spool did not take (the caller keeps them and retries).
   */
  async #toSpool(spool: Spool, events: readonly QueuedEvent[]): Promise<readonly QueuedEvent[]> {
    const { deadline, log } = this.#o;
    let rest = events;
    while (rest.length > 0) {
      // `appended` counts the events dealt with: written, or dropped and listed.
      let result: ReturnType<Spool["append"]>;
      if (spool.depth === 0) this.#o.healthChanged?.("soon");
      try {
        result = spool.append(rest);
      } catch (err) {
        this.#spoolFailed(err, `write ${rest.length} event(s)`, "keeping them in memory and retrying");
        return rest;
      }
      this.#spoolWorks();
      const { appended, dropped } = result;
      let gone: Set<QueuedEvent> | undefined;
      if (dropped.length > 0) {
        gone = this.#accounting.spoolDropped(dropped);
        // (rows drop_oldest deleted were settled when they were written)
        for (const d of dropped) if (!("seq" in d.event)) this.#o.commits?.drop([d.event], d.reason);
        this.#warn(`spool:${dropped[0]!.reason}`, { reason: dropped[0]!.reason, events: dropped.length }, "spool full: events dropped (spool.when_full)");
      }
      this.#accounting.spooled(rest.slice(0, appended), gone);
      if (appended > 0) this.#drainer?.wake();
      rest = rest.slice(appended);
      if (rest.length === 0) return [];
      this.#warn("spool:block", { waiting: rest.length }, "spool full: waiting for the drainer to make room (spool.when_full: block)");
      if (!(await spool.waitForSpace(rest[0]!.bytes.byteLength, deadline))) {
        this.#accounting.discarded(rest, "spool_full_at_shutdown");
        this.#o.commits?.drop(rest, "spool_full_at_shutdown");
        log.error({ events: rest.length }, `shutdown deadline passed with the spool full: ${rest.length} event(s) lost`);
        return [];
      }
    }
    return [];
  }

  /** A spool operation failed: counted, logged (rate-limited) and shown in health until one succeeds. */
  #spoolFailed(thrown: unknown, what: string, next: string): void {
    const error = asSpoolError(this.#o.spoolPath, thrown);
    this.#countSpoolError(error.reason);
    const now = Date.now();
    const was = this.#spoolFault;
    this.#spoolFault = { error, since: was?.since ?? now, lastFailureAt: now, failing: true };
    if (!was) this.#o.healthChanged?.("now");
    this.#warn(
      `spool-error:${error.reason}`,
      { reason: error.reason, err: error.message },
      `spool: cannot ${what}: ${error.message}; ${next}`,
    );
  }

  #spoolWorks(): void {
    if (this.#spoolFault) this.#spoolFault.failing = false;
    this.#settledSpoolFault();
  }

  /**
   * The spool's fault, if it still counts; one that has settled is cleared
   * (and its end logged) here. A spool nothing has used since it failed
   * (NATS took every batch) is believed to work once its file system shows
   * room and write access: the next write proves it, or fails it again.
   */
  #settledSpoolFault(): SpoolFault | undefined {
    const fault = this.#spoolFault;
    if (!fault || Date.now() - fault.lastFailureAt < SPOOL_SETTLE_MS) return fault;
    if (fault.failing && diagnoseLocation(this.#o.spoolPath) !== undefined) return fault;
    this.#spoolFault = undefined;
    this.#o.log.info({ reason: fault.error.reason, seconds: Math.round((Date.now() - fault.since) / 1000) }, "spool: writable again; delivery resumes");
    return undefined;
  }

  #countSpoolError(reason: SpoolErrorReason): void {
    this.spoolErrors.set(reason, (this.spoolErrors.get(reason) ?? 0) + 1);
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

  /** Why the spool cannot take events now, or why there is none although configured; undefined when it can. */
  spoolProblem(): string | undefined {
    return spoolProblem(this.#parts());
  }

  /** What keeps delivery from being healthy right now; empty when all is well. */
  problems(): string[] {
    return deliveryProblems(this.#parts());
  }

  /** a spool is open (it may still fail: spoolProblem says) */
  get hasSpool(): boolean {
    return this.#spool !== undefined;
  }

  spoolDepth(): number {
    return this.#spool?.depth ?? 0;
  }

  /** spool.max_bytes of the open spool; undefined without one */
  get spoolMaxBytes(): number | undefined {
    return this.#spool?.maxBytes;
  }

  status(): DeliveryStatus {
    return deliveryStatus(this.#parts());
  }

  #parts(): DeliveryParts {
    return {
      publisher: this.#slot.current,
      breakers: this.#o.breakers,
      spool: this.#spool,
      spoolPath: this.#o.spoolPath,
      spoolFault: this.#settledSpoolFault(),
      spoolUnavailable: this.#o.spoolUnavailable,
    };
  }

  #warn(key: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#o.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
