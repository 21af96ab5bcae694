// A CollectorContext that records what a collector does, for collector unit
// tests: the events it emits (validated and encoded exactly as the
// orchestrator would), its health reports and its parse errors.
import type { Collector, CollectorContext } from "../../src/orchestrator/collector.ts";
import type { CollectorEvent, EventInput } from "../../src/event/event.ts";
import { EventEncoder } from "../../src/event/encode.ts";
import { silentLogger } from "./silent-logger.ts";

export interface Recording {
  ctx: CollectorContext;
  /** the events as they would go on the wire */
  events: CollectorEvent[];
  degraded: string[];
  healthyCalls: number;
  parseErrors: Array<{ source: string; detail: string }>;
  /** the poll rounds done, as the orchestrator's poll metrics would see them */
  pollRounds: Array<{ wallSeconds: number; cpuSeconds: number }>;
  /** stops the collector (aborts ctx.signal) */
  stop(): void;
}

export function recordingContext(opts: { name?: string; once?: boolean } = {}): Recording {
  const name = opts.name ?? "test";
  const encoder = new EventEncoder(name, `tapio.events.${name}`, 1024 * 1024);
  const controller = new AbortController();
  const decoder = new TextDecoder();
  const rec: Recording = {
    events: [],
    degraded: [],
    healthyCalls: 0,
    parseErrors: [],
    pollRounds: [],
    stop: () => controller.abort(),
    ctx: {
      name,
      signal: controller.signal,
      once: opts.once ?? true,
      log: silentLogger(),
      // Encoding throws on an invalid event, so a test fails where a real run would drop it.
      emit: (input: EventInput) => {
        rec.events.push(JSON.parse(decoder.decode(encoder.encode(input).bytes)));
      },
      degraded: (reason) => rec.degraded.push(reason),
      healthy: () => rec.healthyCalls++,
      parseError: (source, detail) => rec.parseErrors.push({ source, detail }),
      pollRound: (wallSeconds, cpuSeconds) => rec.pollRounds.push({ wallSeconds, cpuSeconds }),
    },
  };
  return rec;
}

/** Runs one --once round of a collector and returns what it recorded. */
export async function runOnce(collector: Collector, name = "test"): Promise<Recording> {
  const rec = recordingContext({ name, once: true });
  await collector.run(rec.ctx);
  return rec;
}

/** Runs a long-lived collector until `stop`; `stop` resolves how long it took to return after being stopped. */
export function runInBackground(collector: Collector, name = "test"): { rec: Recording; stop(): Promise<number> } {
  const rec = recordingContext({ name, once: false });
  const done = collector.run(rec.ctx);
  return {
    rec,
    stop: async () => {
      const t0 = performance.now();
      rec.stop();
      await done;
      return performance.now() - t0;
    },
  };
}
