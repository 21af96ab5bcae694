// The pipeline core, wired: collectors -> bounded queue -> workers ->
// delivery (publisher, spool). It knows collectors only through the registry
// and the Collector contract. Each job has its file: runner.ts (one
// collector), workers.ts, reload-plan.ts, health-monitor.ts, readiness.ts,
// ledger.ts (counting) and shutdown.ts (the final accounts).
import type { Logger } from "pino";
import type { Config, NatsConfig } from "../config/schema.ts";
import type { Duration } from "../config/duration.ts";
import type { Publisher } from "../publish/publisher.ts";
import { PublisherClosedError } from "../publish/errors.ts";
import type { Spool } from "../spool/spool.ts";
import type { SpoolError } from "../spool/errors.ts";
import type { CircuitBreakers } from "../delivery/circuit.ts";
import type { Delivery } from "../delivery/delivery.ts";
import type { AnyCollectorFactory } from "./collector.ts";
import type { CollectorRegistry } from "./registry.ts";
import { HealthTracker } from "./health.ts";
import type { DeliveryLedger } from "./ledger.ts";
import type { EventQueue } from "./queue.ts";
import { MAX_EVENT_BYTES } from "../event/encode.ts";
import { collectorSubject } from "./instance.ts";
import { CollectorRunner } from "./runner.ts";
import { DEFAULT_DESTINATION, Destination, type DestinationParts } from "./destination.ts";
import { RouteTable } from "../routing/routes.ts";
import { CommitWaiters } from "./commit-waiters.ts";
import { CollectorStates } from "./collector-state.ts";
import { planReload } from "./reload-plan.ts";
import { HealthMonitor, type AgentHealth } from "./health-monitor.ts";
import { readiness, type Readiness } from "./readiness.ts";
import { closeBooks, type DestinationClosing, type ShutdownReport } from "./shutdown.ts";

export type { ShutdownReport } from "./shutdown.ts";

/** How long one collector may take to stop before it is abandoned. */
const COLLECTOR_STOP_TIMEOUT_MS = 5000;

export interface OrchestratorOptions {
  config: Config;
  registry: CollectorRegistry;
  /** the default destination's publisher (the nats section) */
  publisher: Publisher;
  /** the default destination's opened spool, when spool.enabled (see src/spool/) */
  spool?: Spool;
  /** spool.enabled, but it could not be opened: the agent runs without one */
  spoolUnavailable?: SpoolError;
  /** makes the publisher and opens the spool of a destination of `destinations:` (at start, and when a reload adds one) */
  openDestination?: (name: string, nats: NatsConfig) => DestinationParts;
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
  /** destinations added, removed, or reconnected with new settings */
  destinations: { added: string[]; removed: string[]; reconnected: string[] };
}

export class Orchestrator {
  readonly health = new HealthTracker();
  /** waits on events' fates: every emit's in disk mode, and those senders ask for (emitAll) */
  readonly #commits = new CommitWaiters();
  /** disk mode: every emit resolves once its event is spooled */
  readonly #emitsWaitForCommit: boolean;
  /** each collector's ctx.state, saved once the events before each save are delivered */
  readonly #states: CollectorStates;
  readonly #o: OrchestratorOptions;
  readonly #runners = new Map<string, CollectorRunner>();
  /** by name; default first */
  readonly #destinations = new Map<string, Destination>();
  /** the books of destinations a reload removed, for the final accounts */
  readonly #removedBooks: DestinationClosing[] = [];
  #routes: RouteTable<Destination>;
  readonly #monitor: HealthMonitor;
  /** aborted when shutdown_timeout passes (or the drain is done): publishers give up, the drainers stop */
  readonly #deadline = new AbortController();
  #started = false;
  #stopping: Promise<ShutdownReport> | undefined;

