import { afterEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import pino from "pino";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../src/orchestrator/collector.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { OVERFLOW_ALLOWANCE } from "../../src/orchestrator/runner.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { Duration } from "../../src/config/duration.ts";
import { waitFor } from "../helpers/wait-for.ts";

// Test collectors: each behaviour a real collector might show.
const anyConfig = v.optional(v.any(), {});
function factory(type: string, run: (ctx: CollectorContext, attempt: number) => Promise<void>): CollectorFactory {
  let attempt = 0;
  return { type, description: type, configSchema: anyConfig, create: (): Collector => ({ run: (ctx) => run(ctx, attempt++) }) };
}
const untilAborted = (ctx: CollectorContext) =>
  new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
async function emitN(ctx: CollectorContext, n: number, type = "test.event") {
  for (let i = 0; i < n; i++) {
    const wait = ctx.emit({ type, severity: "info", event_data: { custom: { i: String(i) } } });
    if (wait) await wait;
  }
}

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

function setup(yaml: string, extra: CollectorFactory[] = [], publisher = new MemoryPublisher(), once = false) {
  const registry = builtinRegistry();
  for (const f of extra) registry.register(f);
  const config = configFrom(yaml, registry);
  const orch = new Orchestrator({ config, registry, publisher, log: silentLogger(), once });
  running.push(orch);
  return { orch, publisher, config, registry };
}

const BASE = `
orchestrator:
  workers: 2
  shutdown_timeout: 2s
  restart_backoff: { initial: 20ms, max: 200ms }
nats:
  mode: core
`;

describe("Orchestrator", () => {
  test("--once: synthetic count N is delivered exactly, with the event shape on the wire", async () => {
    const { orch, publisher } = setup(`${BASE}
collectors:
  synthetic: { config: { count: 2500, rate: 0, payload_bytes: 300 } }
`, [], new MemoryPublisher(), true);
    orch.start();
    await orch.roundsDone();
    const report = await orch.stop();
    expect(report).toMatchObject({ accepted: 2500, published: 2500, dropped: 0, inSpool: 0, lost: 0, unaccounted: 0 });
    const events = publisher.decoded();
    expect(events.length).toBe(2500);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(2500);
    const first = events[0]!;
    expect(Object.keys(first)).toEqual(["event_id", "timestamp", "type", "source", "severity", "event_data", "metadata"]);
    expect(first.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(first.source).toBe("synthetic");
    expect(first.metadata.attributes.collector_name).toBe("synthetic");
    expect(publisher.events[0]!.subject).toBe("tapio.events.synthetic");
    expect(publisher.events[0]!.id).toBe(first.event_id);
    // payload_bytes is approximate: within 10%.
    expect(Math.abs(publisher.events[0]!.bytes.byteLength - 300)).toBeLessThan(30);
    expect(events.map((e) => Number(e.event_data.custom.seq))).toEqual([...Array(2500).keys()]);
  });

  test("a collector that throws is restarted with backoff; the others keep publishing", async () => {
    const flaky = factory("flaky", async (ctx, attempt) => {
      await emitN(ctx, 1, "flaky.event");
      if (attempt < 3) throw new Error(`boom ${attempt}`);
      await untilAborted(ctx);
    });
    const { orch, publisher } = setup(`${BASE}
collectors:
  flaky: {}
  synthetic: { config: { rate: 500 } }
`, [flaky]);
    orch.start();
    await waitFor(() => orch.health.collector("flaky").restarts === 3 && orch.health.collector("flaky").state === "running");
    const h = orch.health.collector("flaky").snapshot();
    expect(h.last_error).toBe("boom 2");
    expect(orch.health.collector("synthetic").snapshot()).toMatchObject({ state: "running", restarts: 0 });
    await waitFor(() => publisher.events.filter((e) => e.collector === "synthetic").length > 100);
    const report = await orch.stop();
    expect(report.lost).toBe(0);
    expect(publisher.events.filter((e) => e.collector === "flaky").length).toBe(4);
  });

  test("instances of one type fail and restart on their own: each has its own health, restarts and backoff", async () => {
    const crashy: CollectorFactory<{ fail: boolean }> = {
      type: "crashy",
      description: "fails when told to",
      configSchema: v.object({ fail: v.optional(v.boolean(), false) }),
      create: (config) => ({
        run: async (ctx) => {
          await emitN(ctx, 1, "crashy.event");
          if (config.fail) throw new Error(`${ctx.name} fails`);
          await untilAborted(ctx);
        },
      }),
    };
    const { orch, publisher } = setup(`${BASE}
collectors:
  crashy/bad: { config: { fail: true } }
  crashy/good: {}
`, [crashy]);
    orch.start();
    await waitFor(() => orch.health.collector("crashy/bad").restarts >= 2);
    expect(orch.health.collector("crashy/bad").snapshot()).toMatchObject({ last_error: "crashy/bad fails" });
    expect(orch.health.collector("crashy/good").snapshot()).toMatchObject({ state: "running", restarts: 0, last_error: undefined, events_published: 1 });
    expect(orch.agentHealth().problems.some((p) => p.includes("crashy/bad"))).toBe(true);
    expect(orch.agentHealth().problems.some((p) => p.includes("crashy/good"))).toBe(false);
    await orch.stop();
    expect(publisher.events.filter((e) => e.collector === "crashy/good")).toHaveLength(1);
    // one event per run: the first and each restart that ran before the stop
    expect(publisher.events.filter((e) => e.collector === "crashy/bad").length).toBeGreaterThanOrEqual(2);
  });

  test("a rejected promise and an early return are failures too", async () => {
    const rejecting = factory("rejecting", (_ctx, attempt) => (attempt === 0 ? Promise.reject(new Error("rejected")) : untilAborted(_ctx)));
    const ending = factory("ending", async (ctx, attempt) => (attempt === 0 ? undefined : untilAborted(ctx)));
    const { orch } = setup(`${BASE}
collectors: { rejecting: {}, ending: {} }
`, [rejecting, ending]);
    orch.start();
    await waitFor(() => orch.health.collector("rejecting").restarts === 1 && orch.health.collector("ending").restarts === 1);
    expect(orch.health.collector("rejecting").lastError).toBe("rejected");
    expect(orch.health.collector("ending").lastError).toBe("run() ended while the agent was running");
    await waitFor(() => orch.health.collector("ending").state === "running");
  });

  test("a collector that hangs and ignores stop is abandoned; shutdown still drains the others", async () => {
    const hung = factory("hung", () => new Promise<void>(() => {}));
    const { orch, publisher } = setup(`${BASE.replace("shutdown_timeout: 2s", "shutdown_timeout: 200ms")}
collectors:
  hung: {}
  synthetic: { config: { count: 300, rate: 0 } }
`, [hung]);
    orch.start();
    await waitFor(() => publisher.events.length === 300);
    const t0 = Date.now();
    const report = await orch.stop();
    // Abandoned after shutdown_timeout (200 ms), well before the 5 s a collector gets otherwise; the
    // margin is for a busy machine, not a window the timing must hit.
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(report).toMatchObject({ published: 300, inSpool: 0, lost: 0, unaccounted: 0 });
    expect(orch.health.collector("hung").state).toBe("stopped");
  });

  test("backpressure: a collector that awaits emit is slowed down, never dropped", async () => {
    const publisher = new MemoryPublisher();
    publisher.delayMs = 2;
    const { orch } = setup(`
orchestrator: { workers: 1, buffer_size: 50, shutdown_timeout: 10s }
nats: { mode: core, max_in_flight: 10 }
collectors:
  synthetic: { config: { count: 2000, rate: 0 } }
`, [], publisher, true);
    orch.start();
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, orch.queue.length)), 1);
    await orch.roundsDone();
    const report = await orch.stop();
    clearInterval(sampler);
    expect(report).toMatchObject({ accepted: 2000, published: 2000, dropped: 0, inSpool: 0, lost: 0, unaccounted: 0 });
    expect(maxQueued).toBeLessThanOrEqual(50);
  });

  test("a flooding collector that ignores backpressure is bounded and counted; others still get through", async () => {
    const flood = factory("flood", async (ctx) => {
      for (let i = 0; i < 5000; i++) void ctx.emit({ type: "flood", severity: "low", event_data: {} });
      await untilAborted(ctx);
    });
    const publisher = new MemoryPublisher();
    publisher.delayMs = 5;
    const { orch } = setup(`
orchestrator: { workers: 1, buffer_size: 100, shutdown_timeout: 20s }
nats: { mode: core, max_in_flight: 100 }
collectors:
  flood: {}
  synthetic: { config: { rate: 200 } }
`, [flood], publisher);
    orch.start();
    await waitFor(() => publisher.events.filter((e) => e.collector === "synthetic").length >= 20);
    const report = await orch.stop();
    const h = orch.health.collector("flood");
    expect(h.dropped.get("queue_full")).toBe(5000 - 100 - OVERFLOW_ALLOWANCE);
    expect(h.accepted).toBe(100 + OVERFLOW_ALLOWANCE);
    expect(report.lost).toBe(0);
    expect(report.accepted).toBe(report.published);
  });

  for (const whenFull of ["drop_newest", "drop_oldest"] as const) {
    test(`buffer.when_full: ${whenFull} keeps the ${whenFull === "drop_newest" ? "first" : "latest"} events, counts the rest, and dropped events hold no memory`, async () => {
      const publisher = new MemoryPublisher();
      const burst = factory("burst", async (ctx) => {
        // Synchronously, so no worker takes anything meanwhile.
        for (let i = 0; i < 1000; i++) expect(ctx.emit({ type: "burst", severity: "info", event_data: { i } })).toBeUndefined();
        // Once the 50 kept are published, the queue has room again for one more.
        await waitFor(() => publisher.events.length === 50, "the 50 kept events published");
        ctx.emit({ type: "burst", severity: "info", event_data: { i: "after" } });
        await untilAborted(ctx);
      });
      const { orch } = setup(`
orchestrator: { workers: 2, shutdown_timeout: 2s, buffer: { max_events: 50, when_full: ${whenFull} } }
nats: { mode: core }
collectors:
  burst: {}
`, [burst], publisher);
      orch.start();
      await waitFor(() => publisher.events.length === 51);
      const report = await orch.stop();
      const seen = publisher.decoded().map((e) => e.event_data.i);
      const kept = whenFull === "drop_newest" ? [...Array(50).keys()] : Array.from({ length: 50 }, (_, k) => 950 + k);
      expect(seen).toEqual([...kept, "after"]);
      const h = orch.health.collector("burst");
      expect(h.accepted).toBe(whenFull === "drop_newest" ? 51 : 1001);
      expect(Object.fromEntries(h.dropped)).toEqual(whenFull === "drop_newest" ? { queue_full: 950 } : { queue_full_oldest: 950 });
      expect(report.lost).toBe(0);
      if (whenFull === "drop_newest") {
        // The 950 refused events were taken back from the encoder's chunk: the next one follows the 50th.
        const [last, after] = publisher.events.slice(-2).map((e) => e.bytes);
        expect(after!.buffer).toBe(last!.buffer);
        expect(after!.byteOffset).toBe(last!.byteOffset + last!.byteLength + 1);
      }
    });
  }

  test("nats.batch: a worker takes batch_size rounded down to whole messages (512 -> 5 x 100)", async () => {
    const { orch, publisher } = setup(`
orchestrator: { workers: 1, batch_size: 512, shutdown_timeout: 5s }
nats: { mode: core, batch: { max_events: 100, linger: 0ms } }
collectors:
  synthetic: { config: { count: 3000, rate: 0 } }
`, [], new MemoryPublisher(), true);
    orch.start();
    await orch.roundsDone();
    const report = await orch.stop();
    expect(report).toMatchObject({ published: 3000, lost: 0, unaccounted: 0 });
    expect(Math.max(...publisher.batchSizes)).toBe(500);
  });

  test("a reload that resizes nats.batch gives the encoders bigger chunks without restarting the collectors", async () => {
    const { orch, publisher, config } = setup(`${BASE}
collectors:
  synthetic: { config: { rate: 4000, payload_bytes: 1024 } }
`);
    orch.start();
    await waitFor(() => publisher.events.length > 10);
    expect(publisher.events.every((e) => e.bytes.buffer.byteLength === 64 * 1024)).toBe(true);
    const next = new MemoryPublisher();
    const result = await orch.reconfigure({ ...config, nats: { ...config.nats, batch: { max_events: 100, max_bytes: 1024 * 1024, linger: config.nats.batch?.linger ?? new Duration(5) } } }, () => next);
    expect(result).toMatchObject({ restarted: [], reconnected: true });
    // The current 64 KiB chunk is used up first (~60 events), then 1 MiB ones follow.
    await waitFor(() => next.events.some((e) => e.bytes.buffer.byteLength === 1024 * 1024));
  });

  test("invalid events are dropped with their reason, not thrown at the collector", async () => {
    const bad = factory("bad", async (ctx) => {
      ctx.emit({ type: "x", severity: "loud" as never, event_data: {} });
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      ctx.emit({ type: "x", severity: "info", event_data: cyclic });
      ctx.emit({ type: "x", severity: "info", event_data: { big: "y".repeat(2 * 1024 * 1024) } });
      ctx.emit({ type: "ok", severity: "info", event_data: {} });
    });
    const { orch, publisher } = setup(`${BASE}
collectors: { bad: {} }
`, [bad], new MemoryPublisher(), true);
    orch.start();
    await orch.roundsDone();
    await orch.stop();
    expect(Object.fromEntries(orch.health.collector("bad").dropped)).toEqual({ invalid_event: 1, unserializable: 1, too_large: 1 });
    expect(publisher.events.length).toBe(1);
  });

  test("a reload adds and removes collectors one by one while running", async () => {
    const extra = factory("extra", async (ctx) => {
      await emitN(ctx, 10, "extra.event");
      await untilAborted(ctx);
    });
    const { orch, publisher, registry } = setup(`${BASE}
collectors:
  synthetic: { config: { rate: 300 } }
`, [extra]);
    orch.start();
    const both = await orch.reconfigure(configFrom(`${BASE}
collectors:
  synthetic: { config: { rate: 300 } }
  extra: {}
`, registry), () => publisher);
    expect(both).toMatchObject({ started: ["extra"], stopped: [], restarted: [], reconnected: false });
    expect(orch.collectorNames().sort()).toEqual(["extra", "synthetic"]);
    await waitFor(() => publisher.events.filter((e) => e.collector === "extra").length === 10);
    const onlyExtra = await orch.reconfigure(configFrom(`${BASE}
collectors:
  extra: {}
`, registry), () => publisher);
    expect(onlyExtra).toMatchObject({ started: [], stopped: ["synthetic"], restarted: [] });
    expect(orch.health.collector("synthetic").state).toBe("stopped");
    const count = publisher.events.filter((e) => e.collector === "synthetic").length;
    await Bun.sleep(50);
    expect(publisher.events.filter((e) => e.collector === "synthetic").length).toBe(count);
    expect(orch.collectorNames()).toEqual(["extra"]);
    expect(publisher.events.filter((e) => e.collector === "extra")[0]!.subject).toBe("tapio.events.extra");
  });

  test("shutdown_timeout bounds the drain; what is left is counted", async () => {
    const publisher = new MemoryPublisher();
    publisher.stalled = true;
    const { orch } = setup(`
orchestrator: { workers: 2, shutdown_timeout: 300ms }
nats: { mode: core }
collectors:
  synthetic: { config: { count: 500, rate: 0 } }
`, [], publisher, true);
    orch.start();
    await orch.roundsDone();
    const t0 = Date.now();
    const report = await orch.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(report).toMatchObject({ accepted: 500, published: 0, lost: 500, unaccounted: 0 });
  });

  test("a --once round that fails is reported, not retried", async () => {
    const failing = factory("failing", async () => {
      throw new Error("source unreadable");
    });
    const { orch } = setup(`${BASE}
collectors: { failing: {} }
`, [failing], new MemoryPublisher(), true);
    orch.start();
    await orch.roundsDone();
    const report = await orch.stop();
    expect(report.failedCollectors).toEqual(["failing"]);
    expect(orch.health.collector("failing").snapshot()).toMatchObject({ state: "failed", restarts: 0, last_error: "source unreadable" });
  });

  test("events NATS rejects are dropped with the publisher's reason, and the accounting adds up", async () => {
    const publisher = new MemoryPublisher();
    const { orch } = setup(`${BASE}
collectors:
  synthetic: { config: { count: 100, rate: 0 } }
`, [], publisher, true);
    // Reject the 3rd and 50th events as they are encoded: ids are known only then.
    const original = orch.queue.tryPush.bind(orch.queue);
    let n = 0;
    orch.queue.tryPush = (e) => {
      if (++n === 3 || n === 50) publisher.reject.add(e.id);
      return original(e);
    };
    orch.start();
    await orch.roundsDone();
    const report = await orch.stop();
    expect(report).toMatchObject({ accepted: 100, published: 98, discarded: 2, dropped: 2, inSpool: 0, lost: 0, unaccounted: 0 });
    expect(orch.health.collector("synthetic").dropped.get("max_payload")).toBe(2);
  });

  test("a publisher that gives up for good (not at the deadline) is fatal", async () => {
    const publisher = new MemoryPublisher();
    publisher.publish = async (batch) => ({ undelivered: batch, rejected: [] });
    const registry = builtinRegistry();
    const config = configFrom(`${BASE}
collectors:
  synthetic: { config: { count: 10, rate: 0 } }
`, registry);
    let fatal: Error | undefined;
    const orch = new Orchestrator({ config, registry, publisher, log: silentLogger(), once: true, onFatal: (e) => (fatal = e) });
    running.push(orch);
    orch.start();
    await waitFor(() => fatal !== undefined);
    expect(fatal!.message).toContain("the publisher stopped delivering");
    const report = await orch.stop();
    expect(report).toMatchObject({ lost: 10, unaccounted: 0 });
  });
});

