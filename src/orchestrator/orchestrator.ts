// The pipeline core: collectors -> bounded queue -> workers -> publisher.
// It knows collectors only through the registry and the Collector contract.
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { QueuedEvent } from "../event/event.ts";
import type { Publisher, Rejection } from "../publish/publisher.ts";
import type { AnyCollectorFactory } from "./collector.ts";
import type { CollectorRegistry } from "./registry.ts";
import { HealthTracker, type CollectorHealthSnapshot } from "./health.ts";
import { EventQueue } from "./queue.ts";
import { CollectorRunner } from "./runner.ts";

/** NATS's default max_payload: a larger event could never be published. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** How long one collector may take to stop before it is abandoned. */
const COLLECTOR_STOP_TIMEOUT_MS = 5000;

export interface OrchestratorOptions {
  config: Config;
  registry: CollectorRegistry;
  publisher: Publisher;
  log: Logger;
  /** --once: each collector does one round */
  once?: boolean;
  /** called when the publisher hits a problem a retry cannot fix */
  onFatal?: (err: Error) => void;
}

export interface ShutdownReport {
  accepted: number;
  published: number;
  /** accepted events NATS could never take (over max_payload, invalid) */
  rejected: number;
  /** all drops: before acceptance (queue_full, invalid_event, ...) and rejections */
  dropped: number;
  /** accepted but not confirmed by the publisher when the deadline passed */
  left: number;
  /** collectors whose --once round failed */
  failedCollectors: string[];
}

export class Orchestrator {
  readonly health = new HealthTracker();
  readonly queue: EventQueue;
  readonly #o: OrchestratorOptions;
  readonly #runners = new Map<string, CollectorRunner>();
  readonly #workers: Promise<void>[] = [];
  /** aborted when shutdown_timeout passes: publishers give up what is unconfirmed */
  readonly #deadline = new AbortController();
  #started = false;
  #stopping: Promise<ShutdownReport> | undefined;

  constructor(options: OrchestratorOptions) {
    this.#o = options;
    const { orchestrator } = options.config;
    this.queue = new EventQueue(orchestrator.buffer_size, orchestrator.buffer_bytes);
  }

  /** Starts the publisher, the workers and every enabled collector in the config. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { config, publisher, log, onFatal } = this.#o;
    publisher.start().then(
      () => log.info({ publisher: publisher.status() }, "publisher ready"),
      (err: Error) => {
        log.error({ err: err.message }, err.message);
        onFatal?.(err);
      },
    );
    const { workers } = config.orchestrator;
    const batch = Math.max(1, Math.floor(config.nats.max_in_flight / workers));
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work(batch));
    for (const [name, section] of Object.entries(config.collectors)) {
      if (!section.enabled) continue;
      const factory = this.#o.registry.get(name);
      if (!factory) throw new Error(`no collector registered as "${name}"`);
      this.addCollector(name, factory, section.config);
    }
    log.info(
      { workers, buffer_size: this.queue.maxEvents, buffer_bytes: this.queue.maxBytes, collectors: this.collectorNames() },
      `orchestrator started with ${this.#runners.size} collector(s) and ${workers} worker(s)`,
    );
  }

  /** Starts a collector while running. Its events go to `<subject>.<name>`. */
  addCollector(name: string, factory: AnyCollectorFactory, config: unknown): void {
    if (this.#runners.has(name)) throw new Error(`collector "${name}" is already running`);
    if (this.#stopping) throw new Error("the orchestrator is stopping");
    const { config: cfg, log, once } = this.#o;
    const runner = new CollectorRunner({
      name,
      factory,
      config,
      queue: this.queue,
      subject: `${cfg.nats.subject}.${name}`,
      maxEventBytes: MAX_EVENT_BYTES,
      health: this.health.collector(name),
      log: log.child({ collector: name }),
      once: once ?? false,
      backoff: cfg.orchestrator.restart_backoff,
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
    const { publisher } = this.#o;
    const signal = this.#deadline.signal;
    for (;;) {
      const batch = await this.queue.take(batchSize);
      if (batch.length === 0) return;
      const { undelivered, rejected } = await publisher.publish(batch, signal);
      if (undelivered.length === 0 && rejected.length === 0) {
        for (let i = 0; i < batch.length; i++) this.health.collector(batch[i]!.collector).published++;
        continue;
      }
      this.#account(batch, undelivered, rejected);
      if (undelivered.length > 0) {
        // A publisher gives up only at the deadline or when it is closed for good.
        if (!signal.aborted) this.#publisherGaveUp();
        return;
      }
    }
  }

  /** The rare path: some events of a batch were rejected or not delivered. */
  #account(batch: readonly QueuedEvent[], undelivered: readonly QueuedEvent[], rejected: readonly Rejection[]): void {
    const notPublished = new Set<QueuedEvent>(undelivered);
    for (const { event, reason } of rejected) {
      notPublished.add(event);
      this.health.collector(event.collector).reject(reason);
    }
    for (const event of batch) if (!notPublished.has(event)) this.health.collector(event.collector).published++;
  }

  #publisherGaveUp(): void {
    const reason = this.#o.publisher.status().lastError ?? "the connection is closed";
    this.#o.onFatal?.(new Error(`the publisher stopped delivering: ${reason}`));
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
    const { config, publisher, log } = this.#o;
    const timeoutMs = config.orchestrator.shutdown_timeout.ms;
    const timer = setTimeout(() => this.#deadline.abort(), timeoutMs);
    const runners = [...this.#runners.values()];
    log.info({ queued: this.queue.length }, `stopping ${runners.length} collector(s), then draining the queue (up to ${config.orchestrator.shutdown_timeout})`);
    await Promise.all(runners.map((r) => r.stop(Math.min(COLLECTOR_STOP_TIMEOUT_MS, timeoutMs))));
    this.queue.close();
    await Promise.race([
      Promise.all(this.#workers),
      new Promise<void>((resolve) => this.#deadline.signal.addEventListener("abort", () => resolve(), { once: true })),
    ]);
    clearTimeout(timer);
    // Workers that were mid-publish at the deadline report their unconfirmed events as they return.
    await Promise.race([Promise.all(this.#workers), Bun.sleep(1000)]);
    await publisher.close().catch((err: Error) => log.warn({ err: err.message }, "closing the publisher failed"));
    const totals = this.health.totals();
    // Dropped events (rejected by NATS) were accepted too; they are not "left".
    const left = totals.accepted - totals.published - totals.rejected;
    const report: ShutdownReport = {
      ...totals,
      left,
      failedCollectors: runners.filter((r) => r.failedRound).map((r) => r.name),
    };
    const message = left === 0
      ? `shutdown complete: ${report.published} event(s) published, none left`
      : `shutdown deadline passed: ${report.published} event(s) published, ${left} left undelivered`;
    const fields = { accepted: report.accepted, published: report.published, rejected: report.rejected, dropped: report.dropped, left, failed_collectors: report.failedCollectors };
    (left === 0 ? log.info : log.warn).call(log, fields, message);
    return report;
  }

  status(): { collectors: CollectorHealthSnapshot[]; queue: { length: number; bytes: number; utilization: number; waiting: number } } {
    return {
      collectors: this.health.all().map((h) => h.snapshot()),
      queue: { length: this.queue.length, bytes: this.queue.bytes, utilization: this.queue.utilization, waiting: this.queue.waiting },
    };
  }
}
