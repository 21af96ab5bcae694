// ctx.state: a collector's saved position is written to the spool only once
// every event it emitted before the save is durable (acknowledged by NATS,
// or in the spool), in memory mode as in disk mode; without a spool nothing
// is kept, and the log says so once.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import pino from "pino";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { CollectorStates } from "../../src/orchestrator/collector-state.ts";
import type { CollectorContext, CollectorFactory } from "../../src/orchestrator/collector.ts";
import { CollectorRegistry } from "../../src/orchestrator/registry.ts";
import { Spool } from "../../src/spool/spool.ts";
import type { QueuedEvent } from "../../src/event/event.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: Orchestrator[] = [];
const spools: Spool[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
  for (const s of spools.splice(0)) s.close();
});

function openSpool(): Spool {
  const spool = Spool.open({ path: join(makeTempDir("state"), "spool.db"), maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
  spools.push(spool);
  return spool;
}

function capturingLogger() {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

/** A collector that loads its state, then emits `n` events and saves "after-<n>" per round the test asks for. */
function savingCollector() {
  const rounds: Array<{ n: number; done: () => void }> = [];
  let wake: (() => void) | undefined;
  const loaded: Array<string | undefined> = [];
  const factory: CollectorFactory = {
    type: "saver",
    description: "saver",
    configSchema: v.optional(v.any(), {}),
    create: () => ({
      run: async (ctx: CollectorContext) => {
        loaded.push(ctx.state.load());
        let total = 0;
        while (!ctx.signal.aborted) {
          const round = rounds.shift();
          if (!round) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              ctx.signal.addEventListener("abort", () => resolve(), { once: true });
            });
            continue;
          }
          for (let i = 0; i < round.n; i++) {
            const wait = ctx.emit({ type: "saver.event", severity: "info", event_data: { custom: { i: String(total++) } } });
            if (wait) await wait;
          }
          ctx.state.save(`after-${total}`);
          round.done();
        }
      },
    }),
  };
  /** Emits n events and saves; resolves once save() was called (not written). */
  const round = (n: number) =>
    new Promise<void>((done) => {
      rounds.push({ n, done });
      wake?.();
    });
  return { factory, round, loaded };
}

function start(bufferType: "memory" | "disk", spool: Spool | undefined, publisher: MemoryPublisher, factory: CollectorFactory, log = silentLogger()) {
  const registry = new CollectorRegistry().register(factory);
  const config = configFrom(`
orchestrator: { workers: 2, shutdown_timeout: 2s, buffer: { type: ${bufferType} } }
nats: { mode: core }
spool: { spill_after: 60s, enabled: ${spool !== undefined} }
collectors:
  saver: {}
`, registry);
  const orch = new Orchestrator({ config, registry, publisher, spool, log });
  running.push(orch);
  orch.start();
  return orch;
}

describe("ctx.state through the orchestrator", () => {
  test("memory mode: a save waits until NATS acknowledged the events emitted before it", async () => {
    const spool = openSpool();
    const publisher = new MemoryPublisher();
    const { promise: acks, resolve: ack } = Promise.withResolvers<void>();
    publisher.gate = acks;
    const saver = savingCollector();
    start("memory", spool, publisher, saver.factory);
    await saver.round(5);
    await waitFor(() => publisher.calls > 0, "the batch handed to the publisher");
    // Emitted (queued, in flight), not acknowledged: not saved.
    expect(spool.loadState("saver")).toBeUndefined();
    ack();
    await waitFor(() => spool.loadState("saver") === "after-5", "the save written once the events are acknowledged");
    expect(publisher.events.length).toBe(5);
    expect(saver.loaded).toEqual([undefined]);
  });

  test("disk mode: emits resolve once spooled, so the save is written at once, NATS or not", async () => {
    const spool = openSpool();
    const publisher = new MemoryPublisher();
    const { promise: acks, resolve: ack } = Promise.withResolvers<void>();
    publisher.gate = acks; // no acknowledgement while the test looks
    const saver = savingCollector();
    start("disk", spool, publisher, saver.factory);
    await saver.round(5);
    expect(spool.loadState("saver")).toBe("after-5");
    expect(publisher.events.length).toBe(0);
    ack();
  });

  test("a restarted collector loads what the last run saved", async () => {
    const spool = openSpool();
    spool.saveState("saver", "after-41");
    const saver = savingCollector();
    start("memory", spool, new MemoryPublisher(), saver.factory);
    await waitFor(() => saver.loaded.length === 1);
    expect(saver.loaded).toEqual(["after-41"]);
  });

  test("without a spool: nothing kept, said once in the log however often it is used", async () => {
    const { log, lines } = capturingLogger();
    const saver = savingCollector();
    start("memory", undefined, new MemoryPublisher(), saver.factory, log);
    await saver.round(1);
    await saver.round(1);
    const said = lines.filter((l) => typeof l.msg === "string" && l.msg.includes("is not kept"));
    expect(said).toHaveLength(1);
    expect(said[0]!.msg).toBe("no spool (spool.enabled is false): where collector saver stops in its source is not kept; after a restart it starts afresh");
    expect(said[0]!.collector).toBe("saver");
    expect(saver.loaded).toEqual([undefined]);
  });
});