describe("health reporting in the log", () => {
  test("a periodic summary, a line when health changes, and a warning for a collector silent past its quiet period", async () => {
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const quiet: CollectorFactory = { ...factory("quiet", (ctx) => untilAborted(ctx)), quietPeriodMs: () => 300 };
    const registry = builtinRegistry().register(quiet);
    const config = configFrom(`orchestrator: { health_interval: 400ms, shutdown_timeout: 1s }\nnats: { mode: core }\ncollectors:\n  quiet: {}\n  synthetic: { config: { rate: 50 } }\n`, registry);
    const publisher = new MemoryPublisher();
    const orch = new Orchestrator({ config, registry, publisher, log });
    running.push(orch);
    orch.start();
    await waitFor(() => lines.some((l) => l.msg?.startsWith("collector quiet has emitted nothing")), "the quiet-collector line", 4000);
    const warning = lines.find((l) => l.msg.startsWith("collector quiet has emitted nothing"))!;
    expect(warning).toMatchObject({ level: 40, collector: "quiet", quiet_period_seconds: 0.3 });
    await waitFor(() => lines.some((l) => l.msg?.startsWith("health: healthy, 2 collector(s)")), "the health summary line", 4000);
    const summary = lines.find((l) => l.msg.startsWith("health: healthy"))!;
    expect(summary.collectors.synthetic).toMatchObject({ state: "running" });
    expect(summary.nats).toMatchObject({ connected: true });
    publisher.connected = false;
    await waitFor(() => lines.some((l) => l.msg?.startsWith("agent degraded: NATS disconnected")), "the agent-degraded line", 4000);
    publisher.connected = true;
    await waitFor(() => lines.some((l) => l.msg === "agent healthy"), "the agent-healthy line", 4000);
  });

  test("a collector that emits after a quiet warning and falls silent again is warned about again", async () => {
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const warnings = () => lines.filter((l) => l.msg?.startsWith("collector quiet has emitted nothing"));
    const quiet: CollectorFactory = {
      ...factory("quiet", async (ctx) => {
        await waitFor(() => warnings().length === 1, "the first quiet warning", 4000);
        await ctx.emit({ type: "test.event", severity: "info", event_data: {} });
        await untilAborted(ctx);
      }),
      quietPeriodMs: () => 300,
    };
    const registry = builtinRegistry().register(quiet);
    // no summary: only the quiet deadlines wake the health monitor
    const config = configFrom(`orchestrator: { health_interval: 0s, shutdown_timeout: 1s }\nnats: { mode: core }\ncollectors:\n  quiet: {}\n`, registry);
    const orch = new Orchestrator({ config, registry, publisher: new MemoryPublisher(), log });
    running.push(orch);
    orch.start();
    await waitFor(() => warnings().length === 2, "the second quiet warning", 4000);
    const [first, second] = warnings();
    // silent 300 ms after its event, checked at once: well under a second between the two
    expect(second!.time - first!.time).toBeLessThan(800);
  });

  test("each instance has the quiet period of its own config, and its lines name it", async () => {
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const quiet: CollectorFactory<{ quiet_ms: number }> = {
      ...factory("quiet", (ctx) => untilAborted(ctx)),
      configSchema: v.object({ quiet_ms: v.number() }),
      quietPeriodMs: (config) => config.quiet_ms,
    };
    const registry = builtinRegistry().register(quiet);
    const config = configFrom(`orchestrator: { health_interval: 400ms, shutdown_timeout: 1s }\nnats: { mode: core }\ncollectors:\n  quiet/short: { config: { quiet_ms: 300 } }\n  quiet/long: { config: { quiet_ms: 600000 } }\n`, registry);
    const orch = new Orchestrator({ config, registry, publisher: new MemoryPublisher(), log });
    running.push(orch);
    orch.start();
    await waitFor(() => lines.some((l) => l.msg?.startsWith("health: ")) && lines.some((l) => l.msg?.startsWith("collector quiet/short has emitted nothing")), "the quiet line and a summary", 4000);
    expect(lines.find((l) => l.msg.startsWith("collector quiet/short has emitted nothing"))).toMatchObject({ level: 40, collector: "quiet/short", quiet_period_seconds: 0.3 });
    expect(lines.some((l) => l.msg.startsWith("collector quiet/long"))).toBe(false);
    expect(Object.keys(lines.find((l) => l.msg.startsWith("health: "))!.collectors)).toEqual(["quiet/long", "quiet/short"]);
  });
});
