// The pipeline core, wired: collectors -> bounded queue -> workers ->
// delivery (publisher, spool). It knows collectors only through the registry
// and the Collector contract. Each job has its file: runner.ts (one
// collector), workers.ts, reload-plan.ts, health-monitor.ts, readiness.ts,
// ledger.ts (counting) and shutdown.ts (the final accounts).
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { Duration } from "../config/duration.ts";
import type { Publisher } from "../publish/publisher.ts";
import { PublisherClosedError } from "../publish/errors.ts";
import { BatchPolicy } from "../publish/batch-policy.ts";
import type { Spool } from "../spool/spool.ts";
import type { SpoolError } from "../spool/errors.ts";
import { CircuitBreakers } from "../delivery/circuit.ts";
import { Delivery } from "../delivery/delivery.ts";
import type { AnyCollectorFactory } from "./collector.ts";
import type { CollectorRegistry } from "./registry.ts";
import { HealthTracker } from "./health.ts";
import { DeliveryLedger } from "./ledger.ts";
import { EventQueue } from "./queue.ts";
import { MAX_EVENT_BYTES } from "../event/encode.ts";
import { collectorSubject } from "./instance.ts";
import { CollectorRunner } from "./runner.ts";
import { startWorkers } from "./workers.ts";
import { CommitWaiters } from "./commit-waiters.ts";
import { CollectorStates } from "./collector-state.ts";
import { planReload } from "./reload-plan.ts";
import { HealthMonitor, type AgentHealth } from "./health-monitor.ts";
import { readiness, type Readiness } from "./readiness.ts";
import { closeBooks, countLeftInQueue, type ShutdownReport } from "./shutdown.ts";

export type { ShutdownReport } from "./shutdown.ts";

/** How long one collector may take to stop before it is abandoned. */
const COLLECTOR_STOP_TIMEOUT_MS = 5000;

export interface OrchestratorOptions {
  config: Config;
  registry: CollectorRegistry;
  publisher: Publisher;
  /** the opened spool, when spool.enabled (see src/spool/) */
  spool?: Spool;
  /** spool.enabled, but it could not be opened: the agent runs without one */
  spoolUnavailable?: SpoolError;
  log: Logger;
  /** --once: each collector does one round */
  once?: boolean;
  /** called when the publisher hits a problem a retry cannot fix */
  onFatal?: (err: Error) => void;
  /** called once per batch with the seconds a worker spent on it (metrics) */
  onBatchDone?: (seconds: number) => void;
  /** called with seconds from emit to the hand-off to the NATS client, for the first and last event of each batch published at once (metrics) */
  onHandoff?: (seconds: number) => void;
  /** called after each poll round of a collector with its wall and CPU seconds (metrics) */
  onPollRound?: (collector: string, wallSeconds: number, cpuSeconds: number) => void;
}

export interface ReconfigureResult {
  started: string[];
  stopped: string[];
  restarted: string[];
  reconnected: boolean;
  /** changed settings that are read once at start */
  needRestart: string[];
}

export class Orchestrator {
  readonly health = new HealthTracker();
  readonly ledger = new DeliveryLedger(this.health);
  readonly queue: EventQueue;
  /** waits on events' fates: every emit's in disk mode, and those senders ask for (emitAll) */
  readonly #commits = new CommitWaiters();
  /** disk mode: every emit resolves once its event is spooled */
  readonly #emitsWaitForCommit: boolean;
  /** each collector's ctx.state, saved once the events before each save are delivered */
  readonly #states: CollectorStates;
  readonly breakers: CircuitBreakers;
  readonly delivery: Delivery;
  readonly #o: OrchestratorOptions;
  readonly #runners = new Map<string, CollectorRunner>();
  readonly #monitor: HealthMonitor;
  #workers: Promise<void>[] = [];
  /** nats.batch as configured now */
  #batchPolicy: BatchPolicy;
  /** aborted when shutdown_timeout passes (or the drain is done): publishers give up, the drainer stops */
  readonly #deadline = new AbortController();
  #started = false;
  #stopping: Promise<ShutdownReport> | undefined;

