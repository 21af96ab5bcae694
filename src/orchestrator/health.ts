// Per-collector health and delivery counters: what /status, the logs and
// (later) metrics read. Plain counters, updated in place on the hot path.

export type CollectorState = "starting" | "running" | "degraded" | "failed" | "stopped";

export class CollectorHealth {
  state: CollectorState = "starting";
  /** ms since epoch of the last accepted event */
  lastEventAt = 0;
  lastError: string | undefined;
  lastErrorAt = 0;
  restarts = 0;
  /** events accepted into the queue */
  accepted = 0;
  /** events confirmed by the publisher */
  published = 0;
  /** accepted events the publisher dropped because NATS can never take them (also in `dropped`) */
  rejected = 0;
  /** drops by reason: before acceptance (queue_full, invalid_event, ...) and rejections */
  readonly dropped = new Map<string, number>();

  constructor(readonly name: string) {}

  get droppedTotal(): number {
    let n = 0;
    for (const v of this.dropped.values()) n += v;
    return n;
  }

  drop(reason: string, count = 1): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + count);
  }

  /** An accepted event that NATS can never take. */
  reject(reason: string): void {
    this.rejected++;
    this.drop(reason);
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
      events_emitted: this.accepted + this.droppedTotal - this.rejected,
      events_accepted: this.accepted,
      events_published: this.published,
      events_dropped: Object.fromEntries(this.dropped),
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
  events_dropped: Record<string, number>;
}

/** Health of every collector that ran since start, by configured name. */
export class HealthTracker {
  readonly #collectors = new Map<string, CollectorHealth>();

  /** The record for `name`, kept across restarts and re-registration so counters add up. */
  collector(name: string): CollectorHealth {
    let h = this.#collectors.get(name);
    if (!h) {
      h = new CollectorHealth(name);
      this.#collectors.set(name, h);
    }
    return h;
  }

  all(): CollectorHealth[] {
    return [...this.#collectors.values()];
  }

  /** Every accepted event is published, rejected, or still in the agent: accepted = published + rejected + in flight. */
  totals(): { accepted: number; published: number; rejected: number; dropped: number } {
    let accepted = 0, published = 0, rejected = 0, dropped = 0;
    for (const h of this.#collectors.values()) {
      accepted += h.accepted;
      published += h.published;
      rejected += h.rejected;
      dropped += h.droppedTotal;
    }
    return { accepted, published, rejected, dropped };
  }
}
