// The kernel's notifications on the fixture trees: inotify works on regular
// files too, so a memory.events rewritten by the test is seen as the kernel's
// own change would be; PSI triggers and v1 OOM eventfds need procfs and
// cgroupfs, so on fixtures the collector says it polls them, and why.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isOomOutcome, MemoryCollector, OOM_RECHECK_MS } from "../../../src/collectors/memory/index.ts";
import { PSI_WINDOW_US, triggerLine } from "../../../src/collectors/memory/psi-triggers.ts";
import { runInBackground } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";
import { cgroupV1, cgroupV2, CONTAINER_A, custom, fakeProc, memoryConfig, V2_CPU_IDLE, V2_EVENTS_ZERO } from "./helpers.ts";

/** A second container of the fixture pod, made while the collector runs. */
const CONTAINER_B = "b".repeat(64);

const dir = makeTempDir("memory-notify");
afterAll(() => removeTempDir(dir));

const NODE_QUIET = { psi: { memory: { some_avg10: 0, full_avg10: 0 }, cpu: { some_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }, memory_available: { percent: 0, bytes: 0 } };

describe("event sources on fixtures", () => {
  test("v2 memory.events: a change is read when inotify says so, long before the next poll; only that pod is read", async () => {
    const cg = cgroupV2(dir, [CONTAINER_A]);
    const a = cg.dir("", CONTAINER_A);
    const interval = 10_000;
    const { rec, stop } = runInBackground(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, interval: `${interval}ms`, ...NODE_QUIET })));
    try {
      await waitFor(() => rec.sourceModes.get("memory.events")?.mode === "event", "memory.events watched");
      expect(rec.sourceModes.get("memory.events")).toEqual({ mode: "event" });
      // Watched from the first round on: anything else is the poll's.
      expect(rec.pollRounds.length).toBe(1);
      const written = Date.now();
      writeFileSync(join(a, "memory.events"), "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n");
      await waitFor(() => rec.events.length > 0, "the oom_kill event", interval / 2);
      // Stamped when emitted (the recording's schema check afterwards takes its time on first use).
      const latency = Date.parse(rec.events[0]!.timestamp) - written;
      console.log(`memory.events changed -> event: ${latency.toFixed(1)} ms (interval ${interval} ms)`);
      expect(latency).toBeLessThan(interval / 10);
      expect(rec.pollRounds.length).toBe(1);
      expect(rec.events.map((e) => (e.event_data.container as { action: string }).action)).toEqual(["oom_kill"]);
      expect(rec.events[0]!.metadata.container_id).toBe(CONTAINER_A);
      expect(custom(rec.events[0])).toMatchObject({ oom_kill_delta: "1", oom_delta: "1", max_delta: "2" });
      // A rewrite that changes no counter says nothing.
      writeFileSync(join(a, "memory.events"), readFileSync(join(a, "memory.events"), "utf8"));
      writeFileSync(join(cg.dir(""), "memory.events"), V2_EVENTS_ZERO);
      writeFileSync(join(a, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
      await waitFor(() => rec.events.length > 1, "the max event");
      expect(rec.events.map((e) => (e.event_data.container as { action: string }).action)).toEqual(["oom_kill", "max"]);
    } finally {
      expect(await stop()).toBeLessThan(PROMPTLY_MS);
    }
  }, 15_000);

  test("a container cgroup made after the last round is read at once (inotify on its pod's folder), its memory.events watched from then on", async () => {
    const cg = cgroupV2(dir, [CONTAINER_A]);
    const { rec, stop } = runInBackground(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, interval: "1h", ...NODE_QUIET })));
    try {
      await waitFor(() => rec.sourceModes.get("memory.events")?.mode === "event", "memory.events watched");
      expect(rec.pollRounds.length).toBe(1);
      // The new cgroup appears whole, as one rename into the pod's folder (the kernel makes a cgroup with its files at once).
      const staged = join(dir, `staged-${CONTAINER_B}`);
      mkdirSync(staged);
      for (const [file, text] of [["memory.current", "0\n"], ["memory.max", "max\n"], ["memory.events", V2_EVENTS_ZERO], ["cpu.stat", V2_CPU_IDLE]] as const) writeFileSync(join(staged, file), text);
      renameSync(staged, cg.dir("", CONTAINER_B));
      await waitFor(() => rec.pollRounds.length === 2, "an early round for the new cgroup", 5_000);
      const written = Date.now();
      writeFileSync(join(cg.dir("", CONTAINER_B), "memory.events"), "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n");
      await waitFor(() => rec.events.some((e) => e.metadata.container_id === CONTAINER_B), "the new container's oom_kill", 5_000);
      const event = rec.events.find((e) => e.metadata.container_id === CONTAINER_B)!;
      expect((event.event_data.container as { action: string }).action).toBe("oom_kill");
      expect(Date.parse(event.timestamp) - written).toBeLessThan(1000);
      // Read by its notification, not by a third round.
      expect(rec.pollRounds.length).toBe(2);
    } finally {
      expect(await stop()).toBeLessThan(PROMPTLY_MS);
    }
  }, 15_000);

  test("PSI on a regular file and v1 on plain directories: polled, with the reason", async () => {
    const cg = cgroupV1(dir, [CONTAINER_A]);
    const proc = fakeProc(dir, "local");
    const before = readFileSync(join(proc, "pressure/memory"), "utf8");
    const { rec, stop } = runInBackground(new MemoryCollector(memoryConfig({ proc_root: proc, cgroup_root: cg.root, interval: "10s" })));
    try {
      await waitFor(() => rec.sourceModes.has("memory.events") && rec.sourceModes.has("psi"), "both modes");
      expect(rec.sourceModes.get("psi")).toEqual({ mode: "poll", reason: `${proc}/pressure is not procfs: no PSI triggers` });
      expect(rec.sourceModes.get("memory.events")).toEqual({ mode: "poll", reason: `${cg.root}/memory is not a cgroup v1 mount (a plain directory?): no OOM notifications` });
      // Nothing was written to the fakes.
      expect(readFileSync(join(proc, "pressure/memory"), "utf8")).toBe(before);
      // Polled: the first round read PSI as always.
      expect(rec.events.map((e) => e.type)).toEqual(["node.cpu_pressure"]);
    } finally {
      expect(await stop()).toBeLessThan(PROMPTLY_MS);
    }
  });

  test("notify: false polls both, and says so", async () => {
    const cg = cgroupV2(dir, []);
    const { rec, stop } = runInBackground(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, notify: false })));
    await waitFor(() => rec.pollRounds.length > 0);
    await stop();
    expect(Object.fromEntries(rec.sourceModes)).toEqual({ psi: { mode: "poll", reason: "notify: false" }, "memory.events": { mode: "poll", reason: "notify: false" } });
  });

  test("v1 OOM: a notified pod whose read shows no kill yet is re-read every millisecond for 20 ms, then at 100 and 500 ms, and no more", () => {
    // The eventfd fires before the kill; the counter grows once the report is written (< 1 ms on
    // 6.18): read again within a millisecond of it while that is likely, then rarely, then never.
    const at = OOM_RECHECK_MS.map((_, i) => OOM_RECHECK_MS.slice(0, i + 1).reduce((a, b) => a + b, 0));
    expect(OOM_RECHECK_MS.slice(0, 20)).toEqual(Array.from({ length: 20 }, () => 1));
    expect(at.slice(19)).toEqual([20, 120, 620]);
  });

  test("v1 OOM: the re-reads end with the kill (or under_oom), not with the failcnt that grows as the limit is hit before it", () => {
    const event = (action: string) => ({ type: "container.memory_pressure", severity: "warning" as const, event_data: { container: { container_id: "", state: "running", action }, custom: {} } });
    expect(["oom_kill", "oom_group_kill", "under_oom"].map((a) => isOomOutcome(event(a)))).toEqual([true, true, true]);
    expect(["failcnt", "usage_high", "max", "oom_resolved"].map((a) => isOomOutcome(event(a)))).toEqual([false, false, false, false]);
    expect(isOomOutcome({ type: "node.memory_pressure", severity: "warning", event_data: { custom: {} } })).toBe(false);
  });

  test("avg10 thresholds map to triggers of that share of a 10 s window, NUL-terminated", () => {
    expect(PSI_WINDOW_US).toBe(10_000_000);
    expect(triggerLine("some", 10)).toBe("some 1000000 10000000\0");
    expect(triggerLine("full", 5)).toBe("full 500000 10000000\0");
    expect(triggerLine("some", 100)).toBe("some 10000000 10000000\0");
    // The kernel refuses a zero stall: the smallest threshold still asks for 1 µs.
    expect(triggerLine("some", 0.000001)).toBe("some 1 10000000\0");
  });
});