describe("CollectorStates: the order of saves and settled events", () => {
  const ev = (id: string, collector = "c"): QueuedEvent => ({ id, collector, subject: `t.${collector}`, bytes: new Uint8Array(0) });

  test("a save is written once every event before it settled, in whatever order they settle; a later save replaces one still waiting", () => {
    const spool = openSpool();
    const states = new CollectorStates({ spool });
    const { state, emitted } = states.for("c", silentLogger());
    expect(state.load()).toBeUndefined();
    emitted("e1");
    emitted("e2");
    state.save("A");
    emitted("e3");
    state.save("B");
    emitted("e4");
    // e2 and e3 first: e1 still open, nothing may be written.
    states.settled([ev("e3"), ev("e2")]);
    expect(spool.loadState("c")).toBeUndefined();
    // Another collector's events, and ids never emitted, change nothing.
    states.settled([ev("e1", "other"), ev("zz")]);
    expect(spool.loadState("c")).toBeUndefined();
    // e1: A and B are both covered; B is the newer (e4 is after B, so it does not hold B back).
    states.settled([ev("e1")]);
    expect(spool.loadState("c")).toBe("B");
    state.save("C");
    expect(spool.loadState("c")).toBe("B");
    states.settled([ev("e4")]);
    expect(spool.loadState("c")).toBe("C");
    // Nothing open: a save is written at once.
    state.save("D");
    expect(spool.loadState("c")).toBe("D");
  });

  test("saves with no event between them replace each other while they wait: one per epoch with open events is kept", () => {
    const spool = openSpool();
    const states = new CollectorStates({ spool });
    const handle = states.for("c", silentLogger());
    const { state, emitted } = handle;
    state.load();
    emitted("e1");
    state.save("A");
    emitted("e2");
    for (let i = 0; i < 10_000; i++) state.save(`B${i}`);
    expect(handle.waiting).toBe(2);
    states.settled([ev("e1")]);
    expect(spool.loadState("c")).toBe("A");
    states.settled([ev("e2")]);
    expect(spool.loadState("c")).toBe("B9999");
    expect(handle.waiting).toBe(0);
  });

  test("an id emitted twice counts twice: one copy settled does not release a save after both", () => {
    const spool = openSpool();
    const states = new CollectorStates({ spool });
    const { state, emitted } = states.for("c", silentLogger());
    state.load();
    emitted("same");
    emitted("same");
    state.save("A");
    states.settled([ev("same")]);
    expect(spool.loadState("c")).toBeUndefined();
    states.settled([ev("same")]);
    expect(spool.loadState("c")).toBe("A");
  });

  test("events of a collector that never used its state are not tracked; the same name gets the same state", () => {
    const spool = openSpool();
    const states = new CollectorStates({ spool });
    const first = states.for("c", silentLogger());
    first.emitted("before-load"); // not tracked: load() not called yet
    first.state.save("A");
    expect(spool.loadState("c")).toBe("A");
    // A restarted collector (a reload) shares the sequence: its saves wait for the events of the run before.
    first.emitted("old");
    const second = states.for("c", silentLogger());
    expect(second.state.load()).toBe("A");
    second.state.save("B");
    expect(spool.loadState("c")).toBe("A");
    states.settled([ev("old")]);
    expect(spool.loadState("c")).toBe("B");
  });

  test("a spool that fails a write: logged, and the next save writes the newer value", () => {
    const spool = openSpool();
    const { log, lines } = capturingLogger();
    const states = new CollectorStates({ spool });
    const { state } = states.for("c", log);
    state.load();
    spool.close();
    state.save("A");
    expect(lines.some((l) => l.level === 40 && String(l.msg).startsWith("cannot save where collector c stopped: "))).toBe(true);
  });
});
