// The orchestrator with a real spool and an in-memory publisher: which events
// go to NATS, which to the spool, how the drainer replays them, and that the
// counters add up in every case.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Orchestrator, type ShutdownReport } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { syntheticFactory } from "../../src/collectors/synthetic/index.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { Spool, SpoolError } from "../../src/spool/spool.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

function setup(yaml: string, publisher = new MemoryPublisher(), once = true, spoolPath = join(makeTempDir("delivery"), "spool.db")) {
  const config = configFrom(`${yaml}\nspool:\n  path: ${spoolPath}\n  spill_after: 200ms\n`);
  const spool = Spool.open({ path: spoolPath, maxBytes: config.spool.max_bytes, whenFull: config.spool.when_full, log: silentLogger() });
  const orch = new Orchestrator({ config, registry: builtinRegistry(), publisher, spool, log: silentLogger(), once });
  running.push(orch);
  return { orch, publisher, spool, spoolPath };
}

/** accepted + inherited = published + discarded + in spool + lost, each counted on its own */
function expectBalanced(r: ShutdownReport) {
  expect(r.accepted + r.inherited).toBe(r.published + r.discarded + r.inSpool + r.lost);
  expect(r.unaccounted).toBe(0);
}

const seqs = (p: MemoryPublisher) => p.decoded().map((e) => Number(e.event_data.custom.seq));

