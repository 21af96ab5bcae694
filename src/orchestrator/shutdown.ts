// Shutdown accounting: once collectors, workers and drainer have stopped,
// every event is counted as published, discarded, in the spool or lost; the
// totals are logged and returned, and a sum that does not add up is logged
// as the bug it is.
import type { Logger } from "pino";
import type { DiscardedReason } from "../event/drop-reasons.ts";
import type { DeliveryLedger, DeliveryTotals } from "./ledger.ts";
import type { EventQueue } from "./queue.ts";
import type { CommitWaiters } from "./commit-waiters.ts";
import type { DestinationBooks } from "./destination.ts";

export interface ShutdownReport extends DeliveryTotals {
  /** events found in the spool at start (a previous run's) */
  inherited: number;
  /** events waiting in the spool at exit: sent on the next start */
  inSpool: number;
  /** accepted + inherited - published - discarded - inSpool - lost: anything but 0 is a bug (and is logged as one) */
  unaccounted: number;
  /** collectors whose --once round failed */
  failedCollectors: string[];
  /** `discarded` by reason, only the reasons that occurred */
  discardedByReason: Partial<Record<DiscardedReason, number>>;
  /** each destination's own books (default: the nats section) */
  destinations: Record<string, DestinationBooks & { unaccounted: number }>;
}

/** Workers gave up (no spool, publisher gone): what is still queued is lost, and counted; whoever waits on it learns so. */
export async function countLeftInQueue(queue: EventQueue, ledger: DeliveryLedger, commits: CommitWaiters): Promise<void> {
  for (let rest = queue.length; rest > 0; rest = queue.length) {
    const left = await queue.take(rest);
    for (const e of left) ledger.lost(e.collector);
    commits.drop(left, "lost");
  }
}

/** One destination's part of the final accounts. */
export interface DestinationClosing {
  name: string;
  ledger: DeliveryLedger;
  /** its counts at the end, with what its spool holds */
  books: DestinationBooks;
  /** for the message about events left in its spool */
  spoolPath: string;
}

export interface ClosingBooks {
  /** every destination, those a reload removed included: default first */
  destinations: readonly DestinationClosing[];
  failedCollectors: string[];
  log: Logger;
}

/**
 * The shutdown report, logged: info when every event was published, a
 * warning when some were discarded, wait in a spool or were lost. Each
 * destination's books must balance on their own; the report is their sum
 * (an event routed to two destinations counts in each).
 */
export function closeBooks({ destinations, failedCollectors, log }: ClosingBooks): ShutdownReport {
  const totals: DeliveryTotals = { accepted: 0, published: 0, discarded: 0, spooled: 0, lost: 0, dropped: 0 };
  let inherited = 0;
  let inSpool = 0;
  let unaccounted = 0;
  const discardedByReason: Partial<Record<DiscardedReason, number>> = {};
  const publishErrors: Record<string, number> = {};
  const perDestination: Record<string, DestinationBooks & { unaccounted: number }> = {};
  for (const { name, ledger, books } of destinations) {
    const t = ledger.totals();
    for (const key of Object.keys(totals) as Array<keyof DeliveryTotals>) totals[key] += t[key];
    inherited += books.inherited;
    inSpool += books.in_spool;
    const off = ledger.unaccounted(books.inherited, books.in_spool);
    unaccounted += off;
    for (const [reason, n] of ledger.discardedByReason) discardedByReason[reason] = (discardedByReason[reason] ?? 0) + n;
    for (const [reason, n] of ledger.publishErrors) publishErrors[reason] = (publishErrors[reason] ?? 0) + n;
    // The same destination removed and added again: its books add up.
    const before = perDestination[name];
    perDestination[name] = before
      ? { accepted: before.accepted + books.accepted, inherited: before.inherited + books.inherited, published: before.published + books.published, discarded: before.discarded + books.discarded, in_spool: before.in_spool + books.in_spool, lost: before.lost + books.lost, unaccounted: before.unaccounted + off }
      : { ...books, unaccounted: off };
    if (off !== 0) log.error({ destination: name, unaccounted: off }, `delivery accounting of destination ${name} does not add up: ${off} event(s) unaccounted for (a bug)`);
  }
  const { lost } = totals;
  const fields = {
    accepted: totals.accepted,
    inherited,
    published: totals.published,
    discarded: totals.discarded,
    discarded_by_reason: discardedByReason,
    dropped: totals.dropped,
    in_spool: inSpool,
    lost,
    unaccounted,
    publish_errors: publishErrors,
    failed_collectors: failedCollectors,
    destinations: perDestination,
  };
  // Discarded events are never sent: named in the line, whatever else it says.
  const discarded = totals.discarded > 0 ? `, ${totals.discarded} discarded (${countsText(discardedByReason)})` : "";
  if (inSpool === 0 && lost === 0) {
    const line = `shutdown complete: ${totals.published} event(s) published${discarded}, none left`;
    if (totals.discarded > 0) log.warn(fields, line);
    else log.info(fields, line);
  } else {
    const spooled = destinations.filter((d) => d.books.in_spool > 0).map((d) => `${d.books.in_spool} left in the spool at ${d.spoolPath}`);
    const where = [spooled.length > 0 ? `${spooled.join(", ")} (sent on the next start)` : "", lost > 0 ? `${lost} lost` : ""].filter(Boolean).join(", ");
    log.warn(fields, `shutdown deadline passed: ${totals.published} event(s) published${discarded}, ${where}`);
  }
  return { ...totals, inherited, inSpool, unaccounted, failedCollectors, discardedByReason, destinations: perDestination };
}

/** "max_payload 3, spool_full 1" */
export function countsText(counts: Partial<Record<string, number>>): string {
  return Object.entries(counts).map(([reason, n]) => `${reason} ${n}`).join(", ");
}
