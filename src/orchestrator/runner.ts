// Runs one collector: its intake into the queue (emit with backpressure) and
// its supervision (restart with exponential backoff on throw, reject or an
// unexpected end), isolated from every other collector.
import type { Logger } from "pino";
import type { EventInput, QueuedEvent } from "../event/event.ts";
import { EventEncoder, InvalidEventError } from "../event/encode.ts";
import type { Duration } from "../config/duration.ts";
import type { WhenFull } from "../config/schema.ts";
import type { Collector, CollectorContext, CollectorFactory, EmitAllResult, EmitOptions, Emission, EventFate } from "./collector.ts";
import type { CollectorHealth } from "./health.ts";
import type { DeliveryLedger } from "./ledger.ts";
import type { RefusedReason } from "../event/drop-reasons.ts";
import { QueueClosedError } from "./queue.ts";
import { DEFAULT_DESTINATION, type Destination } from "./destination.ts";
import type { CollectorRoutes, RouteDecision } from "../routing/routes.ts";
import type { CommitWaiters } from "./commit-waiters.ts";
import type { CollectorStates, StateHandle } from "./collector-state.ts";
import { LogThrottle } from "../log.ts";
import { sleep } from "../wait.ts";
import { backoffDelay } from "../backoff.ts";

/**
 * How many events a collector may have waiting for queue space before further
 * emits are dropped (and counted). A collector that awaits emit never gets
 * near it; one that ignores backpressure cannot grow memory without bound.
 */
export const OVERFLOW_ALLOWANCE = 1024;

export interface RunnerOptions {
  name: string;
  factory: CollectorFactory<unknown>;
  config: unknown;
  /** where its events go (routes: over the destinations); a reload may replace it */
  routes: CollectorRoutes<Destination>;
  /** the subject of its events at the default destination, for the encoder */
  subject: string;
  maxEventBytes: number;
  /** the size of the encoder's byte chunks (ByteArena) */
  arenaChunkBytes: number;
  health: CollectorHealth;
  /** bound to `{ collector: name }` already, so no call repeats it (a key twice in one line) */
  log: Logger;
  once: boolean;
  backoff: { initial: Duration; max: Duration };
  /** when the queue is full: wait (backpressure), or drop the new or the oldest event */
  whenFull: WhenFull;
  /** where events refused before any destination took them are counted (the default destination's ledger) */
  ledger: DeliveryLedger;
  /** the waits on events' fates (emitAll's `fates`, and disk mode's emits) */
  commits: CommitWaiters;
  /** disk mode: emit resolves once its event is committed to the spool */
  emitWaitsForCommit: boolean;
  /** where the collector's ctx.state is kept, and told which events settled */
  states: CollectorStates;
  /** a poll round is done: wall and CPU seconds (metrics) */
  onPollRound?: (collector: string, wallSeconds: number, cpuSeconds: number) => void;
  /** its quiet deadline moved earlier than the health monitor knows: an event ended a silence it warned about */
  quietChanged?: () => void;
}

export class CollectorRunner {
  readonly name: string;
  readonly #o: RunnerOptions;
  readonly #encoder: EventEncoder;
  readonly #health: CollectorHealth;
  readonly #log: Logger;
  readonly #dropLog = new LogThrottle();
  readonly #state: StateHandle;
  readonly #stopping = new AbortController();
  #run: AbortController | undefined;
  #routes: CollectorRoutes<Destination>;
  #pending = 0;
  #intakeOpen = true;
  #loop: Promise<void> | undefined;
  /** set when a --once round failed or did not finish */
  failedRound = false;
  #done = false;
  /** how long the collector may be silent before a warning; undefined: quiet by nature */
  readonly #quietMs: number | undefined;
  #startedAt = 0;
  #quietWarned = false;

  constructor(options: RunnerOptions) {
    this.#o = options;
    this.name = options.name;
    this.#health = options.health;
    this.#log = options.log;
    this.#encoder = new EventEncoder(options.name, options.subject, options.maxEventBytes, options.arenaChunkBytes);
    this.#quietMs = options.factory.quietPeriodMs?.(options.config);
    this.#state = options.states.for(options.name, options.log);
    this.#routes = options.routes;
  }

