// The health monitor wakes only when there is something to do: told of a
// change, at a collector's quiet deadline, at the next summary, and each
// second while degraded. Idle and healthy, it arms no timer.
import { afterEach, describe, expect, test } from "bun:test";
import pino from "pino";
import { HEALTH_CHECK_MS, HealthMonitor, type QuietWatch } from "../../src/orchestrator/health-monitor.ts";
import { HealthTracker } from "../../src/orchestrator/health.ts";
import type { Destination } from "../../src/orchestrator/destination.ts";
import type { Publisher } from "../../src/publish/publisher.ts";
import { waitFor } from "../helpers/wait-for.ts";

interface Fake {
  monitor: HealthMonitor;
  health: HealthTracker;
  lines: Array<Record<string, any>>;
  /** what the destination's delivery reports as problems now */
  problems: string[];
}

const monitors: HealthMonitor[] = [];
afterEach(() => {
  for (const m of monitors.splice(0)) m.stop();
});

function fake(o: { runners?: QuietWatch[]; summaryEveryMs?: number; reportsChanges?: boolean } = {}): Fake {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const health = new HealthTracker();
  const state = { problems: [] as string[] };
  const publisher = {
    status: () => ({ mode: "fake", connected: true, closed: false, reconnects: 0 }),
    ...(o.reportsChanges !== false && { onStatusChange: () => () => {} }),
  } as unknown as Publisher;
  const destination = {
    name: "default",
    queue: { length: 0 },
    delivery: { problems: () => state.problems, publisher, spoolDepth: () => 0 },
  } as unknown as Destination;
  const monitor = new HealthMonitor({ health, destinations: () => [destination], log, runners: () => o.runners ?? [], summaryEveryMs: () => o.summaryEveryMs ?? 0 });
  monitors.push(monitor);
  health.onChange = () => monitor.changed();
  return {
    monitor,
    health,
    lines,
    get problems() {
      return state.problems;
    },
    set problems(p: string[]) {
      state.problems = p;
    },
  };
}

/** Waits for the first look (HEALTH_CHECK_MS after start), after which changes are looked at as they come. */
async function firstLook(monitor: HealthMonitor): Promise<void> {
  const at = monitor.nextWakeAt!;
  await waitFor(() => monitor.nextWakeAt !== at, "the first look", 3000);
}

describe("HealthMonitor", () => {
  test("healthy, no summary, no quiet period to watch: no timer at all after the first look", async () => {
    const f = fake();
    const started = Date.now();
    f.monitor.start();
    expect(f.monitor.nextWakeAt).toBeGreaterThanOrEqual(started + HEALTH_CHECK_MS);
    await firstLook(f.monitor);
    expect(f.monitor.nextWakeAt).toBeUndefined();
    await Bun.sleep(HEALTH_CHECK_MS + 200);
    expect(f.monitor.nextWakeAt).toBeUndefined();
    expect(f.lines).toEqual([]);
  });

  test("a publisher that cannot report its changes is polled each second", async () => {
    const f = fake({ reportsChanges: false });
    f.monitor.start();
    await firstLook(f.monitor);
    expect(f.monitor.nextWakeAt).toBeDefined();
    expect(f.monitor.nextWakeAt! - Date.now()).toBeLessThanOrEqual(HEALTH_CHECK_MS);
  });

  test("a change is logged as soon as it is reported, sampled each second while degraded, then no timer again", async () => {
    const f = fake();
    f.monitor.start();
    await firstLook(f.monitor);
    f.problems = ["NATS disconnected"];
    const told = Date.now();
    f.monitor.changed();
    await waitFor(() => f.lines.some((l) => l.msg === "agent degraded: NATS disconnected"), "the degraded line", 2000);
    expect(f.lines.find((l) => l.msg.startsWith("agent degraded"))!.time - told).toBeLessThan(HEALTH_CHECK_MS / 2);
    // degraded: sampled, so a change nobody reports (spool depth, a probe timing out) is still seen
    expect(f.monitor.nextWakeAt).toBeDefined();
    f.problems = [];
    await waitFor(() => f.lines.some((l) => l.msg === "agent healthy"), "the healthy line", 3000);
    expect(f.monitor.nextWakeAt).toBeUndefined();
  });

  test("a collector's state change is logged at once (through HealthTracker.onChange)", async () => {
    const f = fake();
    f.monitor.start();
    await firstLook(f.monitor);
    const told = Date.now();
    const h = f.health.collector("x");
    h.error("boom");
    h.state = "failed";
    await waitFor(() => f.lines.some((l) => l.msg === "agent degraded: collector x failed: boom"), "the degraded line", 2000);
    expect(f.lines.at(-1)!.time - told).toBeLessThan(HEALTH_CHECK_MS / 2);
  });

  test("changes before the first look wait for it (NATS is still connecting at start)", async () => {
    const f = fake();
    f.monitor.start();
    f.problems = ["NATS disconnected"];
    f.monitor.changed();
    await Bun.sleep(100);
    expect(f.lines).toEqual([]);
    f.problems = [];
    await firstLook(f.monitor);
    expect(f.lines).toEqual([]);
  });

  test("wakes at a runner's quiet deadline, and not again once it has nothing due", async () => {
    const checks: number[] = [];
    let deadline: number | undefined = Date.now() + HEALTH_CHECK_MS + 300;
    const runner: QuietWatch = {
      checkQuiet: (now) => {
        checks.push(now);
        if (deadline !== undefined && now >= deadline) deadline = undefined; // warned: nothing due until it emits again
      },
      quietDeadline: () => deadline,
    };
    const f = fake({ runners: [runner] });
    const due = deadline!;
    f.monitor.start();
    await firstLook(f.monitor);
    expect(f.monitor.nextWakeAt).toBe(due);
    await waitFor(() => checks.some((t) => t >= due), "the check at the quiet deadline", 3000);
    expect(checks.find((t) => t >= due)! - due).toBeLessThan(HEALTH_CHECK_MS / 2);
    expect(f.monitor.nextWakeAt).toBeUndefined();
    // it emitted again: a new deadline, told by changed()
    deadline = Date.now() + 200;
    f.monitor.changed();
    await waitFor(() => f.monitor.nextWakeAt === deadline, "the new deadline armed", 2000);
  });

  test("a summary is due each health_interval: the only timer of a healthy agent", async () => {
    const f = fake({ summaryEveryMs: 1500 });
    f.monitor.start();
    await firstLook(f.monitor);
    const at = f.monitor.nextWakeAt!;
    expect(at).toBeDefined();
    await waitFor(() => f.lines.some((l) => l.msg?.startsWith("health: healthy")), "the summary", 3000);
    const summary = f.lines.find((l) => l.msg.startsWith("health: healthy"))!;
    expect(summary.time - at).toBeLessThan(HEALTH_CHECK_MS / 2);
    expect(f.monitor.nextWakeAt! - summary.time).toBeGreaterThan(1400);
  });
});
