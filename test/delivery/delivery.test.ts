// The orchestrator with a real spool and an in-memory publisher: which events
// go to NATS, which to the spool, how the drainer replays them, and that the
// counters add up in every case.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Orchestrator, type ShutdownReport } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { syntheticFactory } from "../../src/collectors/synthetic/index.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { Spool } from "../../src/spool/spool.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { makeTempDir } from "../helpers/cleanup.ts";

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

async function waitFor(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(5);
  }
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
    const failedAtOpen = publisher.events.length;
    const otherAtOpen = publisher.events.filter((e) => e.collector === "other").length;
    await Bun.sleep(400);
    // No synthetic event reaches the publisher any more; "other" keeps flowing (behind the spool).
    expect(publisher.events.filter((e) => e.collector === "synthetic").length).toBe(0);
    expect(publisher.events.filter((e) => e.collector === "other").length).toBeGreaterThan(otherAtOpen + 50);
    expect(publisher.events.length).toBeGreaterThan(failedAtOpen);
    expect(orch.delivery.spoolDepth()).toBeGreaterThan(0);
    expect(orch.agentHealth().problems.some((p) => p.startsWith("circuit open for tapio.events.synthetic"))).toBe(true);
    expect(orch.status().delivery.circuits.find((c) => c.subject === "tapio.events.synthetic")).toMatchObject({ state: "open" });
    const r = await orch.stop();
    expect(r.inSpool).toBe(orch.health.collector("synthetic").accepted);
    expect(r.published).toBe(orch.health.collector("other").published);
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