describe("delivery with a spool", () => {
  test("memory mode with NATS up: straight to NATS, the spool stays empty", async () => {
    const { orch, publisher } = setup(`collectors:\n  synthetic: { config: { count: 2000, rate: 0 } }`);
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 2000, published: 2000, spooled: 0, inSpool: 0, lost: 0 });
    expectBalanced(r);
    expect(seqs(publisher)).toEqual([...Array(2000).keys()]);
  });

  test("disk mode: every event goes through the spool first, then out in order", async () => {
    const { orch, publisher } = setup(`orchestrator: { buffer: { type: disk } }\ncollectors:\n  synthetic: { config: { count: 3000, rate: 0 } }`);
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 3000, spooled: 3000, published: 3000, inSpool: 0, lost: 0 });
    expectBalanced(r);
    expect(seqs(publisher)).toEqual([...Array(3000).keys()]);
  });

  test("NATS down: events go to the spool at once; when it is back the drainer replays them in order", async () => {
    const publisher = new MemoryPublisher();
    publisher.connected = false;
    publisher.stalled = true;
    // One worker: batches reach the spool in the order they were taken (with several, in the order their waits end).
    const { orch } = setup(`orchestrator: { workers: 1 }\ncollectors:\n  synthetic: { config: { count: 1500, rate: 0 } }`, publisher);
    orch.start();
    await waitFor(() => orch.delivery.spoolDepth() === 1500);
    expect(publisher.events.length).toBe(0);
    expect(orch.agentHealth().state).toBe("degraded");
    expect(orch.agentHealth().problems.join(" ")).toContain("1500 event(s) waiting in the spool");
    publisher.connected = true;
    publisher.stalled = false;
    await orch.roundsDone();
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 1500, spooled: 1500, published: 1500, inSpool: 0, lost: 0 });
    expectBalanced(r);
    expect(seqs(publisher)).toEqual([...Array(1500).keys()]);
  });

  test("acks slower than spill_after: the batch is spooled, not held in memory", async () => {
    const publisher = new MemoryPublisher();
    publisher.stalled = true; // connected, but nothing is ever confirmed
    const { orch } = setup(`orchestrator: { shutdown_timeout: 300ms }\ncollectors:\n  synthetic: { config: { count: 500, rate: 0 } }`, publisher);
    orch.start();
    await waitFor(() => orch.delivery.spoolDepth() === 500);
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 500, published: 0, inSpool: 500, lost: 0 });
    expectBalanced(r);
  });

  test("a failing subject opens its circuit: its events are spooled without trying, the others keep flowing", async () => {
    const publisher = new MemoryPublisher();
    publisher.failing = (e) => e.collector === "synthetic";
    const registry = builtinRegistry().register({ ...syntheticFactory, type: "other" });
    const spoolPath = join(makeTempDir("delivery"), "spool.db");
    const config = configFrom(`
orchestrator: { shutdown_timeout: 300ms }
nats: { circuit_breaker: { failure_threshold: 3, open_for: 1h } }
spool: { path: ${spoolPath}, spill_after: 200ms }
collectors:
  synthetic: { config: { rate: 2000 } }
  other: { config: { rate: 500 } }
`, registry);
    const spool = Spool.open({ path: spoolPath, maxBytes: config.spool.max_bytes, whenFull: "block", log: silentLogger() });
    const orch = new Orchestrator({ config, registry, publisher, spool, log: silentLogger() });
    running.push(orch);
    orch.start();
    await waitFor(() => orch.breakers.for("tapio.events.synthetic").state === "open");
    const attempts = (subject: string) => publisher.attemptedSubjects.filter((s) => s === subject).length;
    const syntheticAttemptsAtOpen = attempts("tapio.events.synthetic");
    const otherAtOpen = publisher.events.filter((e) => e.collector === "other").length;
    const spooledAtOpen = orch.delivery.spoolDepth();
    // "other" keeps flowing while synthetic's events go to the spool ...
    await waitFor(() => publisher.events.filter((e) => e.collector === "other").length > otherAtOpen + 50 && orch.delivery.spoolDepth() > spooledAtOpen + 50);
    // ... and no synthetic event was even attempted since the circuit opened.
    expect(syntheticAttemptsAtOpen).toBeGreaterThanOrEqual(3);
    expect(attempts("tapio.events.synthetic")).toBe(syntheticAttemptsAtOpen);
    expect(publisher.events.filter((e) => e.collector === "synthetic").length).toBe(0);
    expect(orch.agentHealth().problems.some((p) => p.startsWith("circuit open for tapio.events.synthetic"))).toBe(true);
    expect(orch.status().delivery.circuits.find((c) => c.subject === "tapio.events.synthetic")).toMatchObject({ state: "open" });
    const r = await orch.stop();
    expect(r.inSpool).toBe(orch.health.collector("synthetic").accepted);
    expect(r.published).toBe(orch.health.collector("other").published);
    expectBalanced(r);
  });

  test("instances have their own circuits: a failing synthetic/a is spooled and not even replayed while open; synthetic/b and the spooled rows of b flow", async () => {
    const publisher = new MemoryPublisher();
    publisher.failing = (e) => e.collector === "synthetic/a";
    const spoolPath = join(makeTempDir("delivery"), "spool.db");
    // rows of both instances left by an earlier run: the drainer must replay b's and skip a's
    const earlier = Spool.open({ path: spoolPath, maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
    const row = (collector: string, subject: string, id: string) => ({ collector, subject, id, bytes: new TextEncoder().encode(JSON.stringify({ event_id: id })) });
    earlier.append([row("synthetic/a", "old.synthetic.a", "a-0"), row("synthetic/b", "old.synthetic.b", "b-0"), row("synthetic/a", "old.synthetic.a", "a-1"), row("synthetic/b", "old.synthetic.b", "b-1")]);
    earlier.close();
    const config = configFrom(`
orchestrator: { shutdown_timeout: 300ms }
nats: { circuit_breaker: { failure_threshold: 3, open_for: 1h } }
spool: { path: ${spoolPath}, spill_after: 200ms }
collectors:
  synthetic/a: { config: { rate: 2000 } }
  synthetic/b: { config: { rate: 500 } }
`);
    const spool = Spool.open({ path: spoolPath, maxBytes: config.spool.max_bytes, whenFull: "block", log: silentLogger() });
    const orch = new Orchestrator({ config, registry: builtinRegistry(), publisher, spool, log: silentLogger() });
    running.push(orch);
    orch.start();
    await waitFor(() => orch.breakers.for("tapio.events.synthetic.a").state === "open");
    const attempts = (subject: string) => publisher.attemptedSubjects.filter((s) => s === subject).length;
    const aAttemptsAtOpen = attempts("tapio.events.synthetic.a");
    const bAtOpen = publisher.events.filter((e) => e.collector === "synthetic/b").length;
    const spooledAtOpen = orch.delivery.spoolDepth();
    await waitFor(() => publisher.events.filter((e) => e.collector === "synthetic/b").length > bAtOpen + 50 && orch.delivery.spoolDepth() > spooledAtOpen + 50);
    // b's old rows went out, re-addressed to the current prefix; a's were not even tried
    expect(publisher.events.filter((e) => e.id === "b-0" || e.id === "b-1").map((e) => e.subject)).toEqual(["tapio.events.synthetic.b", "tapio.events.synthetic.b"]);
    expect(attempts("tapio.events.synthetic.a")).toBe(aAttemptsAtOpen);
    expect(publisher.events.filter((e) => e.collector === "synthetic/a")).toHaveLength(0);
    expect(orch.status().delivery.circuits.find((c) => c.subject === "tapio.events.synthetic.a")).toMatchObject({ state: "open" });
    expect(orch.status().delivery.circuits.find((c) => c.subject === "tapio.events.synthetic.b")).toMatchObject({ state: "closed" });
    const r = await orch.stop();
    expect(r.inSpool).toBe(orch.health.collector("synthetic/a").accepted + 2);
    expectBalanced(r);
  });

  test("the spool's drop policy discards events, counted with their reason, and the counters still add up", async () => {
    const publisher = new MemoryPublisher();
    publisher.connected = false;
    publisher.stalled = true;
    const spoolPath = join(makeTempDir("delivery"), "spool.db");
    const config = configFrom(`
orchestrator: { shutdown_timeout: 300ms }
spool: { path: ${spoolPath}, max_bytes: 1MiB, when_full: drop_oldest }
collectors:
  synthetic: { config: { count: 3000, rate: 0, payload_bytes: 1024 } }
`);
    const spool = Spool.open({ path: spoolPath, maxBytes: config.spool.max_bytes, whenFull: config.spool.when_full, log: silentLogger() });
    const orch = new Orchestrator({ config, registry: builtinRegistry(), publisher, spool, log: silentLogger(), once: true });
    running.push(orch);
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    expect(r.discarded).toBeGreaterThan(0);
    expect(orch.health.collector("synthetic").dropped.get("spool_full_oldest")).toBe(r.discarded);
    expect(r.inSpool).toBeGreaterThan(0);
    expect(r).toMatchObject({ accepted: 3000, published: 0, lost: 0 });
    expectBalanced(r);
  });

  test("what a previous run left in the spool is replayed on start and counted as inherited", async () => {
    const down = new MemoryPublisher();
    down.connected = false;
    down.stalled = true;
    const first = setup(`orchestrator: { workers: 1, shutdown_timeout: 500ms }\ncollectors:\n  synthetic: { config: { count: 700, rate: 0 } }`, down);
    first.orch.start();
    await first.orch.roundsDone();
    const r1 = await first.orch.stop();
    expect(r1).toMatchObject({ accepted: 700, inSpool: 700 });

    const second = setup(`collectors:\n  synthetic: { enabled: false }`, new MemoryPublisher(), true, first.spoolPath);
    second.orch.start();
    await second.orch.roundsDone();
    const r2 = await second.orch.stop();
    expect(r2).toMatchObject({ accepted: 0, inherited: 700, published: 700, inSpool: 0, lost: 0 });
    expectBalanced(r2);
    expect(seqs(second.publisher)).toEqual([...Array(700).keys()]);
  });
});

