// Watches the agent's health while it runs: logs each change of health as it
// happens, warns about collectors silent past their quiet period, and logs a
// periodic summary with rates.
import type { Logger } from "pino";
import type { HealthTracker } from "./health.ts";
import { DEFAULT_DESTINATION, type Destination } from "./destination.ts";
import type { CollectorRunner } from "./runner.ts";

/**
 * While the agent is degraded its health is sampled this often (spool depth,
 * a half-open circuit's probe, a settling spool fault change with time
 * alone), as is the health of a publisher that cannot report its changes.
 * Also the wait after start before the first look: NATS is still connecting.
 */
export const HEALTH_CHECK_MS = 1000;

export interface AgentHealth {
  state: "healthy" | "degraded";
  problems: string[];
}

export interface HealthMonitorOptions {
  health: HealthTracker;
  /** every destination, default first */
  destinations: () => Iterable<Destination>;
  log: Logger;
  /** the collectors running now */
  runners: () => Iterable<QuietWatch>;
  /** orchestrator.health_interval (a reload may change it); 0: no summary */
  summaryEveryMs: () => number;
}

/** What the monitor needs of a collector's runner: its quiet-period check, and when that may warn next. */
export type QuietWatch = Pick<CollectorRunner, "checkQuiet" | "quietDeadline">;

/**
 * Wakes only when there is something to do: when told that something
 * agentHealth() reads changed (changed()), at the next summary, when a
 * collector's quiet period may run out, and each HEALTH_CHECK_MS while
 * degraded. A healthy agent with no summary and no quiet period to watch
 * arms no timer at all.
 */
export class HealthMonitor {
  readonly #o: HealthMonitorOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** when #timer fires (ms since epoch); undefined: none armed */
  #wakeAt: number | undefined;
  #started = false;
  #stopped = false;
  /** the first look (HEALTH_CHECK_MS after start) is done: from then on changes are looked at as they come */
  #looked = false;
  /** the kinds of problems last logged */
  #lastProblems = "";
  #lastSummaryAt = Date.now();
  #lastPublished = new Map<string, number>();

  constructor(options: HealthMonitorOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#arm(Date.now() + HEALTH_CHECK_MS);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeAt = undefined;
  }

  /** When the monitor wakes next (ms since epoch); undefined: no timer armed. */
  get nextWakeAt(): number | undefined {
    return this.#wakeAt;
  }

  /**
   * Something agentHealth() reads may have changed, or a deadline moved (a
   * collector started or emitted again after a quiet warning, the summary
   * interval changed): looks again at once ("now", on a 0 ms timer, so that
   * a burst of changes is one look), or within HEALTH_CHECK_MS ("soon": for
   * a state that counts only if it lasts, as events in the spool). While
   * degraded, health is sampled each HEALTH_CHECK_MS anyway: as before, a
   * change then waits for that.
   */
  changed(when: "now" | "soon" = "now"): void {
    if (!this.#looked || this.#stopped || this.#lastProblems !== "") return;
    this.#arm(Date.now() + (when === "now" ? 0 : HEALTH_CHECK_MS));
  }

  /** Arms the timer for `at`, unless it is armed for then or earlier already. */
  #arm(at: number): void {
    if (this.#wakeAt !== undefined && this.#wakeAt <= at) return;
    clearTimeout(this.#timer);
    this.#wakeAt = at;
    this.#timer = setTimeout(this.#wake, Math.max(0, at - Date.now()));
    this.#timer.unref?.();
  }

  readonly #wake = (): void => {
    this.#timer = undefined;
    this.#wakeAt = undefined;
    if (this.#stopped) return;
    this.#looked = true;
    const next = this.#check(Date.now());
    if (next !== undefined) this.#arm(next);
  };

  /** The agent as a whole: degraded while delivery has problems or a collector is not running. */
  agentHealth(): AgentHealth {
    const problems: string[] = [];
    for (const d of this.#o.destinations()) {
      for (const p of d.delivery.problems()) problems.push(d.name === DEFAULT_DESTINATION ? p : `destination ${d.name}: ${p}`);
    }
    for (const h of this.#o.health.all()) {
      if (h.state === "degraded" || h.state === "failed") problems.push(`collector ${h.name} ${h.state}: ${h.lastError ?? ""}`);
    }
    return { state: problems.length === 0 ? "healthy" : "degraded", problems };
  }

  /** Does what is due at `now`; returns when to look next (undefined: only when told of a change). */
  #check(now: number): number | undefined {
    let next = Infinity;
    for (const r of this.#o.runners()) {
      r.checkQuiet(now);
      next = Math.min(next, r.quietDeadline() ?? Infinity);
    }
    const every = this.#o.summaryEveryMs();
    if (every > 0) {
      if (now - this.#lastSummaryAt >= every) this.#logSummary(now);
      next = Math.min(next, this.#lastSummaryAt + every);
    }
    this.#logChange();
    if (this.#lastProblems !== "" || !this.#allReportChanges()) next = Math.min(next, now + HEALTH_CHECK_MS);
    // (a deadline is never now or past: what was due has just been done)
    return next === Infinity ? undefined : Math.max(next, now + 1);
  }

  /** Logs a change of the kinds of problems since the last line. */
  #logChange(): void {
    const { state, problems } = this.agentHealth();
    // Spool depth changes every second while draining; compare the kinds of problems only.
    const key = problems.map((p) => p.replace(/\d+/g, "#")).join("|");
    if (key === this.#lastProblems) return;
    this.#lastProblems = key;
    if (state === "healthy") this.#o.log.info("agent healthy");
    else this.#o.log.warn({ problems }, `agent degraded: ${problems.join("; ")}`);
  }

  /** Whether every destination's publisher reports its changes (onStatusChange); one that does not is polled. */
  #allReportChanges(): boolean {
    for (const d of this.#o.destinations()) if (typeof d.delivery.publisher.onStatusChange !== "function") return false;
    return true;
  }

  /** The periodic health line, as the Go original logged every 30 s, with rates since the last one. */
  #logSummary(now: number): void {
    const { health, log } = this.#o;
    const seconds = (now - this.#lastSummaryAt) / 1000;
    this.#lastSummaryAt = now;
    const collectors: Record<string, unknown> = {};
    for (const h of health.all()) {
      const before = this.#lastPublished.get(h.name) ?? 0;
      this.#lastPublished.set(h.name, h.published);
      collectors[h.name] = { state: h.state, accepted: h.accepted, published: h.published, dropped: h.droppedTotal, rate: Math.round((h.published - before) / seconds) };
    }
    const { state, problems } = this.agentHealth();
    const destinations = [...this.#o.destinations()];
    const [first] = destinations;
    const nats = first!.delivery.publisher.status();
    let queue = 0;
    let spool = 0;
    for (const d of destinations) {
      queue += d.queue.length;
      spool += d.delivery.spoolDepth();
    }
    const others = destinations.slice(1).map((d) => `${d.name} ${d.delivery.publisher.status().connected ? "connected" : "disconnected"}`);
    log.info(
      {
        health: state,
        problems,
        collectors,
        queue,
        spool,
        nats: { connected: nats.connected, server: nats.server },
        ...(others.length > 0 && { destinations: Object.fromEntries(destinations.map((d) => [d.name, { connected: d.delivery.publisher.status().connected, queue: d.queue.length, spool: d.delivery.spoolDepth() }])) }),
      },
      `health: ${state}, ${Object.keys(collectors).length} collector(s), queue ${queue}, spool ${spool}, NATS ${nats.connected ? "connected" : "disconnected"}${others.length > 0 ? `, ${others.join(", ")}` : ""}`,
    );
  }
}
