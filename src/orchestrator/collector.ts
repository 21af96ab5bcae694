// The contract between the orchestrator and a collector. The orchestrator knows
// collectors only through this file and the registry (src/collectors/index.ts).
import type * as v from "valibot";
import type { Logger } from "pino";
import type { EventInput } from "../event/event.ts";

export interface CollectorContext {
  /** the collector's configured name; events go to `<subject prefix>.<name>` */
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
  emit(event: EventInput): void | Promise<void>;
  /** Reports a problem that did not stop the collector (bad input, source missing): health becomes degraded. */
  degraded(reason: string): void;
  /** Clears a degraded state once the source works again. */
  healthy(): void;
  /**
   * Counts input the collector could not parse (truncated, empty, garbage),
   * logs it rate-limited, and lets the collector go on with the next input.
   */
  parseError(source: string, detail: string): void;
  /**
   * One poll round is done (src/collectors/common/poll.ts calls it): its wall
   * time and the process CPU time spent meanwhile, for the poll metrics.
   */
  pollRound(wallSeconds: number, cpuSeconds: number): void;
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
  /** type name, the key under `collectors:` in the config */
  readonly type: string;
  /** one line for `--help` and the README */
  readonly description: string;
  /** validates and fills defaults of `collectors.<type>.config` */
  readonly configSchema: v.GenericSchema<unknown, C>;
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
