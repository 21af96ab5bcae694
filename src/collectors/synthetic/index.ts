// A load generator, like Vector's demo source: for tests, benchmarks and demos.
import type { EventInput } from "../../event/event.ts";
import { EventEncoder } from "../../event/encode.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { syntheticConfigSchema, type SyntheticConfig } from "./schema.ts";
import { syntheticEvents } from "./events.ts";

/**
 * Emitting is paced in ticks rather than per event (no per-event timers),
 * about 8 events a tick, between 1 ms and 1 s: bursts stay small, so an
 * event does not wait long behind the rest of its tick, and at a low rate
 * the agent wakes once for several events, not once for each (every wakeup
 * costs a core about as much as the work of an event).
 */
function tickMs(rate: number): number {
  return Math.min(1000, Math.max(1, (8 * 1000) / rate));
}
/** At rate 0, yield to the event loop this often so I/O keeps flowing. */
const YIELD_EVERY = 512;
/** What one event weighs besides its padding, measured with the real encoder. */
function envelopeBytes(config: SyntheticConfig, name: string): number {
  const sample = new EventEncoder(name, name, Number.MAX_SAFE_INTEGER).encode({
    type: config.type,
    severity: config.severity,
    event_data: { custom: { seq: "0000000", padding: "" } },
  });
  return sample.bytes.byteLength;
}

export class SyntheticCollector implements Collector {
  constructor(readonly config: SyntheticConfig) {}

  async run(ctx: CollectorContext): Promise<void> {
    const { rate, count, type, severity } = this.config;
    const padding = "x".repeat(Math.max(0, this.config.payload_bytes - envelopeBytes(this.config, ctx.name)));
    const total = count > 0 ? count : ctx.once ? (rate > 0 ? Math.ceil(rate) : 1000) : Infinity;
    let seq = 0;
    const next = (): EventInput => ({
      type,
      severity,
      event_data: { custom: { seq: String(seq++), padding } },
    });

    if (rate === 0) {
      while (seq < total && !ctx.signal.aborted) {
        const wait = ctx.emit(next());
        if (wait) await wait;
        else if (seq % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      }
      return this.#idle(ctx);
    }

    const startedAt = performance.now();
    const tick = tickMs(rate);
    while (seq < total && !ctx.signal.aborted) {
      const due = Math.min(total, Math.floor(((performance.now() - startedAt) / 1000) * rate));
      while (seq < due && !ctx.signal.aborted) {
        const wait = ctx.emit(next());
        if (wait) await wait;
      }
      // Below one event a tick, sleep until the next one is due rather than wake for nothing.
      if (seq < total) await Bun.sleep(Math.max(tick, startedAt + ((seq + 1) / rate) * 1000 - performance.now()));
    }
    return this.#idle(ctx);
  }

  /** After `count` events a long-running collector stays up (idle) until stopped. */
  async #idle(ctx: CollectorContext): Promise<void> {
    if (ctx.once || ctx.signal.aborted) return;
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
  }
}

export const syntheticFactory: CollectorFactory<SyntheticConfig> = {
  type: "synthetic",
  events: syntheticEvents,
  description: "load generator: emits events at a rate, up to a count, of a given size",
  configSchema: syntheticConfigSchema,
  create: (config) => new SyntheticCollector(config),
};