  /** Routes or destinations changed on reload: the next event goes by these. */
  set routes(routes: CollectorRoutes<Destination>) {
    this.#routes = routes;
  }

  /** Starts the supervision loop; `finished` resolves when it ends. */
  start(): void {
    this.#startedAt = Date.now();
    this.#loop ??= this.#supervise().finally(() => {
      this.#done = true;
    });
  }

  /** How long the collector may be silent (its declared quiet period, ms); undefined: quiet by nature. */
  get quietPeriodMs(): number | undefined {
    return this.#quietMs;
  }

  /** ms since epoch from which silence counts: its last event, or its start when it has emitted none since. */
  get silentSince(): number {
    return Math.max(this.#health.lastEventAt, this.#startedAt);
  }

  /**
   * When checkQuiet may warn next (ms since epoch), if nothing is emitted
   * before; undefined while it cannot (no quiet period, not running, or
   * warned about this silence already: an event ends that, and quietChanged says so).
   */
  quietDeadline(): number | undefined {
    if (this.#quietMs === undefined || this.#health.state !== "running" || this.#quietWarned) return undefined;
    return this.silentSince + this.#quietMs + 1;
  }

  /** An event was taken: silence, if any, is over. */
  #emitted(): void {
    this.#health.lastEventAt = Date.now();
    if (!this.#quietWarned) return;
    this.#quietWarned = false;
    this.#o.quietChanged?.();
  }

  /** Warns once when a running collector has been silent longer than its declared quiet period. */
  checkQuiet(now: number): void {
    if (this.#quietMs === undefined || this.#health.state !== "running") return;
    const silentMs = now - this.silentSince;
    if (silentMs <= this.#quietMs) {
      this.#quietWarned = false;
      return;
    }
    if (this.#quietWarned) return;
    this.#quietWarned = true;
    this.#log.warn(
      { silent_seconds: Math.round(silentMs / 1000), quiet_period_seconds: this.#quietMs / 1000 },
      `collector ${this.name} has emitted nothing for ${Math.round(silentMs / 1000)}s, longer than its quiet period of ${this.#quietMs / 1000}s`,
    );
  }

  /** nats.batch changed on reload: the encoder's next chunks get the new size. */
  set arenaChunkBytes(bytes: number) {
    this.#encoder.arenaChunkBytes = bytes;
  }

  /** Resolves when the collector has stopped for good (or its --once round is done). */
  get finished(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  readonly #emit = (input: EventInput, options?: EmitOptions): void | Promise<void> => {
    if (!this.#intakeOpen) {
      this.#dropped(this.#o.ledger, "stopped", `collector ${this.name} emitted after it was stopped`);
      return;
    }
    // Routed before it is encoded: an event that goes nowhere costs no bytes.
    const decision = this.#routes.decide(input?.type, input?.severity);
    if (decision.kind !== "to") return this.#unrouted(decision, input?.type);
    let event;
    try {
      event = this.#encoder.encode(input, options?.subjectSuffix);
    } catch (err) {
      if (!(err instanceof InvalidEventError)) throw err;
      this.#dropped(this.#o.ledger, err.reason, err.message);
      return;
    }
    this.#emitted();
    const to = decision.to;
    if (to.length === 1) return this.#admit(to[0]!, this.#addressed(to[0]!, event), event);
    // One encoding, one copy per destination (its own subject, the same bytes):
    // the bytes are shared, so none may be taken back once any copy is queued.
    let waits: Promise<void>[] | undefined;
    for (const d of to) {
      const wait = this.#admit(d, this.#addressed(d, event), undefined);
      if (wait) (waits ??= []).push(wait);
    }
    if (!waits) return;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(nothing);
  };

  /** The event as `d` takes it: the encoder addressed it to default; another destination gets a copy under its subject. */
  #addressed(d: Destination, event: QueuedEvent): QueuedEvent {
    return d.name === DEFAULT_DESTINATION ? event : { ...event, subject: d.subjectOf(this.name, event.subjectSuffix) };
  }

  /** Counts an event no route sends anywhere (a drop rule, or no rule matched). */
  #unrouted(decision: RouteDecision<Destination>, type: unknown): void {
    if (decision.kind === "drop") this.#dropped(this.#o.ledger, "route_drop", `events of ${this.name} dropped by route "${decision.rule}" (drop: true), e.g. ${String(type)}`);
    else this.#dropped(this.#o.ledger, "unrouted", `events of ${this.name} match no rule of routes and go nowhere, e.g. ${String(type)}`);
  }

  /**
   * Puts one event into destination `d`'s queue, with backpressure per
   * buffer.when_full. `own`: the encoded event whose bytes may be taken back
   * if it is refused (only when no other destination holds them).
   */
  #admit(d: Destination, event: QueuedEvent, own: QueuedEvent | undefined): void | Promise<void> {
    const queue = d.queue;
    try {
      if (this.#pending === 0 && queue.tryPush(event)) {
        d.ledger.accepted(this.name);
        this.#state.emitted(event.id);
        return this.#o.emitWaitsForCommit ? this.#o.commits.wait(event.id) : undefined;
      }
    } catch (err) {
      if (!(err instanceof QueueClosedError)) throw err;
      this.#dropped(d.ledger, "stopped", `collector ${this.name} emitted after the queue closed`, own);
      return;
    }
    if (this.#o.whenFull !== "block") return this.#dropForRoom(d, event, own);
    if (this.#pending >= OVERFLOW_ALLOWANCE) {
      this.#dropped(d.ledger, "queue_full", `collector ${this.name} ignores backpressure: queue full and ${OVERFLOW_ALLOWANCE} events already waiting`, own);
      return;
    }
    let admitted: Promise<void>;
    try {
      admitted = queue.push(event);
    } catch (err) {
      if (!(err instanceof QueueClosedError)) throw err;
      this.#dropped(d.ledger, "stopped", `collector ${this.name} emitted after the queue closed`, own);
      return;
    }
    d.ledger.accepted(this.name);
    this.#state.emitted(event.id);
    this.#pending++;
    const queued = admitted.then(this.#admitted);
    if (!this.#o.emitWaitsForCommit) return queued;
    const committed = this.#o.commits.wait(event.id);
    return queued.then(() => committed);
  }

  readonly #emitAll = (batch: readonly Emission[], options?: { fates?: boolean }): EmitAllResult => {
    if (!this.#intakeOpen) return { status: "stopped" };
    // Routed and encoded first; then taken whole into every queue involved, or not at all.
    const groups = new Map<Destination, QueuedEvent[]>();
    const encoded: QueuedEvent[] = [];
    /** per emission: its copies, for its fate */
    const copies: Array<QueuedEvent[] | "unrouted" | "route_drop"> = [];
    /** counted once the batch is taken: a refused batch is sent again */
    let unrouted: Array<[RouteDecision<Destination>, unknown]> | undefined;
    for (let i = 0; i < batch.length; i++) {
      const { event: input, subjectSuffix } = batch[i]!;
      const decision = this.#routes.decide(input?.type, input?.severity);
      if (decision.kind !== "to") {
        (unrouted ??= []).push([decision, input?.type]);
        copies.push(decision.kind === "drop" ? "route_drop" : "unrouted");
        continue;
      }
      let event: QueuedEvent;
      try {
        event = this.#encoder.encode(input, subjectSuffix);
      } catch (err) {
        if (!(err instanceof InvalidEventError)) throw err;
        this.#discardAll(encoded);
        return { status: "invalid", index: i, message: err.message };
      }
      encoded.push(event);
      const mine: QueuedEvent[] = [];
      for (const d of decision.to) {
        const copy = this.#addressed(d, event);
        mine.push(copy);
        let group = groups.get(d);
        if (!group) groups.set(d, (group = []));
        group.push(copy);
      }
      copies.push(mine);
    }
    for (const [d, events] of groups) {
      if (d.queue.closed) {
        this.#discardAll(encoded);
        return { status: "stopped" };
      }
      if (events.length > d.queue.maxEvents) {
        this.#discardAll(encoded);
        return { status: "full", never: true };
      }
    }
    if (!this.#makeRoom(groups)) {
      this.#discardAll(encoded);
      return { status: "full", never: false };
    }
    for (const [d, events] of groups) {
      d.queue.tryPushAll(events);
      d.ledger.accepted(this.name, events.length);
      for (const event of events) this.#state.emitted(event.id);
    }
    for (const [decision, type] of unrouted ?? []) this.#unrouted(decision, type);
    if (encoded.length > 0) this.#emitted();
    // Registered before any worker can take them: workers run after this returns. A batch
    // that routes send nowhere has fates too ("unrouted", "route_drop"): none was published.
    const fates = options?.fates ? Promise.all(copies.map((mine) => this.#fateOf(mine))) : undefined;
    return { status: "queued", fates };
  };

  /** An emission's fate: durable once every copy is; else the first reason a copy was dropped, or why it was not routed. */
  #fateOf(copies: readonly QueuedEvent[] | "unrouted" | "route_drop"): Promise<EventFate> {
    if (typeof copies === "string") return Promise.resolve(copies);
    if (copies.length === 1) return this.#o.commits.fate(copies[0]!.id);
    return Promise.all(copies.map((c) => this.#o.commits.fate(c.id))).then((fates) => fates.find((f) => f !== undefined));
  }

  /** Whether every group fits its queue now; drop_oldest makes room by evicting the oldest events, as for one. */
  #makeRoom(groups: ReadonlyMap<Destination, readonly QueuedEvent[]>): boolean {
    if (this.#pending > 0) return false;
    for (const [d, events] of groups) {
      while (!d.queue.fitsAll(events)) {
        if (this.#o.whenFull !== "drop_oldest") return false;
        const evicted = d.queue.evictOldest();
        if (!evicted) return false;
        d.ledger.discarded(evicted.collector, "queue_full_oldest");
        this.#o.commits.drop([evicted], "queue_full_oldest");
        this.#o.states.settled([evicted]);
      }
    }
    return true;
  }

  /** Takes back encoded events never queued, newest first, so their bytes hold no memory. */
  #discardAll(events: readonly QueuedEvent[]): void {
    for (let i = events.length - 1; i >= 0; i--) this.#encoder.discard(events[i]!);
  }

  /** The queue of `d` is full and the policy says drop rather than wait. */
  #dropForRoom(d: Destination, event: QueuedEvent, own: QueuedEvent | undefined): void | Promise<void> {
    const queue = d.queue;
    if (this.#o.whenFull === "drop_newest") {
      this.#dropped(d.ledger, "queue_full", `queue full: dropping new events of ${this.name} (buffer.when_full: drop_newest)`, own);
      return;
    }
    while (!queue.tryPush(event)) {
      const evicted = queue.evictOldest();
      if (!evicted) {
        this.#dropped(d.ledger, "queue_full", `queue full: dropping new events of ${this.name}`, own);
        return;
      }
      d.ledger.discarded(evicted.collector, "queue_full_oldest");
      this.#o.commits.drop([evicted], "queue_full_oldest");
      this.#o.states.settled([evicted]);
    }
    d.ledger.accepted(this.name);
    this.#state.emitted(event.id);
    const suppressed = this.#dropLog.take("queue_full_oldest");
    if (suppressed !== undefined) {
      this.#log.warn(suppressed > 0 ? { suppressed } : {}, "queue full: dropping the oldest events (buffer.when_full: drop_oldest)");
    }
    return this.#o.emitWaitsForCommit ? this.#o.commits.wait(event.id) : undefined;
  }

  readonly #admitted = (): void => {
    this.#pending--;
  };

  /** Counts and logs a drop in `ledger`; an event already encoded is taken back from the encoder's chunk. */
  #dropped(ledger: DeliveryLedger, reason: RefusedReason, message: string, encoded?: QueuedEvent): void {
    if (encoded) this.#encoder.discard(encoded);
    ledger.dropped(this.name, reason);
    const suppressed = this.#dropLog.take(reason);
    if (suppressed === undefined) return;
    this.#log.warn({ reason, dropped_total: this.#health.droppedTotal, ...(suppressed > 0 ? { suppressed } : {}) }, message);
  }

  #context(signal: AbortSignal): CollectorContext {
    const h = this.#health;
    return {
      name: this.name,
      signal,
      once: this.#o.once,
      log: this.#log,
      emit: this.#emit,
      state: this.#state.state,
      emitAll: this.#emitAll,
      degraded: (reason: string) => {
        if (h.state !== "degraded") this.#log.warn({ reason }, `collector ${this.name} degraded: ${reason}`);
        h.state = "degraded";
        h.error(reason);
      },
      parseError: (source: string, detail: string) => {
        h.parseErrors.set(source, (h.parseErrors.get(source) ?? 0) + 1);
        const suppressed = this.#dropLog.take(`parse:${source}`);
        if (suppressed === undefined) return;
        this.#log.warn({ source, detail, ...(suppressed > 0 ? { suppressed } : {}) }, `collector ${this.name} could not parse ${source}: ${detail}`);
      },
      healthy: () => {
        if (h.state === "degraded") {
          h.state = "running";
          this.#log.info(`collector ${this.name} recovered`);
        }
      },
      pollRound: (wallSeconds: number, cpuSeconds: number) => this.#o.onPollRound?.(this.name, wallSeconds, cpuSeconds),
      sourceMode: (source, mode, reason) => {
        const was = h.sources.get(source);
        if (was?.mode === mode && was.reason === reason) return;
        h.sources.set(source, reason === undefined ? { mode } : { mode, reason });
        this.#log.info({ source, mode, ...(reason !== undefined && { reason }) }, `collector ${this.name} reads ${source} by ${mode === "event" ? "events" : "polling"}${reason ? `: ${reason}` : ""}`);
      },
    };
  }

  async #supervise(): Promise<void> {
    const h = this.#health;
    h.owner = this;
    const { initial, max } = this.#o.backoff;
    let failures = 0;
    while (!this.#stopping.signal.aborted) {
      const run = new AbortController();
      this.#run = run;
      const startedAt = Date.now();
      let failure: string | undefined;
      try {
        const collector: Collector = this.#o.factory.create(this.#o.config);
        if (h.state !== "degraded") h.state = "running";
        await collector.run(this.#context(run.signal));
        if (!this.#o.once && !this.#stopping.signal.aborted) failure = "run() ended while the agent was running";
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
      }
      run.abort();
      if (this.#stopping.signal.aborted) break;
      if (failure === undefined) break; // --once round done
      h.error(failure);
      if (this.#o.once) {
        this.failedRound = true;
        h.state = "failed";
        this.#log.error({ err: failure }, `collector ${this.name} failed its --once round: ${failure}`);
        return;
      }
      // A run that lasted longer than the longest backoff was healthy: start over.
      failures = Date.now() - startedAt > max.ms ? 1 : failures + 1;
      const delay = backoffDelay(failures - 1, { initialMs: initial.ms, maxMs: max.ms });
      h.restarts++;
      h.state = "failed";
      this.#log.error(
        { err: failure, restarts: h.restarts, retry_in_ms: Math.round(delay) },
        `collector ${this.name} failed: ${failure}; restarting in ${Math.round(delay)}ms`,
      );
      await sleep(delay, this.#stopping.signal);
    }
    // A collector re-added under the same name shares this record: leave its state alone.
    if (!this.failedRound && h.owner === this) h.state = "stopped";
  }

  /**
   * Stops the collector and waits up to `timeoutMs` for it to return. A
   * collector that ignores its abort signal is abandoned (and logged), so one
   * hung collector cannot hold up shutdown or the others.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#o.once && this.#loop && !this.#done && !this.failedRound) {
      this.failedRound = true;
      this.#health.state = "failed";
      this.#health.error("stopped before its --once round finished");
      this.#log.error(`collector ${this.name} did not finish its --once round`);
    }
    this.#stopping.abort();
    this.#run?.abort();
    const loop = this.#loop;
    timeoutMs = Math.max(timeoutMs, this.#o.factory.stopTimeoutMs?.(this.#o.config) ?? 0);
    if (loop) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        loop.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.#log.error(`collector ${this.name} did not stop within ${timeoutMs}ms; abandoning it`);
        if (!this.failedRound && this.#health.owner === this) this.#health.state = "stopped";
      }
    }
    this.#intakeOpen = false;
  }
}

function nothing(): void {}