/** Makes `spool`'s method `name` throw a "disk is full" SpoolError for its next `times` calls. */
function failNext(spool: Spool, name: "append" | "remove" | "peek", times: number): { failed: number } {
  const real = (spool[name] as (...args: unknown[]) => unknown).bind(spool);
  const count = { failed: 0 };
  (spool as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    if (count.failed < times) {
      count.failed++;
      throw new SpoolError("spool.db", "cannot append to spool spool.db: the disk is full", { reason: "full" });
    }
    return real(...args);
  };
  return count;
}

describe("spool failures stop nothing", () => {
  test("disk mode, the spool's writes fail: the batches go to NATS instead, each once, and the failures are counted", async () => {
    const { orch, publisher, spool } = setup(`orchestrator: { buffer: { type: disk } }\ncollectors:\n  synthetic: { config: { count: 3000, rate: 0 } }`);
    const appends = failNext(spool, "append", 5);
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    // once one write failed, the workers go to NATS first: not every try reaches the spool
    expect(appends.failed).toBeGreaterThan(0);
    expect(r).toMatchObject({ accepted: 3000, published: 3000, inSpool: 0, lost: 0, discarded: 0 });
    expectBalanced(r);
    expect(seqs(publisher).sort((a, b) => a - b)).toEqual([...Array(3000).keys()]);
    expect(orch.delivery.spoolErrors.get("full")).toBe(appends.failed);
  });

  test("NATS down and the spool failing: the workers keep their batches until the spool takes them, then all go out", async () => {
    const publisher = new MemoryPublisher();
    publisher.connected = false;
    publisher.stalled = true;
    const { orch, spool } = setup(`collectors:\n  synthetic: { config: { count: 2000, rate: 0 } }`, publisher, false);
    const appends = failNext(spool, "append", 8);
    orch.start();
    await waitFor(() => appends.failed === 8, "8 failed appends", 10_000);
    expect(orch.readiness()).toMatchObject({ ready: false, reason: expect.stringMatching(/and the spool cannot take events: .*the disk is full/) });
    expect(orch.agentHealth().problems.join("\n")).toContain("the spool cannot take events");
    await waitFor(() => orch.health.collector("synthetic").spooled === 2000, "2000 events spooled", 10_000);
    publisher.connected = true;
    publisher.stalled = false;
    await waitFor(() => orch.health.collector("synthetic").published === 2000, "2000 published", 10_000);
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 2000, published: 2000, inSpool: 0, lost: 0 });
    expectBalanced(r);
    expect(seqs(publisher).sort((a, b) => a - b)).toEqual([...Array(2000).keys()]);
  });

  test("the drainer cannot delete what it replayed: it retries the delete and replays nothing twice", async () => {
    const { orch, publisher, spool } = setup(`orchestrator: { buffer: { type: disk } }\ncollectors:\n  synthetic: { config: { count: 1000, rate: 0 } }`);
    const removes = failNext(spool, "remove", 4);
    const peeks = failNext(spool, "peek", 2);
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    expect([removes.failed, peeks.failed]).toEqual([4, 2]);
    expect(r).toMatchObject({ accepted: 1000, published: 1000, inSpool: 0, lost: 0 });
    expectBalanced(r);
    // while the drainer fails, the workers publish past the spool: out of order, but each event once
    expect(seqs(publisher).sort((a, b) => a - b)).toEqual([...Array(1000).keys()]);
  });

  test("a delivery that throws (a bug) does not end its worker: the batch is tried again", async () => {
    const { orch, publisher } = setup(`collectors:\n  synthetic: { config: { count: 500, rate: 0 } }`);
    const deliver = orch.delivery.deliver.bind(orch.delivery);
    let thrown = 0;
    orch.delivery.deliver = async (batch) => {
      if (thrown++ < 3) throw new Error("boom");
      return deliver(batch);
    };
    orch.start();
    await orch.roundsDone();
    const r = await orch.stop();
    expect(r).toMatchObject({ accepted: 500, published: 500, inSpool: 0, lost: 0 });
    expectBalanced(r);
    expect(seqs(publisher).sort((a, b) => a - b)).toEqual([...Array(500).keys()]);
  });
});
