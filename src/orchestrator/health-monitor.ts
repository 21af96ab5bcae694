// Watches the agent's health while it runs: logs each change of health as it
// happens, warns about collectors silent past their quiet period, and logs a
// periodic summary with rates.
import type { Logger } from "pino";
import type { HealthTracker } from "./health.ts";
import { DEFAULT_DESTINATION, type Destination } from "./destination.ts";
import type { CollectorRunner } from "./runner.ts";

/** How often the agent's health is re-evaluated (and changes logged). */
const HEALTH_CHECK_MS = 1000;

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
  runners: () => Iterable<CollectorRunner>;
  /** orchestrator.health_interval (a reload may change it); 0: no summary */
  summaryEveryMs: () => number;
}

export class HealthMonitor {
  readonly #o: HealthMonitorOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** the kinds of problems last logged */
  #lastProblems = "";
  #lastSummaryAt = Date.now();
  #lastPublished = new Map<string, number>();

  constructor(options: HealthMonitorOptions) {
    this.#o = options;
  }

  start(): void {
    // Checked each second: cheap.
    this.#timer ??= setInterval(() => this.#check(), HEALTH_CHECK_MS);
    this.#timer.unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

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

  #check(): void {
    const now = Date.now();
    for (const r of this.#o.runners()) r.checkQuiet(now);
    const every = this.#o.summaryEveryMs();
    if (every > 0 && now - this.#lastSummaryAt >= every) this.#logSummary(now);
    const { state, problems } = this.agentHealth();
    // Spool depth changes every second while draining; compare the kinds of problems only.
    const key = problems.map((p) => p.replace(/\d+/g, "#")).join("|");
    if (key === this.#lastProblems) return;
    this.#lastProblems = key;
    if (state === "healthy") this.#o.log.info("agent healthy");
    else this.#o.log.warn({ problems }, `agent degraded: ${problems.join("; ")}`);
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
