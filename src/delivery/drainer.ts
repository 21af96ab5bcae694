// The drainer replays the spool in order while NATS takes events, and
// removes each row only after the server confirmed it. One per agent; it
// runs until the shutdown deadline, whatever the spool throws (a full disk
// can fail even a delete): it backs off and tries again. Rows go to the
// subject their collector has under the nats.subject configured now (with
// the subject suffix the collector gave the event, if any), not the one they
// were spooled with: a changed prefix (or a collector since removed) strands
// nothing.
import type { Logger } from "pino";
import type { PublishOutcome } from "../publish/publisher.ts";
import type { Spool, SpooledEvent } from "../spool/spool.ts";
import type { QueuedEvent } from "../event/event.ts";
import { eventSubject, routesOfSubject } from "../orchestrator/instance.ts";
import { sleep, withTimeLimit } from "../wait.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import type { CircuitBreakers } from "./circuit.ts";
import type { DeliveryAccounting } from "./accounting.ts";
import type { PublisherSlot } from "./publisher-slot.ts";

/** Retry delays after a failed replay. */
const DRAIN_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
/**
 * How often a drainer with rows it cannot send now (NATS away, circuits
 * open) looks again when nothing wakes it. With an empty spool it sleeps
 * until something is spooled: an idle agent has no timer here.
 */
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
  /** a spool operation failed: "cannot <what>: <error>; <next>" */
  spoolFailed: (err: unknown, what: string, next: string) => void;
  /** a spool operation succeeded */
  spoolWorks: () => void;
}

export class SpoolDrainer {
  readonly #o: DrainerOptions;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: DrainerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#running ??= this.#keepDraining();
  }

  /** Whatever a replay throws, the spool is replayed again after a pause: no error ends the drainer. */
  async #keepDraining(): Promise<void> {
    const { deadline, log } = this.#o;
    for (let crashes = 0; !deadline.aborted; crashes++) {
      try {
        await this.#drain();
        return;
      } catch (err) {
        log.error({ err: (err as Error).message, stack: (err as Error).stack }, `spool replay failed unexpectedly (a bug): ${(err as Error).message}; restarting it`);
        await sleep(backoffDelay(crashes, DRAIN_BACKOFF), deadline);
      }
    }
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
    const { spool, slot, breakers, accounting, deadline, batch, spillAfterMs, log, spoolFailed, spoolWorks } = this.#o;
    let failures = 0;
    /** rows published (and counted) but not yet deleted: deleted before anything is read again, or they would go out twice */
    let done: SpooledEvent[] = [];
    const removeDone = (): boolean => {
      if (done.length === 0) return true;
      try {
        spool.remove(done);
      } catch (err) {
        spoolFailed(err, `remove ${done.length} published event(s)`, "replay paused until they are removed");
        return false;
      }
      spoolWorks();
      done = [];
      return true;
    };
    while (!deadline.aborted) {
      if (!removeDone()) {
        await sleep(backoffDelay(failures++, DRAIN_BACKOFF), deadline);
        continue;
      }
      await slot.open();
      const publisher = slot.current;
      const prefix = this.#o.subjectPrefix();
      let rows: SpooledEvent[] = [];
      try {
        rows = spool.depth > 0 && publisher.status().connected ? readdress(spool.peek(batch, blockedRoutes(breakers.blocked(), prefix)), prefix) : [];
      } catch (err) {
        spoolFailed(err, "read", "replay paused");
        await sleep(backoffDelay(failures++, DRAIN_BACKOFF), deadline);
        continue;
      }
      this.#discardDamaged();
      if (rows.length === 0) {
        await this.#idle(spool.depth > 0);
        continue;
      }
      accounting.replaying(rows);
      const outcome = await withTimeLimit(deadline, spillAfterMs, (signal) => slot.publish(publisher, rows, signal));
      const undelivered = outcome.undelivered as readonly SpooledEvent[];
      this.#o.settle(rows, outcome);
      accounting.replayed(undelivered);
      done = undelivered.length === 0 ? rows : rowsExcept(rows, undelivered);
      if (!removeDone()) {
        await sleep(backoffDelay(failures++, DRAIN_BACKOFF), deadline);
        continue;
      }
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
    if (!removeDone()) {
      log.warn({ events: done.length }, `${done.length} published event(s) stay in the spool: they go out again on the next start (JetStream drops repeats within its duplicate window)`);
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

  /**
   * Waits until something is spooled; with rows waiting (`retry`), at most a
   * short while (NATS may have come back, a circuit closed).
   */
  #idle(retry: boolean): Promise<void> {
    const { deadline } = this.#o;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        deadline.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = retry ? setTimeout(done, DRAIN_IDLE_MS) : undefined;
      this.#wake = done;
      deadline.addEventListener("abort", done, { once: true });
    });
  }
}

/**
 * The breakers are per subject, the spool skips per route (a collector, or a
 * collector and its subject suffix): the routes whose current subject is blocked.
 */
function blockedRoutes(blocked: ReadonlySet<string>, prefix: string): Set<string> {
  const routes = new Set<string>();
  for (const subject of blocked) for (const route of routesOfSubject(prefix, subject)) routes.add(route);
  return routes;
}

/** The rows with the subject of their collector (and suffix) under `prefix`; rows already there are kept as they are. */
function readdress(rows: SpooledEvent[], prefix: string): SpooledEvent[] {
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const subject = eventSubject(prefix, row.collector, row.subjectSuffix);
    if (row.subject !== subject) rows[i] = { ...row, subject };
  }
  return rows;
}

function rowsExcept(rows: readonly SpooledEvent[], except: readonly QueuedEvent[]): SpooledEvent[] {
  const skip = new Set<QueuedEvent>(except);
  return rows.filter((r) => !skip.has(r));
}
