// The pipeline core: collectors -> bounded queue -> workers -> publisher.
// It knows collectors only through the registry and the Collector contract.
import type { Logger } from "pino";
import * as v from "valibot";
import type { Config } from "../config/schema.ts";
import type { Publisher } from "../publish/publisher.ts";
import { PublisherClosedError } from "../publish/errors.ts";
import type { Spool } from "../spool/spool.ts";
import { CircuitBreakers } from "../delivery/circuit.ts";
import { Delivery } from "../delivery/delivery.ts";
import type { AnyCollectorFactory } from "./collector.ts";
import type { CollectorRegistry } from "./registry.ts";
import { HealthTracker, type DeliveryTotals } from "./health.ts";
import { CHUNK_BYTES } from "../event/arena.ts";
import { EventQueue } from "./queue.ts";
import { CollectorRunner } from "./runner.ts";

/** NATS's default max_payload: a larger event could never be published. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** nats.batch: the largest encoder chunk, whatever max_bytes says */
const MAX_ARENA_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * With nats.batch, runs of events side by side in an encoder's chunk go out
 * as one message without a copy, so a chunk holds a whole message.
 */
function arenaChunkBytes(nats: Config["nats"]): number {
  return nats.batch ? Math.min(MAX_ARENA_CHUNK_BYTES, Math.max(CHUNK_BYTES, nats.batch.max_bytes)) : CHUNK_BYTES;
}

/** How often the agent's health is re-evaluated (and changes logged). */
const HEALTH_CHECK_MS = 1000;
/** How long one collector may take to stop before it is abandoned. */
const COLLECTOR_STOP_TIMEOUT_MS = 5000;

export interface OrchestratorOptions {
  config: Config;
  registry: CollectorRegistry;
  publisher: Publisher;
  /** the opened spool, when spool.enabled (see src/spool/) */
  spool?: Spool;
  log: Logger;
  /** --once: each collector does one round */
  once?: boolean;
  /** called when the publisher hits a problem a retry cannot fix */
  onFatal?: (err: Error) => void;
  /** called once per batch with the seconds a worker spent on it (metrics) */
  onBatchDone?: (seconds: number) => void;
  /** called with seconds from emit to the hand-off to the NATS client, for the first and last event of each batch published at once (metrics) */
  onHandoff?: (seconds: number) => void;
}

export interface ShutdownReport extends DeliveryTotals {
  /** events found in the spool at start (a previous run's) */
  inherited: number;
  /** events waiting in the spool at exit: sent on the next start */
  inSpool: number;
  /**
   * accepted + inherited - published - discarded - inSpool - lost: each term
   * is counted on its own, so anything but 0 is a bug (and is logged as one)
   */
  unaccounted: number;
  /** collectors whose --once round failed */
  failedCollectors: string[];
}

export interface ReconfigureResult {
  started: string[];
  stopped: string[];
  restarted: string[];
  reconnected: boolean;
  /** changed settings that are read once at start */
  needRestart: string[];
}

/** Settings a reload cannot change in a running agent: they are read once at start. */
const RESTART_KEYS = [
  ["orchestrator", "workers"],
  ["orchestrator", "batch_size"],
  ["orchestrator", "buffer"],
  ["nats", "circuit_breaker"],
  ["spool", "enabled"],
  ["spool", "path"],
  ["spool", "max_bytes"],
  ["spool", "when_full"],
  ["spool", "spill_after"],
  ["http", "enabled"],
  ["http", "listen"],
] as const;

export class Orchestrator {
  readonly health = new HealthTracker();
  readonly queue: EventQueue;
  readonly breakers: CircuitBreakers;
  readonly delivery: Delivery;
  readonly #o: OrchestratorOptions;
  readonly #runners = new Map<string, CollectorRunner>();
  readonly #workers: Promise<void>[] = [];
  /** aborted when shutdown_timeout passes (or the drain is done): publishers give up, the drainer stops */
  readonly #deadline = new AbortController();
  #started = false;
  #stopping: Promise<ShutdownReport> | undefined;
  #monitor: ReturnType<typeof setInterval> | undefined;
  #lastProblems = "";
  #lastSummaryAt = Date.now();
  #lastPublished = new Map<string, number>();

