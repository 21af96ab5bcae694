// The delivery ledger: where every event went. Every count the agent keeps
// about events is written here, through one named method per kind of
// outcome, so that the accounting identity below holds by construction and
// can be checked at shutdown. There is one ledger per destination (issue
// 15): it keeps that destination's own totals, and adds the same counts to
// each collector's health record, which /status and metrics read (an event
// routed to two destinations counts there twice, once per destination).
import type { DiscardedReason, DropReason, RefusedReason } from "../event/drop-reasons.ts";
import type { HealthTracker } from "./health.ts";

export interface DeliveryTotals {
  accepted: number;
  published: number;
  discarded: number;
  spooled: number;
  lost: number;
  /** all drops: before acceptance and discards */
  dropped: number;
}

export class DeliveryLedger {
  /** failed publish attempts by reason (timeout, permission, stream_full, ...), counted in events */
  readonly publishErrors = new Map<string, number>();
  /** this destination's discards, by reason */
  readonly discardedByReason = new Map<DiscardedReason, number>();
  readonly #t: DeliveryTotals = { accepted: 0, published: 0, discarded: 0, spooled: 0, lost: 0, dropped: 0 };

  /** the collectors' records live in the health tracker, shared by every destination's ledger */
  constructor(readonly health: HealthTracker) {}

  /** Events taken into the queue. */
  accepted(collector: string, n = 1): void {
    this.health.collector(collector).accepted += n;
    this.#t.accepted += n;
  }

  /** Events refused before acceptance (invalid, queue full, emitted after stop, unrouted). */
  dropped(collector: string, reason: RefusedReason, n = 1): void {
    this.#countDrop(collector, reason, n);
  }

  /** Accepted events dropped later: NATS can never take them, or a full queue or spool made room. */
  discarded(collector: string, reason: DiscardedReason, n = 1): void {
    this.health.collector(collector).discarded += n;
    this.#t.discarded += n;
    this.discardedByReason.set(reason, (this.discardedByReason.get(reason) ?? 0) + n);
    this.#countDrop(collector, reason, n);
  }

  #countDrop(collector: string, reason: DropReason, n: number): void {
    const dropped = this.health.collector(collector).dropped;
    dropped.set(reason, (dropped.get(reason) ?? 0) + n);
    this.#t.dropped += n;
  }

  /** Accepted events the server confirmed. */
  published(collector: string, n = 1): void {
    this.health.collector(collector).published += n;
    this.#t.published += n;
  }

  /** Accepted events written to the spool (published later, or discarded). */
  spooled(collector: string, n = 1): void {
    this.health.collector(collector).spooled += n;
    this.#t.spooled += n;
  }

  /** Accepted events still in memory when the agent exits (no spool, or past the deadline). */
  lost(collector: string, n = 1): void {
    this.health.collector(collector).lost += n;
    this.#t.lost += n;
  }

  /** A publish attempt failed for `reason`, for `events` events (they are retried or spooled). */
  publishFailed(reason: string, events: number): void {
    this.publishErrors.set(reason, (this.publishErrors.get(reason) ?? 0) + events);
  }

  /** This destination's counts so far. */
  totals(): DeliveryTotals {
    return { ...this.#t };
  }

  /**
   * Every accepted event (plus those inherited from a previous run's spool)
   * is published, discarded with a reason, waiting in the spool, or lost:
   * accepted + inherited - published - discarded - inSpool - lost is 0.
   * Each term is counted on its own, so anything else is a bug.
   */
  unaccounted(inherited: number, inSpool: number): number {
    const t = this.#t;
    return t.accepted + inherited - t.published - t.discarded - inSpool - t.lost;
  }
}
