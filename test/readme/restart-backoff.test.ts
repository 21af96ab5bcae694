// The README's orchestrator.restart_backoff: the delay before restarting a
// failed collector doubles on each failure in a row up to `max`, and a run
// that lasted longer than `max` starts the doubling over; each restart is
// logged as "collector X failed: ...; restarting in Nms" and counted in
// orchestrator_collector_restarts_total.
import { afterEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import pino from "pino";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../src/orchestrator/collector.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { AgentMetrics } from "../../src/metrics/metrics.ts";
import { HttpServer } from "../../src/http/server.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { waitFor } from "../helpers/wait-for.ts";

const INITIAL_MS = 40;
const MAX_MS = 320;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A collector whose run number `attempt` does what `plan` says. */
function scripted(plan: (attempt: number, ctx: CollectorContext) => Promise<void>): CollectorFactory {
  let attempt = 0;
  return { type: "flaky", description: "flaky", configSchema: v.optional(v.any(), {}), create: (): Collector => ({ run: (ctx) => plan(attempt++, ctx) }) };
}

describe("README restart_backoff", () => {
  test("the delay doubles on each failure in a row up to max; a run longer than max starts over at initial; restarts are counted", async () => {
    const LONG_RUN = 5;
    const factory = scripted(async (attempt, ctx) => {
      // The run's length is what is under test here, not a wait for something.
      if (attempt === LONG_RUN) await Bun.sleep(MAX_MS + 200);
      if (attempt <= LONG_RUN + 1) throw new Error(`boom ${attempt}`);
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    });
    const registry = builtinRegistry().register(factory);
    const config = configFrom(`orchestrator: { restart_backoff: { initial: ${INITIAL_MS}ms, max: ${MAX_MS}ms } }\ncollectors:\n  flaky: {}\n`, registry);
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const orch = new Orchestrator({ config, registry, publisher: new MemoryPublisher(), log });
    const build = { version: "0.0.0-test", bun: Bun.version };
    const http = new HttpServer({ config: { ...config.http, listen: "127.0.0.1:0" }, orchestrator: orch, metrics: new AgentMetrics(orch, build), log, build });
    cleanups.push(() => orch.stop(), () => http.stop());
    orch.start();
    await waitFor(() => orch.health.collector("flaky").restarts === LONG_RUN + 2, "7 restarts", 10_000);

    const restarts = lines.filter((l) => l.msg.startsWith("collector flaky failed: "));
    expect(restarts.map((l) => l.msg)).toEqual(restarts.map((l, i) => `collector flaky failed: boom ${i}; restarting in ${l.retry_in_ms}ms`));
    // Equal jitter: each delay lies in the upper half of its step.
    const steps = [INITIAL_MS, 2 * INITIAL_MS, 4 * INITIAL_MS, MAX_MS, MAX_MS, INITIAL_MS, 2 * INITIAL_MS];
    expect(restarts.map((l, i) => l.retry_in_ms >= Math.floor(steps[i]! / 2) && l.retry_in_ms <= steps[i]!)).toEqual(steps.map(() => true));
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(metrics).toContain(`orchestrator_collector_restarts_total{collector="flaky"} ${LONG_RUN + 2}`);
  });
});
