// The contract between the orchestrator and a collector. The orchestrator knows
// collectors only through this file and the registry (src/collectors/index.ts).
import type * as v from "valibot";
import type { Logger } from "pino";
import type { EventInput } from "../event/event.ts";
import type { DropReason } from "../event/drop-reasons.ts";
import type { CollectorEvents } from "../event/declare.ts";

export interface EmitOptions {
  /**
   * NATS tokens put after the collector's subject: the event goes to
   * `<subject>.<suffix>` (ingest routes by sender). A collector may use at
   * most MAX_SUBJECT_SUFFIXES (src/event/encode.ts) distinct ones.
   */
  readonly subjectSuffix?: string;
}

/** One event of an all-or-nothing batch (emitAll). */
export interface Emission extends EmitOptions {
  readonly event: EventInput;
}

/** What became of an accepted event: undefined once published or spooled, else why it was dropped ("lost": the agent stopped with it in memory). */
export type EventFate = DropReason | "lost" | undefined;

export type EmitAllResult =
  /** every event is queued; with `fates` asked for, resolves once each is published, spooled or dropped (never rejects) */
  | { readonly status: "queued"; readonly fates?: Promise<EventFate[]> }
  /** event `index` can never be sent (too large, a bad subject suffix): nothing was queued */
  | { readonly status: "invalid"; readonly index: number; readonly message: string }
  /** the queue has no room for them all now (`never`: they outnumber its max_events): nothing was queued */
  | { readonly status: "full"; readonly never: boolean }
  /** the collector is stopping, or the queue closed: nothing was queued */
  | { readonly status: "stopped" };

export interface CollectorContext {
  /**
   * the instance's key under `collectors:`, TYPE or TYPE/NAME (`dns`,
   * `dns/external`); events go to `<subject prefix>.<type>[.<name>]` and carry it as `source`
   */
  readonly name: string;
  /** aborted when the collector must stop (shutdown, restart, removed by a reload) */
  readonly signal: AbortSignal;
  /** `--once`: do one round (poll once, read what is there), then return */
  readonly once: boolean;
  /** bound to `{ collector: name }`: lines need not (and must not) name the collector again */
  readonly log: Logger;
  /**
   * Hands one event to the orchestrator. Returns undefined when the event was
   * queued at once, or a promise when the queue is full: await it before
   * emitting more (backpressure). Events emitted without awaiting past the
   * collector's overflow allowance are dropped and counted, never silently.
   */
  emit(event: EventInput, options?: EmitOptions): void | Promise<void>;
  /**
   * Queues every event of `batch` at once, or none, and never waits: for a
   * collector that answers a sender (ingest), which must refuse a request
   * whole rather than block on a full queue. With buffer.when_full
   * drop_oldest the oldest queued events make room, as for emit. `fates`:
   * also tell what became of each event (published or spooled, or dropped
   * and why), in either buffer mode.
   */
  emitAll(batch: readonly Emission[], options?: { fates?: boolean }): EmitAllResult;
  /** Reports a problem that did not stop the collector (bad input, source missing): health becomes degraded. */
  degraded(reason: string): void;
  /** Clears a degraded state once the source works again. */
  healthy(): void;
  /**
   * Counts input the collector could not parse (truncated, empty, garbage),
   * logs it rate-limited, and lets the collector go on with the next input.
   */
  parseError(source: string, detail: string): void;
  /** Where the collector stopped in its source, kept across restarts (see CollectorState). */
  readonly state: CollectorState;
  /**
   * One poll round is done (src/collectors/common/poll.ts calls it): its wall
   * time and the process CPU time spent meanwhile, for the poll metrics.
   */
  pollRound(wallSeconds: number, cpuSeconds: number): void;
  /**
   * How the collector reads `source` now: `event` (the kernel tells it:
   * a blocking read, inotify, a PSI trigger, the proc connector) or `poll`
   * (it looks every interval), with why when it could not do better (no
   * permission, old kernel, cgroup v1). Shown in /status and logged when it changes.
   */
  sourceMode(source: string, mode: SourceMode, reason?: string): void;
}

export type SourceMode = "event" | "poll";

/**
 * One string per collector name, kept in the spool database across restarts
 * of the collector and of the agent, for a collector to resume its source
 * where it stopped. Without a spool nothing is kept (said once in the log).
 */
export interface CollectorState {
  /**
   * The value saved last, by this run or an earlier one; undefined if none
   * (or no spool). Call it before emitting: a save waits only for the events
   * emitted after the collector's first load() or save().
   */
  load(): string | undefined;
  /**
   * Keeps `value` once every event this collector emitted before the call is
   * durable (acknowledged by NATS, or written to the spool), in either
   * buffer.type; until then it waits, and a later save replaces it. So a value
   * never claims more than was delivered: after a crash the collector resumes
   * at or before the last event that got out, never after one that did not.
   * Events dropped by a drop policy or refused by NATS for good do not hold it back.
   */
  save(value: string): void;
}

/**
 * A running collector. `run` resolves when it is done: after one round in
 * `once` mode, or when `signal` aborts. A run that throws, rejects or returns
 * early while not stopping counts as a failure and is restarted with backoff.
 */
export interface Collector {
  run(ctx: CollectorContext): Promise<void>;
}

export interface CollectorFactory<C = unknown> {
  /** type name: the key under `collectors:` in the config is TYPE, or TYPE/NAME for one of several instances */
  readonly type: string;
  /** one line for `--help` and the README */
  readonly description: string;
  /** validates and fills defaults of `collectors.<type>.config`, and of each `collectors.<type>/<name>.config` */
  readonly configSchema: v.GenericSchema<unknown, C>;
  /**
   * The event types it emits and what each carries (its events.ts): the
   * published event schema is built from them. Every built-in collector
   * declares them; a factory made for a test need not.
   */
  readonly events?: CollectorEvents;
  /**
   * How long this collector may stay silent before health warns (issue: a
   * collector that stopped seeing its source); undefined for sources that
   * are quiet by nature (kernel OOMs, k8s events).
   */
  quietPeriodMs?(config: C): number | undefined;
  /**
   * What this collector reads (files, directories, HTTP endpoints), each
   * with a probe, for `tapio-collectors check`; left out by collectors
   * that read nothing outside the agent.
   */
  sources?(config: C): SourceCheck[];
  /**
   * True when a bare instance of this type also publishes below its subject
   * (`<nats.subject>.<type>.<suffix>`, e.g. one subject per sender): a named
   * instance of the type would share those subjects, so the config refuses
   * the bare key together with a named one.
   */
  readonly publishesBelow?: boolean;
  /**
   * How long a run may take to return once stopped, when it needs longer
   * than the orchestrator's usual limit (exec: its program's grace between
   * SIGTERM and SIGKILL); left out by collectors that stop at once.
   */
  stopTimeoutMs?(config: C): number;
  create(config: C): Collector;
}

/** One source a collector reads: `probe` resolves when it can be read, and rejects saying why not. */
export interface SourceCheck {
  /** what is read, as the operator configured it: a path or a URL */
  readonly source: string;
  probe(signal: AbortSignal): Promise<void>;
}

// Erases the config type so factories of different configs share a registry.
export type AnyCollectorFactory = CollectorFactory<any>;
