// Turns what happened to events in delivery into the ledger's counts and the
// circuit breakers' verdicts: published, rejected (discarded with a reason),
// spooled, or dropped by a full spool, including the rows drop_oldest
// deletes while the drainer is publishing them.
import type { QueuedEvent } from "../event/event.ts";
import type { PublishOutcome } from "../publish/publisher.ts";
import type { DiscardedReason } from "../event/drop-reasons.ts";
import type { DeliveryLedger } from "../orchestrator/ledger.ts";
import type { SpoolDrop, SpooledEvent } from "../spool/spool.ts";
import type { CircuitBreakers } from "./circuit.ts";

export class DeliveryAccounting {
  readonly #ledger: DeliveryLedger;
  readonly #breakers: CircuitBreakers;
  /** why undelivered events failed when the publisher says nothing */
  readonly #timeoutReason: string;
  /** seqs of the rows the drainer is publishing now */
  readonly #inFlight = new Set<number>();
  /** of those, the ones drop_oldest deleted meanwhile */
  readonly #evictedInFlight = new Set<number>();
  /**
   * Told of events that are safe (acknowledged, spooled) or gone for good by
   * policy (refused by NATS for good, dropped by spool.when_full); never of
   * events discarded at the shutdown deadline or lost.
   */
  readonly #settled: (events: readonly QueuedEvent[]) => void;

  constructor(ledger: DeliveryLedger, breakers: CircuitBreakers, spillAfterMs: number, settled: (events: readonly QueuedEvent[]) => void = () => {}) {
    this.#ledger = ledger;
    this.#breakers = breakers;
    this.#timeoutReason = `not confirmed within spool.spill_after (${spillAfterMs}ms)`;
    this.#settled = settled;
  }

  /**
   * Counts what the publisher confirmed and what it rejected, and tells the
   * circuit breakers: a subject with undelivered events failed, the others
   * succeeded.
   */
  settle(batch: readonly QueuedEvent[], { undelivered, rejected, failure }: PublishOutcome): void {
    if (batch.length === 0) return;
    const breakers = this.#breakers;
    if (undelivered.length === 0 && rejected.length === 0) {
      // Batches come in runs from one collector and one subject: count per run.
      let subject = "";
      let run = 0;
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!;
        run++;
        if (i + 1 === batch.length || batch[i + 1]!.collector !== e.collector) {
          this.#ledger.published(e.collector, run);
          run = 0;
        }
        if (e.subject !== subject) {
          subject = e.subject;
          breakers.for(subject).success();
        }
      }
      this.#settled(batch);
      return;
    }
    const notPublished = new Set<QueuedEvent>(undelivered);
    for (const { event, reason } of rejected) {
      notPublished.add(event);
      this.#ledger.discarded(event.collector, reason);
    }
    const failed = new Set(undelivered.map((e) => e.subject));
    for (const subject of failed) breakers.for(subject).failure(failure ?? this.#timeoutReason);
    for (const e of batch) {
      if (notPublished.has(e)) continue;
      this.#ledger.published(e.collector);
      if (!failed.has(e.subject)) breakers.for(e.subject).success();
    }
    if (undelivered.length < batch.length) {
      const retried = new Set<QueuedEvent>(undelivered);
      this.#settled(batch.filter((e) => !retried.has(e)));
    }
  }

  /** Events the spool took; `gone`: those of them a full spool dropped instead (already counted). */
  spooled(events: readonly QueuedEvent[], gone: ReadonlySet<QueuedEvent> | undefined): void {
    for (const e of events) if (!gone?.has(e)) this.#ledger.spooled(e.collector);
    this.#settled(events);
  }

  /** Events discarded for `reason` (e.g. the spool full at shutdown). */
  discarded(events: readonly QueuedEvent[], reason: DiscardedReason): void {
    for (const e of events) this.#ledger.discarded(e.collector, reason);
  }

  /** Events lost: no spool, and the publisher gave up. */
  lost(events: readonly QueuedEvent[]): void {
    for (const e of events) this.#ledger.lost(e.collector);
  }

  /**
   * Counts the spool's drops. A row that drop_oldest deleted while the drainer
   * is publishing it is settled by the drainer instead: published if the
   * server takes it, discarded if not.
   */
  spoolDropped(dropped: readonly SpoolDrop[]): Set<QueuedEvent> {
    const gone = new Set<QueuedEvent>();
    for (const d of dropped) {
      gone.add(d.event);
      const seq = (d.event as Partial<SpooledEvent>).seq;
      if (seq !== undefined && this.#inFlight.has(seq)) this.#evictedInFlight.add(seq);
      else this.#ledger.discarded(d.event.collector, d.reason);
    }
    return gone;
  }

  /** The drainer publishes these spool rows now. */
  replaying(rows: readonly SpooledEvent[]): void {
    for (const r of rows) this.#inFlight.add(r.seq);
  }

  /** The drainer's rows came back: those drop_oldest deleted meanwhile and the server did not take are discarded. */
  replayed(undelivered: readonly SpooledEvent[]): void {
    this.#inFlight.clear();
    if (this.#evictedInFlight.size === 0) return;
    for (const e of undelivered) {
      if (this.#evictedInFlight.has(e.seq)) this.#ledger.discarded(e.collector, "spool_full_oldest");
    }
    this.#evictedInFlight.clear();
  }
}
