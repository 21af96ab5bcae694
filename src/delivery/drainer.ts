// The drainer replays the spool in order while NATS takes events, and
// removes each row only after the server confirmed it. One per agent; it
// runs until the shutdown deadline. Rows go to the subject their collector
// has under the nats.subject configured now, not the one they were spooled
// with: a changed prefix (or a collector since removed) strands nothing.
import type { Logger } from "pino";
import type { PublishOutcome } from "../publish/publisher.ts";
import type { Spool, SpooledEvent } from "../spool/spool.ts";
import { collectorSubject, type QueuedEvent } from "../event/event.ts";
import { sleep } from "../wait.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import type { CircuitBreakers } from "./circuit.ts";
import type { DeliveryAccounting } from "./accounting.ts";
import type { PublisherSlot } from "./publisher-slot.ts";

/** Retry delays after a failed replay. */
const DRAIN_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
/** How often an idle drainer looks again when nothing wakes it. */
const DRAIN_IDLE_MS = 250;

export interface DrainerOptions {
  spool: Spool;
  slot: PublisherSlot;
  breakers: CircuitBreakers;
  accounting: DeliveryAccounting;
  /** counts a publish outcome (accounting, and whether the publisher gave up) */
  settle: (rows: readonly QueuedEvent[], outcome: PublishOutcome) => void;
  /** rows replayed at once (their acks in flight) */
  batch: number;
  /** nats.subject as configured now */
  subjectPrefix: () => string;
  spillAfterMs: number;
  /** the shutdown deadline: the drainer ends */
  deadline: AbortSignal;
  log: Logger;
  /** a rate-limited warning */
  warn: (key: string, fields: Record<string, unknown>, message: string) => void;
}

export class SpoolDrainer {
  readonly #o: DrainerOptions;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: DrainerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#running ??= this.#drain();
  }

  /** Something was spooled: look now rather than at the next idle check. */
  wake(): void {
    this.#wake?.();
  }

  /** Resolves when the drainer has ended; it ends once the deadline aborts. */
  async stopped(): Promise<void> {
    this.#wake?.();
    await this.#running;
  }

  async #drain(): Promise<void> {
    const { spool, slot, breakers, accounting, deadline, batch, spillAfterMs, log } = this.#o;
    let failures = 0;
    while (!deadline.aborted) {
      await slot.open();
      const publisher = slot.current;
      const prefix = this.#o.subjectPrefix();
      const rows = spool.depth > 0 && publisher.status().connected ? readdress(spool.peek(batch, blockedCollectors(breakers.blocked(), prefix)), prefix) : [];
      this.#discardDamaged();
      if (rows.length === 0) {
        await this.#idle();
        continue;
      }
      accounting.replaying(rows);
      const outcome = await slot.publish(publisher, rows, AbortSignal.any([deadline, AbortSignal.timeout(spillAfterMs)]));
      const undelivered = outcome.undelivered as readonly SpooledEvent[];
      this.#o.settle(rows, outcome);
      accounting.replayed(undelivered);
      spool.remove(undelivered.length === 0 ? rows : rowsExcept(rows, undelivered));
      if (outcome.rejected.length > 0) {
        this.#o.warn("drain:rejected", { events: outcome.rejected.length, reason: outcome.rejected[0]!.reason }, "spooled events NATS can never take were dropped");
      }
      if (undelivered.length === 0) {
        if (failures > 0) log.info({ spool_depth: spool.depth }, "NATS takes events again; replaying the spool");
        failures = 0;
        continue;
      }
      await sleep(backoffDelay(failures++, DRAIN_BACKOFF), deadline);
    }
  }

  /** Rows that failed their checksum are counted, logged and never published (the spool deleted them). */
  #discardDamaged(): void {
    const damaged = this.#o.spool.takeDamaged();
    if (damaged.length === 0) return;
    this.#o.accounting.discarded(damaged, "spool_corrupt");
    const first = damaged[0]!;
    this.#o.warn("drain:spool_corrupt", { reason: "spool_corrupt", events: damaged.length, seq: first.seq, collector: first.collector }, "damaged spool rows (checksum mismatch) discarded, not published");
  }

  /** Waits until something is spooled, or a short while (NATS may have come back). */
  #idle(): Promise<void> {
    const { deadline } = this.#o;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        deadline.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, DRAIN_IDLE_MS);
      this.#wake = done;
      deadline.addEventListener("abort", done, { once: true });
    });
  }
}

/** The breakers are per subject, the spool skips per collector: the collectors whose current subject is blocked. */
function blockedCollectors(blocked: ReadonlySet<string>, prefix: string): Set<string> {
  const collectors = new Set<string>();
  const head = collectorSubject(prefix, "");
  for (const subject of blocked) if (subject.startsWith(head)) collectors.add(subject.slice(head.length));
  return collectors;
}

/** The rows with the subject of their collector under `prefix`; rows already there are kept as they are. */
function readdress(rows: SpooledEvent[], prefix: string): SpooledEvent[] {
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const subject = collectorSubject(prefix, row.collector);
    if (row.subject !== subject) rows[i] = { ...row, subject };
  }
  return rows;
}

function rowsExcept(rows: readonly SpooledEvent[], except: readonly QueuedEvent[]): SpooledEvent[] {
  const skip = new Set<QueuedEvent>(except);
  return rows.filter((r) => !skip.has(r));
}
