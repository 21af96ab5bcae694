// One place events go (issue 15): a NATS cluster with its own queue,
// workers, publisher, circuit breakers, spool and ledger, so that one
// destination down or slow never holds up another: its events wait in its
// own queue and spool, never in another's. `default` is the `nats:` section
// with `spool.path`; each of `destinations:` has its own spool file beside
// that one (spoolPathOf).
import { basename, dirname, extname, join } from "node:path";
import type { Logger } from "pino";
import type { Config, NatsConfig } from "../config/schema.ts";
import type { Publisher } from "../publish/publisher.ts";
import { BatchPolicy } from "../publish/batch-policy.ts";
import type { Spool } from "../spool/spool.ts";
import type { SpoolError } from "../spool/errors.ts";
import { CircuitBreakers } from "../delivery/circuit.ts";
import { Delivery } from "../delivery/delivery.ts";
import { EventQueue } from "./queue.ts";
import { DeliveryLedger } from "./ledger.ts";
import type { HealthTracker } from "./health.ts";
import type { CommitWaiters } from "./commit-waiters.ts";
import type { CollectorStates } from "./collector-state.ts";
import { startWorkers } from "./workers.ts";
import { eventSubject } from "./instance.ts";
import { countLeftInQueue } from "./shutdown.ts";

import { DEFAULT_DESTINATION } from "../routing/schema.ts";

export { DEFAULT_DESTINATION };

/**
 * Where a destination's spool lives: `spool.path` for default; for the
 * others the same folder and name with `.<destination>` before the
 * extension (spool.db -> spool.central.db). One SQLite file each: a
 * destination's spool is locked, filled, replayed and (if corrupt) set aside
 * on its own, and a removed destination's file stays untouched on disk until
 * it comes back under its name.
 */
export function spoolPathOf(spoolPath: string, destination: string): string {
  if (destination === DEFAULT_DESTINATION) return spoolPath;
  const ext = extname(spoolPath);
  return join(dirname(spoolPath), `${basename(spoolPath, ext)}.${destination}${ext}`);
}

/** The destination a spool file beside `spoolPath` belongs to (spool.central.db -> central), or undefined. */
export function destinationOfSpoolFile(spoolPath: string, file: string): string | undefined {
  const ext = extname(spoolPath);
  const stem = basename(spoolPath, ext);
  if (!file.startsWith(`${stem}.`) || !file.endsWith(ext) || file.length <= stem.length + 1 + ext.length) return undefined;
  const name = file.slice(stem.length + 1, file.length - ext.length);
  if (!/^[a-z0-9_-]+$/.test(name) || name === DEFAULT_DESTINATION) return undefined;
  // Without an extension, SQLite's files beside spool.central (spool.central-wal, -shm) look like
  // spools of "central-wal": opened as one, the WAL would be found corrupt and moved aside.
  if (ext === "" && SQLITE_SIDECARS.some((suffix) => name.endsWith(suffix))) return undefined;
  return name;
}

/** The files SQLite keeps beside a database file, by suffix. */
const SQLITE_SIDECARS = ["-wal", "-shm", "-journal"];

export interface DestinationParts {
  publisher: Publisher;
  /** its opened spool, when spool.enabled */
  spool?: Spool;
  /** spool.enabled, but its spool could not be opened */
  spoolUnavailable?: SpoolError;
}

export interface DestinationOptions extends DestinationParts {
  name: string;
  nats: NatsConfig;
  /** orchestrator.* and spool.* as at start (read once) */
  config: Config;
  health: HealthTracker;
  commits: CommitWaiters;
  states: CollectorStates;
  emitsWaitForCommit: boolean;
  log: Logger;
  /** the agent's shutdown deadline */
  deadline: AbortSignal;
  onFatal?: (err: Error) => void;
  onHandoff?: (seconds: number) => void;
  /** what its health reads changed ("now"), or should be looked at again within a second ("soon"): see HealthMonitor.changed */
  healthChanged?: (when: "now" | "soon") => void;
  onBatchDone?: (seconds: number) => void;
}

/** A destination's own books at the end: accepted + inherited = published + discarded + in_spool + lost. */
export interface DestinationBooks {
  accepted: number;
  inherited: number;
  published: number;
  discarded: number;
  in_spool: number;
  lost: number;
}

export class Destination {
  readonly name: string;
  readonly queue: EventQueue;
  readonly breakers: CircuitBreakers;
  readonly delivery: Delivery;
  readonly ledger: DeliveryLedger;
  readonly spoolPath: string;
  readonly #o: DestinationOptions;
  readonly #spool: Spool | undefined;
  /** aborted by the agent's deadline, or when this destination is removed */
  readonly #deadline = new AbortController();
  #nats: NatsConfig;
  #policy: BatchPolicy;
  #workers: Promise<void>[] = [];
  #closed: Promise<DestinationBooks> | undefined;

