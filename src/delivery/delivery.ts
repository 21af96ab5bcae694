// Delivery: what happens to a batch the workers took from the queue. It goes
// to NATS when NATS can take it now, and to the spool when it cannot (NATS
// down, stream unavailable, circuit open, acks slower than spill_after), or
// always first in disk mode. A drainer replays the spool in order and
// removes each event only after the server confirmed it. Every accepted
// event ends published, discarded with a reason, or in the spool.
import type { Logger } from "pino";
import type { QueuedEvent } from "../event/event.ts";
import type { Publisher, PublishOutcome } from "../publish/publisher.ts";
import type { HealthTracker } from "../orchestrator/health.ts";
import type { Spool, SpoolDrop, SpooledEvent, SpoolStats } from "../spool/spool.ts";
import { LogThrottle } from "../log.ts";
import { sleep } from "../wait.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import type { CircuitBreakers, CircuitSnapshot } from "./circuit.ts";

/** Drainer retry delays after a failed replay. */
const DRAIN_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
/** How often an idle drainer looks again when nothing wakes it. */
const DRAIN_IDLE_MS = 250;

export interface DeliveryOptions {
  publisher: Publisher;
  /** absent: no spool (spool.enabled: false); events wait in memory until the shutdown deadline */
  spool: Spool | undefined;
  /** where the spool lives, for status and messages */
  spoolPath: string;
  /** disk: every event is written to the spool first */
  bufferType: "memory" | "disk";
  /** how long a batch may wait for NATS before it goes to the spool */
  spillAfterMs: number;
  breakers: CircuitBreakers;
  health: HealthTracker;
  log: Logger;
  /** aborted when shutdown_timeout passes: in-flight publishes give up */
  deadline: AbortSignal;
  /** events the drainer replays at once (its acks in flight) */
  drainBatch: number;
  /** the publisher gave up for good (max_reconnects reached) */
  onFatal: (err: Error) => void;
  /** seconds from emit to the hand-off to the NATS client, sampled per batch (first and last event) */
  onHandoff?: (seconds: number) => void;
}

export interface DeliveryStatus {
  nats: ReturnType<Publisher["status"]>;
  circuits: CircuitSnapshot[];
  spool: (SpoolStats & { path: string; oldest_age_seconds: number | undefined }) | undefined;
}

export class Delivery {
  readonly #o: DeliveryOptions;
  readonly #spool: Spool | undefined;
  readonly #throttle = new LogThrottle();
  /** events found in the spool at start, left by a previous run or a crash */
  readonly inherited: number;
  #drainer: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #fatal = false;
  /** swapped by a configuration reload (swapPublisher) */
  #publisher: Publisher;
  /** publish calls under way (workers and drainer), so a swap can wait for them */
  #busy = 0;
  #idleWaiters: Array<() => void> = [];
  /** set while a publisher swap waits: new publishes wait behind it */
  #gate: Promise<void> | undefined;
  /** when NATS was last seen not connected (0: connected) */
  #notConnectedSince = 0;
  /** seqs of the rows the drainer is publishing now */
  readonly #inFlight = new Set<number>();
  /** of those, the ones drop_oldest deleted meanwhile */
  readonly #evictedInFlight = new Set<number>();

  constructor(options: DeliveryOptions) {
    this.#o = options;
    this.#publisher = options.publisher;
    this.#spool = options.spool;
    this.inherited = this.#spool?.depth ?? 0;
  }

