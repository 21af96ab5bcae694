// The README's "How it works" on the runner: a collector that ignores
// backpressure may have 1,024 events waiting, then its events are dropped,
// counted and logged (rate-limited); one that ignores its stop signal is
// abandoned after 5 s.
import { afterEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import pino from "pino";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../src/orchestrator/collector.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

function collector(type: string, run: (ctx: CollectorContext) => Promise<void>): CollectorFactory {
  return { type, description: type, configSchema: v.optional(v.any(), {}), create: (): Collector => ({ run }) };
}

function agent(yaml: string, factory: CollectorFactory, publisher = new MemoryPublisher()) {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const registry = builtinRegistry().register(factory);
  const orch = new Orchestrator({ config: configFrom(yaml, registry), registry, publisher, log });
  running.push(orch);
  return { orch, lines, publisher };
}

describe("README: the runner", () => {
  test("a collector that ignores backpressure has at most 1,024 events waiting; the rest are dropped, counted and logged rate-limited", async () => {
    const FLOOD = 5000;
    const flood = collector("flood", async (ctx) => {
      for (let i = 0; i < FLOOD; i++) void ctx.emit({ type: "flood", severity: "low", event_data: {} });
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    });
    const publisher = new MemoryPublisher();
    publisher.stalled = true;
    const { orch, lines } = agent("orchestrator: { workers: 1, buffer_size: 100, shutdown_timeout: 500ms }\nnats: { mode: core }\ncollectors:\n  flood: {}\n", flood, publisher);
    orch.start();
    const h = () => orch.health.collector("flood");
    await waitFor(() => h().accepted + (h().dropped.get("queue_full") ?? 0) === FLOOD, "every flood event accepted or dropped");
    // Accepted: what the queue and a worker's batch held, plus 1,024 waiting; the rest dropped.
    expect(FLOOD - h().dropped.get("queue_full")! - h().accepted).toBe(0);
    expect(h().accepted).toBeLessThanOrEqual(100 + 100 + 1024);
    expect(h().accepted).toBeGreaterThanOrEqual(100 + 1024);
    const warnings = lines.filter((l) => l.msg.startsWith("collector flood ignores backpressure: queue full and 1024 events already waiting"));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatchObject({ level: 40, reason: "queue_full" });
  });

  test("a collector that ignores its stop signal is abandoned after 5 s", async () => {
    const hung = collector("hung", () => new Promise<void>(() => {}));
    const { orch, lines } = agent("orchestrator: { shutdown_timeout: 30s }\nnats: { mode: core }\ncollectors:\n  hung: {}\n", hung);
    orch.start();
    await waitFor(() => orch.health.collector("hung").state === "running", "the hung collector running");
    const t0 = Date.now();
    await orch.stop();
    const took = Date.now() - t0;
    expect(lines.some((l) => l.msg === "collector hung did not stop within 5000ms; abandoning it")).toBe(true);
    expect(took).toBeGreaterThanOrEqual(5000);
    expect(took).toBeLessThan(10_000);
  }, 20_000);
});