  constructor(options: OrchestratorOptions) {
    this.#o = options;
    const { orchestrator, spool } = options.config;
    this.#states = new CollectorStates({ spool: options.spool, spoolUnavailable: options.spoolUnavailable, spoolEnabled: spool.enabled });
    this.#emitsWaitForCommit = orchestrator.buffer.type === "disk";
    this.#addDestination(DEFAULT_DESTINATION, options.config.nats, { publisher: options.publisher, spool: options.spool, spoolUnavailable: options.spoolUnavailable });
    for (const [name, nats] of Object.entries(options.config.destinations)) this.#addDestination(name, nats, this.#open(name, nats));
    this.#routes = this.#routeTable(options.config);
    this.#monitor = new HealthMonitor({
      health: this.health,
      destinations: () => this.#destinations.values(),
      log: options.log,
      runners: () => this.runners(),
      summaryEveryMs: () => this.#o.config.orchestrator.health_interval.ms,
    });
    this.health.onChange = this.#healthChanged;
  }

  /** Something the health monitor reads changed (see HealthMonitor.changed). */
  readonly #healthChanged = (when: "now" | "soon" = "now"): void => {
    this.#monitor?.changed(when);
  };

  #open(name: string, nats: NatsConfig): DestinationParts {
    const open = this.#o.openDestination;
    if (!open) throw new Error(`destination ${name}: this agent cannot open destinations besides default (no openDestination)`);
    return open(name, nats);
  }

  #addDestination(name: string, nats: NatsConfig, parts: DestinationParts): Destination {
    const { config, log, onFatal, onHandoff, onBatchDone } = this.#o;
    const destination = new Destination({
      name,
      nats,
      ...parts,
      config,
      health: this.health,
      commits: this.#commits,
      states: this.#states,
      emitsWaitForCommit: this.#emitsWaitForCommit,
      log: name === DEFAULT_DESTINATION ? log : log.child({ destination: name }),
      deadline: this.#deadline.signal,
      onFatal,
      onHandoff,
      onBatchDone,
      healthChanged: this.#healthChanged,
    });
    this.#destinations.set(name, destination);
    return destination;
  }

  #routeTable(config: Config): RouteTable<Destination> {
    return new RouteTable(config.routes, (name) => {
      const d = this.#destinations.get(name);
      // The config loader checked every name a route uses.
      if (!d) throw new Error(`routes name the destination "${name}", which is not configured`);
      return d;
    });
  }

  /** The default destination (the nats section): its queue, delivery and ledger are the agent's when there is only one. */
  get #default(): Destination {
    return this.#destinations.get(DEFAULT_DESTINATION)!;
  }

  get queue(): EventQueue {
    return this.#default.queue;
  }

  get delivery(): Delivery {
    return this.#default.delivery;
  }

  get breakers(): CircuitBreakers {
    return this.#default.breakers;
  }

  /** The default destination's ledger; each destination has its own (destination(name).ledger). */
  get ledger(): DeliveryLedger {
    return this.#default.ledger;
  }

  /** A destination by name (default: the nats section), while configured. */
  destination(name: string): Destination | undefined {
    return this.#destinations.get(name);
  }

  destinations(): Destination[] {
    return [...this.#destinations.values()];
  }

  /** Starts each destination (publisher, workers, spool drainer) and every enabled collector in the config. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { config, log } = this.#o;
    for (const d of this.#destinations.values()) this.#startDestination(d);
    this.#monitor.start();
    for (const [name, section] of Object.entries(config.collectors)) {
      if (section.enabled) this.#startRunner(name, section.config);
    }
    const destinations = [...this.#destinations.keys()];
    log.info(
      { workers: config.orchestrator.workers, buffer: config.orchestrator.buffer, spool: this.#o.spool ? config.spool.path : false, collectors: this.collectorNames(), destinations },
      `orchestrator started with ${this.#runners.size} collector(s) and ${config.orchestrator.workers} worker(s)${destinations.length > 1 ? ` per destination (${destinations.join(", ")})` : ""}`,
    );
  }

  #startDestination(d: Destination): void {
    this.#startPublisher(d.delivery.publisher, d.name);
    d.start();
  }

  /** Starts a publisher in the background; a problem no retry can fix is fatal. */
  #startPublisher(publisher: Publisher, destination: string): void {
    const { log, onFatal } = this.#o;
    publisher.start().then(
      () => log.info({ publisher: publisher.status(), ...(destination !== DEFAULT_DESTINATION && { destination }) }, destination === DEFAULT_DESTINATION ? "publisher ready" : `publisher ready (destination ${destination})`),
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
   * changed restart; a destination whose NATS settings changed gets a new
   * publisher, which takes over once the old one has finished what it was
   * publishing; destinations added start, those removed stop taking events,
   * deliver what they had queued (or spool it) and close, their spool left
   * on disk. A new publisher not ready within its nats.timeout (unreachable,
   * rejected credentials, a stream it cannot use) rejects the whole reload,
   * which is then not applied at all: the old publishers never stopped.
   * Queued and spooled events stay where they are and go out as before.
   * Settings read once at start are reported in `needRestart`.
   */
  async reconfigure(next: Config, createPublisher: (nats: NatsConfig, destination: string) => Publisher): Promise<ReconfigureResult> {
    const { log } = this.#o;
    const result: ReconfigureResult = { started: [], stopped: [], restarted: [], reconnected: false, needRestart: [], destinations: { added: [], removed: [], reconnected: [] } };
    if (this.#stopping) return result;
    const plan = planReload(this.#o.config, next, new Set(this.#runners.keys()));
    // Nothing changes until every new publisher is ready: a throw here leaves the old config whole.
    const swaps = new Map<string, Publisher>();
    const added = new Map<string, DestinationParts>();
    try {
      await Promise.all([
        ...plan.destinations.reconnect.map(async (name) => {
          const nats = natsOf(next, name);
          swaps.set(name, await readyWithin(createPublisher(nats, name), nats.timeout, name));
        }),
        ...plan.destinations.add.map(async (name) => {
          const nats = natsOf(next, name);
          const parts = this.#open(name, nats);
          added.set(name, parts);
          await readyWithin(parts.publisher, nats.timeout, name);
        }),
      ]);
    } catch (err) {
      await Promise.all([...swaps.values()].map((p) => p.close().catch(() => {})));
      for (const parts of added.values()) closeParts(parts);
      throw err;
    }
    if (this.#stopping) {
      await Promise.all([...swaps.values()].map((p) => p.close().catch(() => {})));
      for (const parts of added.values()) closeParts(parts);
      return result;
    }
    for (const [name, publisher] of swaps) {
      const d = this.#destinations.get(name)!;
      log.info({ publisher: publisher.status(), destination: name }, name === DEFAULT_DESTINATION ? "publisher ready" : `publisher ready (destination ${name})`);
      const old = await d.delivery.swapPublisher(publisher);
      d.nats = natsOf(next, name);
      await old.close().catch((err: Error) => log.warn({ err: err.message, destination: name }, "closing the previous publisher failed"));
      if (name === DEFAULT_DESTINATION) result.reconnected = true;
      else result.destinations.reconnected.push(name);
    }
    for (const [name, parts] of added) {
      const d = this.#addDestination(name, natsOf(next, name), parts);
      d.start();
      result.destinations.added.push(name);
    }
    this.#o.config = next;
    // Events take the new routes from here on; a removed destination gets no more.
    this.#routes = this.#routeTable(next);
    for (const runner of this.#runners.values()) {
      runner.arenaChunkBytes = this.#default.batchPolicy.arenaChunkBytes;
      runner.routes = this.#routes.forCollector(runner.name);
    }
    await Promise.all(plan.destinations.remove.map((name) => this.#removeDestination(name)));
    result.destinations.removed.push(...plan.destinations.remove);
    for (const { name, change } of plan.collectors) {
      if (change !== "start") await this.#stopRunner(name);
      if (change !== "stop") this.#startRunner(name, next.collectors[name]!.config);
      ({ start: result.started, stop: result.stopped, restart: result.restarted })[change].push(name);
    }
    result.needRestart = plan.needRestart;
    const { added: dAdded, removed: dRemoved, reconnected: dReconnected } = result.destinations;
    const destinationsText = [
      dAdded.length ? `, destinations added [${dAdded.join(", ")}]` : "",
      dRemoved.length ? `, destinations removed [${dRemoved.join(", ")}]` : "",
      dReconnected.length ? `, destinations reconnected [${dReconnected.join(", ")}]` : "",
    ].join("");
    log.info(
      result,
      `config reloaded: started [${result.started.join(", ")}], stopped [${result.stopped.join(", ")}], restarted [${result.restarted.join(", ")}]${result.reconnected ? ", NATS reconnected" : ""}${destinationsText}`,
    );
    if (result.needRestart.length) log.warn({ keys: result.needRestart }, `config reload: ${result.needRestart.join(", ")} changed; these take effect on the next start`);
    // Destinations, collectors and health_interval may have changed: deadlines and problems with them.
    this.#healthChanged();
    return result;
  }

  /**
   * A reload removed destination `name` (routes no longer send to it): what
   * its queue holds is published or spooled, then it closes. Its spool stays
   * on disk and is replayed when a destination of that name comes back.
   */
  async #removeDestination(name: string): Promise<void> {
    const d = this.#destinations.get(name);
    if (!d) return;
    this.#destinations.delete(name);
    await d.finishQueue(false);
    const books = await d.close();
    this.#removedBooks.push({ name, ledger: d.ledger, books, spoolPath: d.spoolPath });
    this.#o.log.info({ destination: name, ...books }, `destination ${name} removed: ${books.published} event(s) published, ${books.in_spool} left in its spool ${d.spoolPath} (replayed if it comes back)`);
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
      routes: this.#routes.forCollector(name),
      subject: collectorSubject(cfg.nats.subject, name),
      maxEventBytes: MAX_EVENT_BYTES,
      arenaChunkBytes: this.#default.batchPolicy.arenaChunkBytes,
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
      quietChanged: this.#healthChanged,
    });
    this.#runners.set(name, runner);
    runner.start();
    this.#healthChanged();
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

  /** The collectors running now (not those removed by a reload). */
  runners(): Iterable<CollectorRunner> {
    return this.#runners.values();
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
      destinations: [...this.#destinations.values()].map((d) => ({
        name: d.name,
        nats: d.delivery.publisher.status(),
        spool: d.delivery.hasSpool,
        spoolProblem: d.delivery.spoolProblem(),
      })),
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
    const { config, log } = this.#o;
    const timeoutMs = config.orchestrator.shutdown_timeout.ms;
    const timer = setTimeout(() => this.#deadline.abort(), timeoutMs);
    const runners = [...this.#runners.values()];
    const destinations = [...this.#destinations.values()];
    log.info(
      { queued: sum(destinations, (d) => d.queue.length), spool_depth: sum(destinations, (d) => d.delivery.spoolDepth()) },
      `stopping ${runners.length} collector(s), then delivering what is queued and spooled (up to ${config.orchestrator.shutdown_timeout})`,
    );
    await Promise.all(runners.map((r) => r.stop(Math.min(COLLECTOR_STOP_TIMEOUT_MS, timeoutMs))));
    // Workers end when their queue is empty: each batch is published or spooled
    // (past the deadline, straight to the spool). Without a spool they give up at the deadline.
    // Destinations finish side by side: one that is down holds up only its own drain.
    await Promise.all(destinations.map((d) => d.finishQueue(true)));
    this.#monitor.stop();
    clearTimeout(timer);
    this.#deadline.abort();
    const closed = await Promise.all(destinations.map(async (d) => ({ name: d.name, ledger: d.ledger, books: await d.close(), spoolPath: d.spoolPath })));
    return closeBooks({
      destinations: [...closed, ...this.#removedBooks],
      failedCollectors: runners.filter((r) => r.failedRound).map((r) => r.name),
      log,
    });
  }

  status() {
    const destinations: Record<string, ReturnType<Destination["status"]>> = {};
    for (const d of this.#destinations.values()) destinations[d.name] = d.status();
    const q = this.queue;
    return {
      collectors: this.health.all().map((h) => h.snapshot()),
      queue: { length: q.length, bytes: q.bytes, utilization: q.utilization, waiting: q.waiting },
      delivery: this.delivery.status(),
      destinations,
      health: this.agentHealth(),
      publish_errors: Object.fromEntries(this.ledger.publishErrors),
    };
  }
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  let n = 0;
  for (const item of items) n += of(item);
  return n;
}

/**
 * Starts `publisher` and resolves with it once it is ready (connected,
 * authenticated, its stream checked); closes it and rejects with the reason
 * when it fails or is not ready within `timeout`.
 */
async function readyWithin(publisher: Publisher, timeout: Duration, destination: string): Promise<Publisher> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const notReady = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const { lastError } = publisher.status();
      const which = destination === DEFAULT_DESTINATION ? "the new NATS settings were" : `destination ${destination}: its new NATS settings were`;
      reject(new Error(`${which} not ready within nats.timeout (${timeout})${lastError ? `: ${lastError}` : ""}`));
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

/** The NATS settings of destination `name` in `config`. */
function natsOf(config: Config, name: string): NatsConfig {
  return name === DEFAULT_DESTINATION ? config.nats : config.destinations[name]!;
}

/** Closes what openDestination made for a destination that never started (a reload rolled back). */
function closeParts({ publisher, spool }: DestinationParts): void {
  void publisher.close().catch(() => {});
  try {
    spool?.close();
  } catch {
    // nothing was written to it
  }
}