  /** Starts the drainer, which replays the spool whenever NATS takes events. */
  start(): void {
    if (this.#spool) this.#drainer ??= this.#drain(this.#spool);
    if (this.inherited > 0) {
      this.#o.log.info({ events: this.inherited }, `${this.inherited} event(s) left in the spool by a previous run will be replayed`);
    }
  }

  /** A worker's batch. Resolves false when the worker should stop (no spool and the publisher gave up). */
  async deliver(batch: readonly QueuedEvent[]): Promise<boolean> {
    const spool = this.#spool;
    if (!spool) return this.#deliverWithoutSpool(batch);
    if (this.#gate) await this.#gate;
    const publisher = this.#publisher;
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
    const outcome = await this.#publish(publisher, live, AbortSignal.any([deadline, AbortSignal.timeout(this.#o.spillAfterMs)]));
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

  get publisher(): Publisher {
    return this.#publisher;
  }

  /** Every publish goes through here, so a swap knows when the old publisher is idle. */
  async #publish(publisher: Publisher, batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    this.#busy++;
    try {
      return await publisher.publish(batch, signal);
    } finally {
      if (--this.#busy === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /**
   * Replaces the publisher (NATS settings changed on reload). New publishes
   * wait; those under way finish on the old publisher (or spill to the spool
   * after spill_after), so no event is lost; then the old one is returned
   * for the caller to close.
   */
  async swapPublisher(next: Publisher): Promise<Publisher> {
    const gate = Promise.withResolvers<void>();
    this.#gate = gate.promise;
    try {
      if (this.#busy > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      const old = this.#publisher;
      this.#publisher = next;
      this.#notConnectedSince = 0;
      return old;
    } finally {
      this.#gate = undefined;
      gate.resolve();
    }
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
    if (this.#gate) await this.#gate;
    this.#handoff(batch);
    const outcome = await this.#publish(this.#publisher, batch, this.#o.deadline);
    this.#settle(batch, outcome);
    if (outcome.undelivered.length === 0) return true;
    for (const e of outcome.undelivered) this.#o.health.collector(e.collector).lost++;
    if (!this.#o.deadline.aborted) this.#gaveUp();
    return false;
  }

  /**
   * Counts what the publisher confirmed and what it rejected, and tells the
   * circuit breakers: a subject with undelivered events failed, the others
   * succeeded.
   */
  #settle(batch: readonly QueuedEvent[], { undelivered, rejected, failure }: PublishOutcome): void {
    const { health, breakers } = this.#o;
    if (batch.length === 0) return;
    if (undelivered.length === 0 && rejected.length === 0) {
      // Batches come in runs from one collector: look its record up once per run.
      let subject = "";
      let record = health.collector(batch[0]!.collector);
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!;
        if (e.collector !== record.name) record = health.collector(e.collector);
        record.published++;
        if (e.subject !== subject) {
          subject = e.subject;
          breakers.for(subject).success();
        }
      }
      return;
    }
    const notPublished = new Set<QueuedEvent>(undelivered);
    for (const { event, reason } of rejected) {
      notPublished.add(event);
      health.collector(event.collector).discard(reason);
    }
    const failed = new Set(undelivered.map((e) => e.subject));
    const reason = failure ?? `not confirmed within spool.spill_after (${this.#o.spillAfterMs}ms)`;
    for (const subject of failed) breakers.for(subject).failure(reason);
    for (const e of batch) {
      if (notPublished.has(e)) continue;
      health.collector(e.collector).published++;
      if (!failed.has(e.subject)) breakers.for(e.subject).success();
    }
    if (!this.#fatal && this.#publisher.status().closed && !this.#o.deadline.aborted && !this.#gate) this.#gaveUp();
  }

  #gaveUp(): void {
    if (this.#fatal) return;
    this.#fatal = true;
    const reason = this.#publisher.status().lastError ?? "the connection is closed";
    this.#o.onFatal(new Error(`the publisher stopped delivering: ${reason}`));
  }

  /**
   * Writes events to the spool. With when_full: block this waits for room
   * (which slows the workers, then the collectors); past the deadline what
   * does not fit is discarded and counted.
   */
  async #toSpool(spool: Spool, events: readonly QueuedEvent[]): Promise<void> {
    const { health, deadline, log } = this.#o;
    let rest = events;
    while (rest.length > 0) {
      // `appended` counts the events dealt with: written, or dropped and listed.
      const { appended, dropped } = spool.append(rest);
      const gone = dropped.length > 0 ? this.#countDrops(dropped) : undefined;
      for (let i = 0; i < appended; i++) {
        const e = rest[i]!;
        if (!gone?.has(e)) health.collector(e.collector).spooled++;
      }
      if (appended > 0) this.#wake?.();
      rest = rest.slice(appended);
      if (rest.length === 0) return;
      this.#warn("spool:block", { waiting: rest.length }, "spool full: waiting for the drainer to make room (spool.when_full: block)");
      if (!(await spool.waitForSpace(rest[0]!.bytes.byteLength, deadline))) {
        for (const e of rest) health.collector(e.collector).discard("spool_full_at_shutdown");
        log.error({ events: rest.length }, `shutdown deadline passed with the spool full: ${rest.length} event(s) lost`);
        return;
      }
    }
  }

  /**
   * Counts the spool's drops. A row that drop_oldest deleted while the drainer
   * is publishing it is settled by the drainer instead: published if the
   * server takes it, discarded if not.
   */
  #countDrops(dropped: readonly SpoolDrop[]): Set<QueuedEvent> {
    const gone = new Set<QueuedEvent>();
    for (const d of dropped) {
      gone.add(d.event);
      const seq = (d.event as Partial<SpooledEvent>).seq;
      if (seq !== undefined && this.#inFlight.has(seq)) this.#evictedInFlight.add(seq);
      else this.#o.health.collector(d.event.collector).discard(d.reason);
    }
    this.#warn(`spool:${dropped[0]!.reason}`, { reason: dropped[0]!.reason, events: dropped.length }, "spool full: events dropped (spool.when_full)");
    return gone;
  }

  /** Replays the spool in order while NATS takes events; runs until the deadline aborts. */
  async #drain(spool: Spool): Promise<void> {
    const { deadline, breakers, drainBatch, spillAfterMs } = this.#o;
    let failures = 0;
    while (!deadline.aborted) {
      if (this.#gate) await this.#gate;
      const publisher = this.#publisher;
      const rows = spool.depth > 0 && publisher.status().connected ? spool.peek(drainBatch, breakers.blocked()) : [];
      if (rows.length === 0) {
        await this.#idle();
        continue;
      }
      for (const r of rows) this.#inFlight.add(r.seq);
      const outcome = await this.#publish(publisher, rows, AbortSignal.any([deadline, AbortSignal.timeout(spillAfterMs)]));
      const { undelivered, rejected } = outcome;
      this.#settle(rows, outcome);
      this.#inFlight.clear();
      if (this.#evictedInFlight.size > 0) {
        for (const e of undelivered as readonly SpooledEvent[]) {
          if (this.#evictedInFlight.has(e.seq)) this.#o.health.collector(e.collector).discard("spool_full_oldest");
        }
        this.#evictedInFlight.clear();
      }
      spool.remove(undelivered.length === 0 ? rows : rowsExcept(rows, undelivered));
      if (rejected.length > 0) this.#warn("drain:rejected", { events: rejected.length, reason: rejected[0]!.reason }, "spooled events NATS can never take were dropped");
      if (undelivered.length === 0) {
        if (failures > 0) this.#o.log.info({ spool_depth: spool.depth }, "NATS takes events again; replaying the spool");
        failures = 0;
        continue;
      }
      await sleep(backoffDelay(failures++, DRAIN_BACKOFF), deadline);
    }
  }

  /** Waits until something is spooled, or a short while (NATS may have come back). */
  #idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#o.deadline.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, DRAIN_IDLE_MS);
      this.#wake = done;
      this.#o.deadline.addEventListener("abort", done, { once: true });
    });
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
    this.#wake?.();
    await this.#drainer;
  }

  /** What keeps delivery from being healthy right now; empty when all is well. */
  problems(): string[] {
    const out: string[] = [];
    const nats = this.#publisher.status();
    if (nats.closed) out.push(`NATS connection closed: ${nats.lastError ?? "gave up"}`);
    else if (!nats.connected) out.push(`NATS disconnected${nats.lastError ? `: ${nats.lastError}` : ""}`);
    for (const b of this.#o.breakers.all()) {
      if (b.state !== "closed") out.push(`circuit ${b.state.replace("_", "-")} for ${b.subject}: ${b.lastFailure ?? "publishes failing"}`);
    }
    const stats = this.#spool?.stats();
    if (stats && stats.depth > 0) {
      const age = stats.oldestAt === undefined ? 0 : Math.round((Date.now() - stats.oldestAt) / 1000);
      out.push(`${stats.depth} event(s) waiting in the spool, oldest ${age}s`);
    }
    return out;
  }

  spoolDepth(): number {
    return this.#spool?.depth ?? 0;
  }

  status(): DeliveryStatus {
    const stats = this.#spool?.stats();
    return {
      nats: this.#publisher.status(),
      circuits: this.#o.breakers.all().map((b) => b.snapshot()),
      spool: stats && {
        ...stats,
        path: this.#o.spoolPath,
        oldest_age_seconds: stats.oldestAt === undefined ? undefined : (Date.now() - stats.oldestAt) / 1000,
      },
    };
  }

  #warn(key: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#o.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}

function rowsExcept(rows: readonly SpooledEvent[], except: readonly QueuedEvent[]): SpooledEvent[] {
  const skip = new Set<QueuedEvent>(except);
  return rows.filter((r) => !skip.has(r));
}