  constructor(options: DestinationOptions) {
    this.#o = options;
    this.name = options.name;
    this.#nats = options.nats;
    this.#policy = new BatchPolicy(options.nats.batch);
    this.#spool = options.spool;
    const { orchestrator, spool } = options.config;
    this.spoolPath = spoolPathOf(spool.path, options.name);
    this.queue = new EventQueue(orchestrator.buffer.max_events, orchestrator.buffer.max_bytes);
    this.ledger = new DeliveryLedger(options.health);
    const log = options.log;
    const where = options.name === DEFAULT_DESTINATION ? "" : ` (destination ${options.name})`;
    const cb = options.nats.circuit_breaker;
    this.breakers = new CircuitBreakers({
      failureThreshold: cb.failure_threshold,
      openForMs: cb.open_for.ms,
      probeTimeoutMs: cb.probe_timeout.ms,
      onChange: (subject, from, to, reason) => {
        (to === "open" ? log.warn : log.info).call(log, { subject, from, to, reason }, `circuit for ${subject}${where} ${to.replace("_", "-")}: ${reason}`);
        // Healthy or not: open and half-open are both problems, sampled while degraded.
        if (from === "closed" || to === "closed") options.healthChanged?.("now");
      },
    });
    const abort = () => this.#deadline.abort();
    if (options.deadline.aborted) abort();
    else options.deadline.addEventListener("abort", abort, { once: true });
    this.delivery = new Delivery({
      publisher: options.publisher,
      spool: options.spool,
      spoolUnavailable: options.spoolUnavailable,
      spoolPath: this.spoolPath,
      bufferType: orchestrator.buffer.type,
      spillAfterMs: spool.spill_after.ms,
      breakers: this.breakers,
      ledger: this.ledger,
      log,
      deadline: this.#deadline.signal,
      drainBatch: orchestrator.batch_size,
      subjectPrefix: () => this.#nats.subject,
      onFatal: (err) => options.onFatal?.(err),
      onHandoff: options.onHandoff,
      settled: (events) => options.states.settled(events),
      commits: options.commits,
      healthChanged: options.healthChanged,
    });
  }

  get nats(): NatsConfig {
    return this.#nats;
  }

  /** nats.batch as configured now (the workers read it before each batch) */
  get batchPolicy(): BatchPolicy {
    return this.#policy;
  }

  /** The publisher's settings changed on reload (the caller swapped the publisher): subject, batch. */
  set nats(next: NatsConfig) {
    this.#nats = next;
    this.#policy = new BatchPolicy(next.batch);
  }

  /** Where an event of `collector` goes here: `<subject>.<collector>[.<suffix>]`. */
  subjectOf(collector: string, suffix: string | null | undefined): string {
    return eventSubject(this.#nats.subject, collector, suffix);
  }

  /** events found in its spool at start */
  get inherited(): number {
    return this.delivery.inherited;
  }

  start(): void {
    const { config, commits, emitsWaitForCommit, log, onBatchDone } = this.#o;
    this.delivery.start();
    this.#workers = startWorkers(config.orchestrator.workers, {
      queue: this.queue,
      delivery: this.delivery,
      batchSize: config.orchestrator.batch_size,
      policy: () => this.#policy,
      onBatchDone,
      commits,
      emitsWaitForCommit,
      log,
      deadline: this.#deadline.signal,
    });
  }

  /**
   * No more events come (collectors stopped, or this destination was
   * removed): the workers deliver what is queued (published, or spooled) and
   * end. Then, unless `drainSpool` is false, the spool is replayed until it
   * is empty or the deadline passes.
   */
  async finishQueue(drainSpool: boolean): Promise<void> {
    this.queue.close();
    await Promise.all(this.#workers);
    if (drainSpool) await this.delivery.drained();
  }

  /** Ends the deadline of this destination alone (a removed one): the drainer and publishes under way stop. */
  abort(): void {
    this.#deadline.abort();
  }

  /**
   * Closes it once its queue is finished and its deadline passed: the
   * drainer ends, the publisher and the spool close; what is still queued is
   * counted lost. Resolves with its books. Safe to call twice.
   */
  close(): Promise<DestinationBooks> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<DestinationBooks> {
    const { log, commits } = this.#o;
    this.#deadline.abort();
    await this.delivery.stopped();
    await this.delivery.publisher.close().catch((err: Error) => log.warn({ err: err.message, destination: this.name }, "closing the publisher failed"));
    await countLeftInQueue(this.queue, this.ledger, commits);
    const inSpool = this.delivery.spoolDepth();
    try {
      this.#spool?.close();
    } catch (err) {
      // What the spool holds is committed; a failed close must not cost the final accounts.
      log.error({ err: (err as Error).message, path: this.spoolPath }, `closing the spool failed: ${(err as Error).message}`);
    }
    return this.books(inSpool);
  }

  /** Its books now, with `inSpool` events waiting in its spool. */
  books(inSpool = this.delivery.spoolDepth()): DestinationBooks {
    const t = this.ledger.totals();
    return { accepted: t.accepted, inherited: this.inherited, published: t.published, discarded: t.discarded, in_spool: inSpool, lost: t.lost };
  }

  status() {
    const q = this.queue;
    return {
      ...this.delivery.status(),
      queue: { length: q.length, bytes: q.bytes, utilization: q.utilization, waiting: q.waiting },
      ledger: this.books(),
      publish_errors: Object.fromEntries(this.ledger.publishErrors),
    };
  }
}