  constructor(options: OrchestratorOptions) {
    this.#o = options;
    const { orchestrator, nats, spool } = options.config;
    this.queue = new EventQueue(orchestrator.buffer.max_events, orchestrator.buffer.max_bytes);
    const cb = nats.circuit_breaker;
    this.breakers = new CircuitBreakers({
      failureThreshold: cb.failure_threshold,
      openForMs: cb.open_for.ms,
      probeTimeoutMs: cb.probe_timeout.ms,
      onChange: (subject, from, to, reason) =>
        (to === "open" ? options.log.warn : options.log.info).call(options.log, { subject, from, to, reason }, `circuit for ${subject} ${to.replace("_", "-")}: ${reason}`),
    });
    this.delivery = new Delivery({
      publisher: options.publisher,
      spool: options.spool,
      spoolPath: spool.path,
      bufferType: orchestrator.buffer.type,
      spillAfterMs: spool.spill_after.ms,
      breakers: this.breakers,
      health: this.health,
      log: options.log,
      deadline: this.#deadline.signal,
      drainBatch: orchestrator.batch_size,
      onFatal: (err) => options.onFatal?.(err),
      onHandoff: options.onHandoff,
    });
  }

  /** Starts the publisher, the workers, the spool drainer and every enabled collector in the config. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { config, publisher, log } = this.#o;
    this.#startPublisher(publisher);
    this.delivery.start();
    // Health changes are logged as they happen (checked each second, cheap).
    this.#monitor = setInterval(() => this.#watchHealth(), HEALTH_CHECK_MS);
    this.#monitor.unref?.();
    const { workers } = config.orchestrator;
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work(config.orchestrator.batch_size));
    for (const [name, section] of Object.entries(config.collectors)) {
      if (!section.enabled) continue;
      const factory = this.#o.registry.get(name);
      if (!factory) throw new Error(`no collector registered as "${name}"`);
      this.#startRunner(name, factory, section.config);
    }
    log.info(
      { workers, buffer: config.orchestrator.buffer, spool: this.#o.spool ? config.spool.path : false, collectors: this.collectorNames() },
      `orchestrator started with ${this.#runners.size} collector(s) and ${workers} worker(s)`,
    );
  }

  /** Starts a publisher in the background; a problem no retry can fix is fatal. */
  #startPublisher(publisher: Publisher): void {
    const { log, onFatal } = this.#o;
    publisher.start().then(
      () => log.info({ publisher: publisher.status() }, "publisher ready"),
      (err: Error) => {
        // Closing the publisher (shutdown, reload) ends a start() still waiting for NATS: not a failure.
        if (err instanceof PublisherClosedError) return;
        log.error({ err: err.message }, err.message);
        onFatal?.(err);
      },
    );
  }

  /**
   * Applies a reloaded configuration: collectors newly enabled start, those
   * disabled or removed stop, those whose config changed restart; when the
   * NATS settings changed, a new publisher takes over once the old one has
   * finished what it was publishing. Queued and spooled events stay where
   * they are and go out as before. Settings read once at start are reported
   * in `needRestart`.
   */
  async reconfigure(next: Config, createPublisher: (nats: Config["nats"]) => Publisher): Promise<ReconfigureResult> {
    const { log } = this.#o;
    const before = this.#o.config;
    const result: ReconfigureResult = { started: [], stopped: [], restarted: [], reconnected: false, needRestart: [] };
    if (this.#stopping) return result;
    if (JSON.stringify(next.nats) !== JSON.stringify(before.nats)) {
      const publisher = createPublisher(next.nats);
      this.#startPublisher(publisher);
      const old = await this.delivery.swapPublisher(publisher);
      await old.close().catch((err: Error) => log.warn({ err: err.message }, "closing the previous publisher failed"));
      result.reconnected = true;
    }
    this.#o.config = next;
    // Encoders are made for a subject: a new one restarts every collector.
    const resubject = next.nats.subject !== before.nats.subject;
    for (const runner of this.#runners.values()) runner.arenaChunkBytes = arenaChunkBytes(next.nats);
    const names = new Set([...Object.keys(before.collectors), ...Object.keys(next.collectors)]);
    for (const name of names) {
      const was = this.#runners.has(name);
      const wanted = next.collectors[name]?.enabled === true;
      const changed = resubject || JSON.stringify(before.collectors[name]?.config) !== JSON.stringify(next.collectors[name]?.config);
      if (was && (!wanted || changed)) {
        await this.removeCollector(name);
        if (!wanted) result.stopped.push(name);
      }
      if (wanted && (!was || changed)) {
        const factory = this.#o.registry.get(name);
        if (!factory) continue;
        this.#startRunner(name, factory, next.collectors[name]!.config);
        (was ? result.restarted : result.started).push(name);
      }
    }
    for (const [section, key] of RESTART_KEYS) {
      if (JSON.stringify((before[section] as Record<string, unknown>)[key]) !== JSON.stringify((next[section] as Record<string, unknown>)[key])) {
        result.needRestart.push(`${section}.${key}`);
      }
    }
    log.info(
      result,
      `config reloaded: started [${result.started.join(", ")}], stopped [${result.stopped.join(", ")}], restarted [${result.restarted.join(", ")}]${result.reconnected ? ", NATS reconnected" : ""}`,
    );
    if (result.needRestart.length) log.warn({ keys: result.needRestart }, `config reload: ${result.needRestart.join(", ")} changed; these take effect on the next start`);
    return result;
  }

  /** The agent as a whole: degraded while delivery has problems or a collector is not running. */
  agentHealth(): { state: "healthy" | "degraded"; problems: string[] } {
    const problems = this.delivery.problems();
    for (const h of this.health.all()) {
      if (h.state === "degraded" || h.state === "failed") problems.push(`collector ${h.name} ${h.state}: ${h.lastError ?? ""}`);
    }
    return { state: problems.length === 0 ? "healthy" : "degraded", problems };
  }

  #watchHealth(): void {
    const now = Date.now();
    for (const r of this.#runners.values()) r.checkQuiet(now);
    const every = this.#o.config.orchestrator.health_interval.ms;
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
    const seconds = (now - this.#lastSummaryAt) / 1000;
    this.#lastSummaryAt = now;
    const collectors: Record<string, unknown> = {};
    for (const h of this.health.all()) {
      const before = this.#lastPublished.get(h.name) ?? 0;
      this.#lastPublished.set(h.name, h.published);
      collectors[h.name] = { state: h.state, accepted: h.accepted, published: h.published, dropped: h.droppedTotal, rate: Math.round((h.published - before) / seconds) };
    }
    const { state, problems } = this.agentHealth();
    const nats = this.delivery.publisher.status();
    this.#o.log.info(
      { health: state, problems, collectors, queue: this.queue.length, spool: this.delivery.spoolDepth(), nats: { connected: nats.connected, server: nats.server } },
      `health: ${state}, ${Object.keys(collectors).length} collector(s), queue ${this.queue.length}, spool ${this.delivery.spoolDepth()}, NATS ${nats.connected ? "connected" : "disconnected"}`,
    );
  }

  /**
   * Starts a collector while running. Its events go to `<subject>.<name>`.
   * `config` goes through the factory's schema, as from the config file.
   */
  addCollector(name: string, factory: AnyCollectorFactory, rawConfig: unknown): void {
    if (this.#runners.has(name)) throw new Error(`collector "${name}" is already running`);
    if (this.#stopping) throw new Error("the orchestrator is stopping");
    const parsed = v.safeParse(factory.configSchema, rawConfig ?? {});
    if (!parsed.success) {
      const problems = parsed.issues.map((i) => `${v.getDotPath(i) ?? "config"}: ${i.message}`).join("; ");
      throw new Error(`collector "${name}": invalid config: ${problems}`);
    }
    this.#startRunner(name, factory, parsed.output);
  }

  #startRunner(name: string, factory: AnyCollectorFactory, config: unknown): void {
    const { config: cfg, log, once } = this.#o;
    const runner = new CollectorRunner({
      name,
      factory,
      config,
      queue: this.queue,
      subject: `${cfg.nats.subject}.${name}`,
      maxEventBytes: MAX_EVENT_BYTES,
      arenaChunkBytes: arenaChunkBytes(cfg.nats),
      health: this.health.collector(name),
      log: log.child({ collector: name }),
      once: once ?? false,
      backoff: cfg.orchestrator.restart_backoff,
      whenFull: cfg.orchestrator.buffer.when_full,
      healthOf: (collector) => this.health.collector(collector),
    });
    this.#runners.set(name, runner);
    runner.start();
  }

  /** Stops and removes a collector while running; its queued events still go out. */
  async removeCollector(name: string): Promise<boolean> {
    const runner = this.#runners.get(name);
    if (!runner) return false;
    this.#runners.delete(name);
    await runner.stop(COLLECTOR_STOP_TIMEOUT_MS);
    return true;
  }

  collectorNames(): string[] {
    return [...this.#runners.keys()];
  }

  /** Resolves when every collector has finished (in --once mode: done its round). */
  async roundsDone(): Promise<void> {
    await Promise.all([...this.#runners.values()].map((r) => r.finished));
  }

  async #work(batchSize: number): Promise<void> {
    const done = this.#o.onBatchDone;
    for (;;) {
      // nats.batch (which a reload may change): take whole messages (batch_size rounded down, at
      // least one), and wait a little for a fuller batch.
      const { batch: packing } = this.#o.config.nats;
      const take = packing ? packing.max_events * Math.max(1, Math.floor(batchSize / packing.max_events)) : batchSize;
      const linger = packing?.linger.ms ?? 0;
      let batch = await this.queue.take(take);
      if (batch.length === 0) return;
      if (linger > 0 && batch.length < take && !this.queue.closed) {
        await Bun.sleep(linger);
        batch = batch.concat(this.queue.takeNow(take - batch.length));
      }
      const t0 = performance.now();
      const goOn = await this.delivery.deliver(batch);
      done?.((performance.now() - t0) / 1000);
      if (!goOn) return;
    }
  }

  /** True from the start of a shutdown: readiness turns 503. */
  get draining(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Ready: every collector has started, events have somewhere to go (NATS
   * connected, or a spool to hold them), and no shutdown is under way.
   */
  readiness(): { ready: boolean; reason: string } {
    if (!this.#started) return { ready: false, reason: "not started" };
    if (this.draining) return { ready: false, reason: "shutting down" };
    const starting = [...this.#runners.values()].filter((r) => this.health.collector(r.name).state === "starting").map((r) => r.name);
    if (starting.length > 0) return { ready: false, reason: `collectors starting: ${starting.join(", ")}` };
    const nats = this.delivery.publisher.status();
    if (nats.connected) return { ready: true, reason: "NATS connected" };
    if (this.#o.spool) return { ready: true, reason: "NATS not connected; events go to the spool" };
    return { ready: false, reason: `NATS not connected${nats.lastError ? `: ${nats.lastError}` : ""} and no spool` };
  }

  /**
   * Graceful shutdown: stop collectors, drain the queue to the publisher
   * within shutdown_timeout, close the publisher. Safe to call twice.
   */
  stop(): Promise<ShutdownReport> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<ShutdownReport> {
    const { config, spool, log } = this.#o;
    const timeoutMs = config.orchestrator.shutdown_timeout.ms;
    const timer = setTimeout(() => this.#deadline.abort(), timeoutMs);
    const runners = [...this.#runners.values()];
    log.info(
      { queued: this.queue.length, spool_depth: this.delivery.spoolDepth() },
      `stopping ${runners.length} collector(s), then delivering what is queued and spooled (up to ${config.orchestrator.shutdown_timeout})`,
    );
    await Promise.all(runners.map((r) => r.stop(Math.min(COLLECTOR_STOP_TIMEOUT_MS, timeoutMs))));
    this.queue.close();
    // Workers end when the queue is empty: each batch is published or spooled
    // (past the deadline, straight to the spool). Without a spool they give up at the deadline.
    await Promise.all(this.#workers);
    await this.delivery.drained();
    clearInterval(this.#monitor);
    clearTimeout(timer);
    this.#deadline.abort();
    await this.delivery.stopped();
    await this.delivery.publisher.close().catch((err: Error) => log.warn({ err: err.message }, "closing the publisher failed"));
    // Workers gave up (no spool, publisher gone): what is still queued is lost, and counted.
    for (let rest = this.queue.length; rest > 0; rest = this.queue.length) {
      for (const e of await this.queue.take(rest)) this.health.collector(e.collector).lost++;
    }
    const inSpool = this.delivery.spoolDepth();
    spool?.close();
    const totals = this.health.totals();
    const inherited = this.delivery.inherited;
    const lost = totals.lost;
    const unaccounted = totals.accepted + inherited - totals.published - totals.discarded - inSpool - lost;
    if (unaccounted !== 0) log.error({ unaccounted }, `delivery accounting does not add up: ${unaccounted} event(s) unaccounted for (a bug)`);
    const report: ShutdownReport = {
      ...totals,
      inherited,
      inSpool,
      unaccounted,
      failedCollectors: runners.filter((r) => r.failedRound).map((r) => r.name),
    };
    const fields = {
      accepted: totals.accepted,
      inherited,
      published: totals.published,
      discarded: totals.discarded,
      dropped: totals.dropped,
      in_spool: inSpool,
      lost,
      unaccounted,
      publish_errors: Object.fromEntries(this.health.publishErrors),
      failed_collectors: report.failedCollectors,
    };
    if (inSpool === 0 && lost === 0) {
      log.info(fields, `shutdown complete: ${totals.published} event(s) published, none left`);
    } else {
      const where = [inSpool > 0 ? `${inSpool} left in the spool at ${config.spool.path} (sent on the next start)` : "", lost > 0 ? `${lost} lost` : ""]
        .filter(Boolean)
        .join(", ");
      log.warn(fields, `shutdown deadline passed: ${totals.published} event(s) published, ${where}`);
    }
    return report;
  }

  status() {
    return {
      collectors: this.health.all().map((h) => h.snapshot()),
      queue: { length: this.queue.length, bytes: this.queue.bytes, utilization: this.queue.utilization, waiting: this.queue.waiting },
      delivery: this.delivery.status(),
      health: this.agentHealth(),
      publish_errors: Object.fromEntries(this.health.publishErrors),
    };
  }
}
