// Per-collector health: state, errors, restarts, and the delivery counters
// that the ledger (ledger.ts) writes and /status, the logs and metrics read.

export type CollectorState = "starting" | "running" | "degraded" | "failed" | "stopped";

export class CollectorHealth {
  #state: CollectorState = "starting";
  /** ms since epoch of the last accepted event */
  lastEventAt = 0;
  lastError: string | undefined;
  lastErrorAt = 0;
  restarts = 0;
  /** events accepted into the queue */
  accepted = 0;
  /** events confirmed by the publisher */
  published = 0;
  /** accepted events written to the spool (they are published later, or discarded) */
  spooled = 0;
  /**
   * accepted events dropped later (also in `dropped` by reason): NATS can
   * never take them, or a full queue or spool with a drop policy made room
   */
  discarded = 0;
  /** input the collector could not parse, by source */
  readonly parseErrors = new Map<string, number>();
  /** accepted events still in memory when the agent exited (only without a spool, or past the deadline) */
  lost = 0;
  /** drops by reason: before acceptance (queue_full, invalid_event, ...) and discards */
  readonly dropped = new Map<string, number>();
  /** how each source is read (event-driven or polled) and why, by source */
  readonly sources = new Map<string, { mode: "event" | "poll"; reason?: string }>();
  /** the runner that currently reports for this name */
  owner: unknown;

  /** `changed`: called when its state changes (the health monitor looks again) */
  constructor(
    readonly name: string,
    readonly changed?: () => void,
  ) {}

  get state(): CollectorState {
    return this.#state;
  }

  set state(state: CollectorState) {
    if (state === this.#state) return;
    this.#state = state;
    this.changed?.();
  }

  get droppedTotal(): number {
    let n = 0;
    for (const v of this.dropped.values()) n += v;
    return n;
  }

  error(message: string): void {
    this.lastError = message;
    this.lastErrorAt = Date.now();
  }

  snapshot(): CollectorHealthSnapshot {
    return {
      name: this.name,
      state: this.state,
      healthy: this.state === "running",
      last_event_time: this.lastEventAt ? new Date(this.lastEventAt).toISOString() : undefined,
      last_error: this.lastError,
      last_error_time: this.lastErrorAt ? new Date(this.lastErrorAt).toISOString() : undefined,
      restarts: this.restarts,
      events_emitted: this.accepted + this.droppedTotal - this.discarded,
      events_accepted: this.accepted,
      events_published: this.published,
      events_spooled: this.spooled,
      events_dropped: Object.fromEntries(this.dropped),
      parse_errors: Object.fromEntries(this.parseErrors),
      ...(this.sources.size > 0 && { sources: Object.fromEntries(this.sources) }),
    };
  }
}

export interface CollectorHealthSnapshot {
  name: string;
  state: CollectorState;
  healthy: boolean;
  last_event_time: string | undefined;
  last_error: string | undefined;
  last_error_time: string | undefined;
  restarts: number;
  /** everything the collector emitted: accepted, or dropped before acceptance */
  events_emitted: number;
  events_accepted: number;
  events_published: number;
  events_spooled: number;
  events_dropped: Record<string, number>;
  parse_errors: Record<string, number>;
  /** how each source is read: `event` or `poll`, with the reason it is not event-driven (absent for collectors that report none) */
  sources?: Record<string, { mode: "event" | "poll"; reason?: string }>;
}

/** Health of every collector that ran since start, by configured name. */
export class HealthTracker {
  readonly #collectors = new Map<string, CollectorHealth>();
  /** called when a collector's state changes */
  onChange: (() => void) | undefined;
  readonly #changed = () => this.onChange?.();

  /** The record for `name`, kept across restarts and re-registration so counters add up. */
  collector(name: string): CollectorHealth {
    let h = this.#collectors.get(name);
    if (!h) {
      h = new CollectorHealth(name, this.#changed);
      this.#collectors.set(name, h);
    }
    return h;
  }

  all(): CollectorHealth[] {
    return [...this.#collectors.values()];
  }
}