  constructor(options: OrchestratorOptions) {
    this.#o = options;
    const { orchestrator, nats, spool } = options.config;
    this.#batchPolicy = new BatchPolicy(nats.batch);
    this.queue = new EventQueue(orchestrator.buffer.max_events, orchestrator.buffer.max_bytes);
    this.#states = new CollectorStates({ spool: options.spool, spoolUnavailable: options.spoolUnavailable, spoolEnabled: spool.enabled });
    this.#emitsWaitForCommit = orchestrator.buffer.type === "disk";
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
      spoolUnavailable: options.spoolUnavailable,
      spoolPath: spool.path,
      bufferType: orchestrator.buffer.type,
      spillAfterMs: spool.spill_after.ms,
      breakers: this.breakers,
      ledger: this.ledger,
      log: options.log,
      deadline: this.#deadline.signal,
      drainBatch: orchestrator.batch_size,
      subjectPrefix: () => this.#o.config.nats.subject,
      onFatal: (err) => options.onFatal?.(err),
      onHandoff: options.onHandoff,
      settled: (events) => this.#states.settled(events),
      commits: this.#commits,
    });
    this.#monitor = new HealthMonitor({
      health: this.health,
      delivery: this.delivery,
      queue: this.queue,
      log: options.log,
      runners: () => this.#runners.values(),
      summaryEveryMs: () => this.#o.config.orchestrator.health_interval.ms,
    });
  }

  /** Starts the publisher, the workers, the spool drainer and every enabled collector in the config. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { config, publisher, log, onBatchDone } = this.#o;
    this.#startPublisher(publisher);
    this.delivery.start();
    this.#monitor.start();
    const { workers, batch_size } = config.orchestrator;
    this.#workers = startWorkers(workers, { queue: this.queue, delivery: this.delivery, batchSize: batch_size, policy: () => this.#batchPolicy, onBatchDone, commits: this.#commits, emitsWaitForCommit: this.#emitsWaitForCommit, log, deadline: this.#deadline.signal });
    for (const [name, section] of Object.entries(config.collectors)) {
      if (section.enabled) this.#startRunner(name, section.config);
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
   * Applies a reloaded configuration (see reload-plan.ts): collectors newly
   * enabled start, those disabled or removed stop, those whose config
   * changed restart; when the NATS settings changed, a new publisher takes
   * over once the old one has finished what it was publishing. A new
   * publisher not ready within the new nats.timeout (unreachable, rejected
   * credentials, a stream it cannot use) rejects the whole reload, which is
   * then not applied at all: the old publisher never stopped. Queued and
   * spooled events stay where they are and go out as before. Settings read
   * once at start are reported in `needRestart`.
   */
  async reconfigure(next: Config, createPublisher: (nats: Config["nats"]) => Publisher): Promise<ReconfigureResult> {
    const { log } = this.#o;
    const result: ReconfigureResult = { started: [], stopped: [], restarted: [], reconnected: false, needRestart: [] };
    if (this.#stopping) return result;
    const plan = planReload(this.#o.config, next, new Set(this.#runners.keys()));
    if (plan.reconnect) {
      // Nothing changes until the new publisher is ready: a throw here leaves the old config whole.
      const publisher = await readyWithin(createPublisher(next.nats), next.nats.timeout);
      if (this.#stopping) {
        await publisher.close();
        return result;
      }
      log.info({ publisher: publisher.status() }, "publisher ready");
      const old = await this.delivery.swapPublisher(publisher);
      await old.close().catch((err: Error) => log.warn({ err: err.message }, "closing the previous publisher failed"));
      result.reconnected = true;
    }
    this.#o.config = next;
    this.#batchPolicy = new BatchPolicy(next.nats.batch);
    for (const runner of this.#runners.values()) runner.arenaChunkBytes = this.#batchPolicy.arenaChunkBytes;
    for (const { name, change } of plan.collectors) {
      if (change !== "start") await this.#stopRunner(name);
      if (change !== "stop") this.#startRunner(name, next.collectors[name]!.config);
      ({ start: result.started, stop: result.stopped, restart: result.restarted })[change].push(name);
    }
    result.needRestart = plan.needRestart;
    log.info(
      result,
      `config reloaded: started [${result.started.join(", ")}], stopped [${result.stopped.join(", ")}], restarted [${result.restarted.join(", ")}]${result.reconnected ? ", NATS reconnected" : ""}`,
    );
    if (result.needRestart.length) log.warn({ keys: result.needRestart }, `config reload: ${result.needRestart.join(", ")} changed; these take effect on the next start`);
    return result;
  }

  /** The agent as a whole: degraded while delivery has problems or a collector is not running. */
  agentHealth(): AgentHealth {
    return this.#monitor.agentHealth();
  }

  /**
   * Starts the collector instance `name` (TYPE or TYPE/NAME); its events go
   * to its subject (instance.ts). The config loader checked that its type is registered.
   */
  #startRunner(name: string, config: unknown): void {
    const factory: AnyCollectorFactory | undefined = this.#o.registry.forKey(name);
    if (!factory) throw new Error(`no collector type registered for "${name}"`);
    const { config: cfg, log, once } = this.#o;
    const runner = new CollectorRunner({
      name,
      factory,
      config,
      queue: this.queue,
      subject: collectorSubject(cfg.nats.subject, name),
      maxEventBytes: MAX_EVENT_BYTES,
      arenaChunkBytes: this.#batchPolicy.arenaChunkBytes,
      health: this.health.collector(name),
      ledger: this.ledger,
      log: log.child({ collector: name }),
      once: once ?? false,
      backoff: cfg.orchestrator.restart_backoff,
      whenFull: cfg.orchestrator.buffer.when_full,
      commits: this.#commits,
      states: this.#states,
      emitWaitsForCommit: this.#emitsWaitForCommit,
      onPollRound: this.#o.onPollRound,
    });
    this.#runners.set(name, runner);
    runner.start();
  }

  /** Stops a collector while running; its queued events still go out. */
  async #stopRunner(name: string): Promise<void> {
    const runner = this.#runners.get(name);
    if (!runner) return;
    this.#runners.delete(name);
    await runner.stop(COLLECTOR_STOP_TIMEOUT_MS);
  }

  collectorNames(): string[] {
    return [...this.#runners.keys()];
  }

  /** Resolves when every collector has finished (in --once mode: done its round). */
  async roundsDone(): Promise<void> {
    await Promise.all([...this.#runners.values()].map((r) => r.finished));
  }

  /** True from the start of a shutdown: readiness turns 503. */
  get draining(): boolean {
    return this.#stopping !== undefined;
  }

  readiness(): Readiness {
    return readiness({
      started: this.#started,
      draining: this.draining,
      starting: [...this.#runners.keys()].filter((name) => this.health.collector(name).state === "starting"),
      nats: this.delivery.publisher.status(),
      spool: this.#o.spool !== undefined,
      spoolProblem: this.delivery.spoolProblem(),
    });
  }

  /**
   * Graceful shutdown: stop collectors, drain the queue to the publisher
   * within shutdown_timeout, close the publisher. Safe to call twice.
   * `spool` (after a fault, even while a drain is under way): nothing waits
   * on NATS any more, what is queued goes straight to the spool; without a
   * spool the drain goes on, as there is nowhere else to put events.
   */
  stop(how: "drain" | "spool" = "drain"): Promise<ShutdownReport> {
    if (how === "spool" && this.#o.spool) this.#deadline.abort();
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
    this.#monitor.stop();
    clearTimeout(timer);
    this.#deadline.abort();
    await this.delivery.stopped();
    await this.delivery.publisher.close().catch((err: Error) => log.warn({ err: err.message }, "closing the publisher failed"));
    await countLeftInQueue(this.queue, this.ledger, this.#commits);
    const inSpool = this.delivery.spoolDepth();
    try {
      spool?.close();
    } catch (err) {
      // What the spool holds is committed; a failed close must not cost the final accounts.
      log.error({ err: (err as Error).message }, `closing the spool failed: ${(err as Error).message}`);
    }
    return closeBooks({
      ledger: this.ledger,
      inherited: this.delivery.inherited,
      inSpool,
      failedCollectors: runners.filter((r) => r.failedRound).map((r) => r.name),
      spoolPath: config.spool.path,
      log,
    });
  }

  status() {
    return {
      collectors: this.health.all().map((h) => h.snapshot()),
      queue: { length: this.queue.length, bytes: this.queue.bytes, utilization: this.queue.utilization, waiting: this.queue.waiting },
      delivery: this.delivery.status(),
      health: this.agentHealth(),
      publish_errors: Object.fromEntries(this.ledger.publishErrors),
    };
  }
}

/**
 * Starts `publisher` and resolves with it once it is ready (connected,
 * authenticated, its stream checked); closes it and rejects with the reason
 * when it fails or is not ready within `timeout`.
 */
async function readyWithin(publisher: Publisher, timeout: Duration): Promise<Publisher> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const notReady = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const { lastError } = publisher.status();
      reject(new Error(`the new NATS settings were not ready within nats.timeout (${timeout})${lastError ? `: ${lastError}` : ""}`));
    }, timeout.ms);
  });
  try {
    await Promise.race([publisher.start(), notReady]);
    return publisher;
  } catch (err) {
    await publisher.close().catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
