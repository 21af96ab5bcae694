// Shutdown accounting: once collectors, workers and drainer have stopped,
// every event is counted as published, discarded, in the spool or lost; the
// totals are logged and returned, and a sum that does not add up is logged
// as the bug it is.
import type { Logger } from "pino";
import { DISCARDED, type DiscardedReason } from "../event/drop-reasons.ts";
import type { DeliveryLedger, DeliveryTotals } from "./ledger.ts";
import type { EventQueue } from "./queue.ts";
import type { CommitWaiters } from "./commit-waiters.ts";

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
}

/** Workers gave up (no spool, publisher gone): what is still queued is lost, and counted; whoever waits on it learns so. */
export async function countLeftInQueue(queue: EventQueue, ledger: DeliveryLedger, commits: CommitWaiters): Promise<void> {
  for (let rest = queue.length; rest > 0; rest = queue.length) {
    const left = await queue.take(rest);
    for (const e of left) ledger.lost(e.collector);
    commits.drop(left, "lost");
  }
}

export interface ClosingBooks {
  ledger: DeliveryLedger;
  inherited: number;
  inSpool: number;
  failedCollectors: string[];
  /** for the message about events left in the spool */
  spoolPath: string;
  log: Logger;
}

/** The shutdown report, logged: info when every event was published, a warning when some were discarded, wait in the spool or were lost. */
export function closeBooks({ ledger, inherited, inSpool, failedCollectors, spoolPath, log }: ClosingBooks): ShutdownReport {
  const totals = ledger.totals();
  const { lost } = totals;
  const unaccounted = ledger.unaccounted(inherited, inSpool);
  const discardedByReason = sumDiscarded(ledger);
  if (unaccounted !== 0) log.error({ unaccounted }, `delivery accounting does not add up: ${unaccounted} event(s) unaccounted for (a bug)`);
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
    publish_errors: Object.fromEntries(ledger.publishErrors),
    failed_collectors: failedCollectors,
  };
  // Discarded events are never sent: named in the line, whatever else it says.
  const discarded = totals.discarded > 0 ? `, ${totals.discarded} discarded (${countsText(discardedByReason)})` : "";
  if (inSpool === 0 && lost === 0) {
    const line = `shutdown complete: ${totals.published} event(s) published${discarded}, none left`;
    if (totals.discarded > 0) log.warn(fields, line);
    else log.info(fields, line);
  } else {
    const where = [inSpool > 0 ? `${inSpool} left in the spool at ${spoolPath} (sent on the next start)` : "", lost > 0 ? `${lost} lost` : ""].filter(Boolean).join(", ");
    log.warn(fields, `shutdown deadline passed: ${totals.published} event(s) published${discarded}, ${where}`);
  }
  return { ...totals, inherited, inSpool, unaccounted, failedCollectors, discardedByReason };
}

function sumDiscarded(ledger: DeliveryLedger): Partial<Record<DiscardedReason, number>> {
  const by: Partial<Record<DiscardedReason, number>> = {};
  for (const health of ledger.health.all()) {
    for (const [reason, n] of health.dropped) {
      if (Object.hasOwn(DISCARDED, reason)) by[reason as DiscardedReason] = (by[reason as DiscardedReason] ?? 0) + n;
    }
  }
  return by;
}

/** "max_payload 3, spool_full 1" */
export function countsText(counts: Partial<Record<string, number>>): string {
  return Object.entries(counts).map(([reason, n]) => `${reason} ${n}`).join(", ");
}
