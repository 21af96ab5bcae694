// A CollectorContext that records what a collector does, for collector unit
// tests: the events it emits (validated and encoded exactly as the
// orchestrator would, then checked against the published event schema), its
// health reports, its parse errors and what it saves in ctx.state (kept in
// memory here, each save at once).
import type { Collector, CollectorContext } from "../../src/orchestrator/collector.ts";
import type { CollectorEvent, EventInput } from "../../src/event/event.ts";
import { EventEncoder, InvalidEventError } from "../../src/event/encode.ts";
import { silentLogger } from "./silent-logger.ts";
import { expectPublishedSchema } from "./event-schema.ts";

export interface Recording {
  ctx: CollectorContext;
  /** the events as they would go on the wire */
  events: CollectorEvent[];
  /** the subject of each event, in the same order */
  subjects: string[];
  degraded: string[];
  healthyCalls: number;
  parseErrors: Array<{ source: string; detail: string }>;
  /** every value saved in ctx.state, in order; load() returns the last (or `saved` as given) */
  saves: string[];
  /** the poll rounds done, as the orchestrator's poll metrics would see them */
  pollRounds: Array<{ wallSeconds: number; cpuSeconds: number }>;
  /** how each source is read, as reported last (ctx.sourceMode) */
  sourceModes: Map<string, { mode: "event" | "poll"; reason?: string }>;
  /** stops the collector (aborts ctx.signal) */
  stop(): void;
}

export function recordingContext(opts: { name?: string; once?: boolean; saved?: string } = {}): Recording {
  const name = opts.name ?? "test";
  const encoder = new EventEncoder(name, `tapio.events.${name}`, 1024 * 1024);
  const controller = new AbortController();
  const decoder = new TextDecoder();
  // Every event a collector test makes is one a consumer could receive: it must hold to the published schema.
  const record = (bytes: Uint8Array, subject: string) => {
    const event = JSON.parse(decoder.decode(bytes));
    expectPublishedSchema(event);
    rec.events.push(event);
    rec.subjects.push(subject);
  };
  const rec: Recording = {
    events: [],
    subjects: [],
    degraded: [],
    healthyCalls: 0,
    parseErrors: [],
    saves: [],
    pollRounds: [],
    sourceModes: new Map(),
    stop: () => controller.abort(),
    ctx: {
      name,
      signal: controller.signal,
      once: opts.once ?? true,
      log: silentLogger(),
      // Encoding throws on an invalid event, so a test fails where a real run would drop it.
      emit: (input: EventInput, options) => {
        const event = encoder.encode(input, options?.subjectSuffix);
        record(event.bytes, event.subject);
      },
      // All or none, as the runner does; every event counts as published at once.
      emitAll: (batch, options) => {
        const encoded = [];
        for (let i = 0; i < batch.length; i++) {
          try {
            encoded.push(encoder.encode(batch[i]!.event, batch[i]!.subjectSuffix));
          } catch (err) {
            if (err instanceof InvalidEventError) return { status: "invalid", index: i, message: err.message };
            throw err;
          }
        }
        for (const event of encoded) record(event.bytes, event.subject);
        return { status: "queued", fates: options?.fates ? Promise.resolve(encoded.map(() => undefined)) : undefined };
      },
      degraded: (reason) => rec.degraded.push(reason),
      healthy: () => rec.healthyCalls++,
      sourceMode: (source, mode, reason) => void rec.sourceModes.set(source, reason === undefined ? { mode } : { mode, reason }),
      parseError: (source, detail) => rec.parseErrors.push({ source, detail }),
      state: {
        load: () => rec.saves.at(-1) ?? opts.saved,
        save: (value) => void rec.saves.push(value),
      },
      pollRound: (wallSeconds, cpuSeconds) => rec.pollRounds.push({ wallSeconds, cpuSeconds }),
    },
  };
  return rec;
}

/** Runs one --once round of a collector and returns what it recorded. */
export async function runOnce(collector: Collector, name = "test", saved?: string): Promise<Recording> {
  const rec = recordingContext({ name, once: true, saved });
  await collector.run(rec.ctx);
  return rec;
}

/** Runs a long-lived collector until `stop`; `stop` resolves how long it took to return after being stopped. */
export function runInBackground(collector: Collector, name = "test", saved?: string): { rec: Recording; stop(): Promise<number> } {
  const rec = recordingContext({ name, once: false, saved });
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
