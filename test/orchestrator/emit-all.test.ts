// emitAll: a batch queued whole or not at all, never waiting, routed to
// sub-subjects; and the fates a sender may wait for, in memory mode too:
// published, or dropped with the reason.
import { afterEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import type { CollectorContext, CollectorFactory, Emission } from "../../src/orchestrator/collector.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { Spool } from "../../src/spool/spool.ts";
import type { Severity } from "../../src/event/event.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { join } from "node:path";

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

/** An agent with one collector "sender" whose context the test drives. */
async function agent(orchestrator: string, publisher = new MemoryPublisher(), spool?: Spool, routes = "") {
  let ctx: CollectorContext | undefined;
  const factory: CollectorFactory = {
    type: "sender",
    description: "test",
    configSchema: v.optional(v.any(), {}),
    create: () => ({
      run: (c) => {
        ctx = c;
        return new Promise<void>((resolve) => c.signal.addEventListener("abort", () => resolve(), { once: true }));
      },
    }),
  };
  const registry = builtinRegistry().register(factory);
  const config = configFrom(`orchestrator: { ${orchestrator} }\nnats: { mode: core, subject: t.ev }\nspool: { spill_after: 100ms }\ncollectors:\n  sender: {}\n${routes}`, registry);
  const orch = new Orchestrator({ config, registry, publisher, log: silentLogger(), spool });
  running.push(orch);
  orch.start();
  await waitFor(() => ctx !== undefined, "the collector running");
  return { orch, ctx: ctx!, publisher };
}

const batch = (n: number, suffix?: string, id = "e"): Emission[] =>
  Array.from({ length: n }, (_, i) => ({ event: { type: "t.x", severity: "info", event_data: {}, event_id: `${id}-${i}` }, subjectSuffix: suffix }));

describe("emitAll", () => {
  test("memory mode: queued at once; the fates resolve once published, each event on its sub-subject", async () => {
    const { ctx, publisher, orch } = await agent("workers: 1");
    const result = ctx.emitAll([...batch(2, "app"), ...batch(1, "web.v1", "w")], { fates: true });
    expect(result.status).toBe("queued");
    expect(await (result as { fates: Promise<unknown[]> }).fates).toEqual([undefined, undefined, undefined]);
    expect(publisher.events.map((e) => e.subject)).toEqual(["t.ev.sender.app", "t.ev.sender.app", "t.ev.sender.web.v1"]);
    expect(orch.health.collector("sender").accepted).toBe(3);
  });

  test("an event NATS refuses: its fate names the reason, the others are published", async () => {
    const publisher = new MemoryPublisher();
    publisher.reject.add("e-1");
    const { ctx } = await agent("workers: 1", publisher);
    const result = ctx.emitAll(batch(3), { fates: true });
    expect(await (result as { fates: Promise<unknown[]> }).fates).toEqual([undefined, "max_payload", undefined]);
  });

  test("a full queue: nothing queued, and `never` when the batch outnumbers max_events", async () => {
    const publisher = new MemoryPublisher();
    publisher.stalled = true;
    const { ctx, orch } = await agent("workers: 1, batch_size: 1, buffer_size: 5, shutdown_timeout: 200ms", publisher);
    expect(ctx.emitAll(batch(1, undefined, "first")).status).toBe("queued");
    await waitFor(() => orch.queue.length === 0, "the worker holding the first event");
    expect(ctx.emitAll(batch(4)).status).toBe("queued");
    expect(ctx.emitAll(batch(2, undefined, "more"))).toEqual({ status: "full", never: false });
    expect(ctx.emitAll(batch(6, undefined, "many"))).toEqual({ status: "full", never: true });
    expect(orch.queue.length).toBe(4);
    expect(orch.health.collector("sender").accepted).toBe(5);
  });

  test("drop_oldest makes room by evicting the oldest events, whose fates say so", async () => {
    const publisher = new MemoryPublisher();
    publisher.stalled = true;
    const { ctx, orch } = await agent("workers: 1, batch_size: 1, buffer: { max_events: 3, when_full: drop_oldest }, shutdown_timeout: 200ms", publisher);
    ctx.emitAll(batch(1, undefined, "held"));
    await waitFor(() => orch.queue.length === 0, "the worker holding the first event");
    const old = ctx.emitAll(batch(3, undefined, "old"), { fates: true });
    expect(ctx.emitAll(batch(2, undefined, "new")).status).toBe("queued");
    // The one left never goes out: NATS stalls, and at the deadline (no spool) it is lost; that ends its wait too.
    await orch.stop();
    expect(await (old as { fates: Promise<unknown[]> }).fates).toEqual(["queue_full_oldest", "queue_full_oldest", "lost"]);
  });

  test("memory mode, NATS away: a spooled event is durable (its fate resolves), one the full spool drops says spool_full", async () => {
    const publisher = new MemoryPublisher();
    publisher.connected = false;
    publisher.stalled = true;
    const spool = Spool.open({ path: join(makeTempDir("emit-all"), "spool.db"), maxBytes: 1000, whenFull: "drop_newest", log: silentLogger() });
    const { ctx } = await agent("workers: 1, shutdown_timeout: 200ms", publisher, spool);
    const big = { event: { type: "t.x", severity: "info" as const, event_data: { custom: { pad: "x".repeat(400) } } } };
    const result = ctx.emitAll([big, big, big], { fates: true });
    expect(await (result as { fates: Promise<unknown[]> }).fates).toEqual([undefined, "spool_full", "spool_full"]);
    expect(spool.depth).toBe(1);
  });

  test("an event that can never be sent: nothing of the batch is queued, its index named", async () => {
    const { ctx, orch } = await agent("workers: 1");
    const result = ctx.emitAll([...batch(2, "ok"), ...batch(1, "not ok")]);
    expect(result).toMatchObject({ status: "invalid", index: 2, message: expect.stringContaining("is not NATS tokens") });
    expect(orch.queue.length).toBe(0);
    expect(orch.health.collector("sender").accepted).toBe(0);
  });

  test("after the collector stopped: stopped, nothing queued", async () => {
    const { ctx, orch } = await agent("workers: 1");
    await orch.stop();
    expect(ctx.emitAll(batch(1))).toEqual({ status: "stopped" });
  });

  test("with routes, the fates of events routes send nowhere say why, also when the whole batch goes nowhere", async () => {
    const routes = "routes:\n  - name: drop-debug\n    match: { severity_below: info }\n    drop: true\n  - name: checks\n    match: { type: t.x }\n    to: default\n";
    const { ctx, publisher } = await agent("", new MemoryPublisher(), undefined, routes);
    const event = (type: string, severity: Severity, id: string): Emission => ({ event: { type, severity, event_data: {}, event_id: id } });
    const mixed = ctx.emitAll([event("t.x", "info", "a"), event("t.x", "debug", "b"), event("t.y", "info", "c")], { fates: true });
    expect(await (mixed as { fates: Promise<unknown[]> }).fates).toEqual([undefined, "route_drop", "unrouted"]);
    const nowhere = ctx.emitAll([event("t.y", "warning", "d"), event("t.x", "debug", "e")], { fates: true });
    expect(nowhere.status).toBe("queued");
    expect(await (nowhere as { fates?: Promise<unknown[]> }).fates).toEqual(["unrouted", "route_drop"]);
    expect(publisher.events.map((e) => e.subject)).toEqual(["t.ev.sender"]);
  });
});
