// Live, on this machine: the real /proc/pressure and /proc/meminfo, and,
// where the v1 memory and cpu controllers can be written (root), a pod laid
// out as kubelet lays one out, its container throttled by a CPU quota and then
// OOM-killed by its memory limit.
import { afterAll, describe, expect, test } from "bun:test";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { join } from "node:path";
import { MemoryCollector } from "../../../src/collectors/memory/index.ts";
import { recordingContext, runInBackground, runOnce } from "../../helpers/collector-context.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../../helpers/cleanup.ts";
import { custom, memoryConfig } from "./helpers.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const V1 = "/sys/fs/cgroup";
const v1Writable = existsSync(join(V1, "memory/memory.oom_control")) && existsSync(join(V1, "cpu/cpu.cfs_quota_us")) && writable(join(V1, "memory")) && writable(join(V1, "cpu"));

const dir = makeTempDir("memory-live");
afterAll(() => removeTempDir(dir));

describe("memory collector, live", () => {
  test.skipIf(!existsSync("/proc/pressure/memory"))("the real /proc/pressure/* and /proc/meminfo read and parse; only a missing kubepods makes it degraded", async () => {
    const rec = await runOnce(new MemoryCollector(memoryConfig({ memory_available: { percent: 100 } })));
    expect(rec.parseErrors).toEqual([]);
    for (const reason of rec.degraded) expect(reason).toMatch(/^no kubepods cgroup under \/sys\/fs\/cgroup/);
    const meminfo = rec.events.find((e) => custom(e).source === "meminfo");
    const total = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
    expect(custom(meminfo)).toMatchObject({ state: "pressure", mem_total_bytes: String(total) });
  });

  test.skipIf(!v1Writable)(
    "a real pod cgroup: its container throttled by a 10 ms / 100 ms quota, then OOM-killed at its 32 MiB limit",
    async () => {
      const podUid = crypto.randomUUID();
      const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
      const top = `tapio-test-${process.pid}`;
      const root = join(dir, "cgroup");
      mkdirSync(root);
      const created: string[] = [];
      const container: Record<string, string> = {};
      for (const hierarchy of ["memory", "cpu"]) {
        // The fake root points at a cgroup of our own, so the walk sees only this pod.
        symlinkSync(join(V1, hierarchy, top), join(root, hierarchy));
        let path = join(V1, hierarchy);
        for (const part of [top, "kubepods", "burstable", `pod${podUid}`, containerId]) {
          path = join(path, part);
          mkdirSync(path);
          created.push(path);
        }
        container[hierarchy] = path;
      }
      writeFileSync(join(container.cpu!, "cpu.cfs_quota_us"), "10000");
      writeFileSync(join(container.memory!, "memory.limit_in_bytes"), String(32 * 1024 * 1024));
      const rec = recordingContext({ once: false });
      const collector = new MemoryCollector(memoryConfig({ cgroup_root: root, interval: "500ms", cpu_throttling: { min_periods: 3 }, psi: { memory: { some_avg10: 0, full_avg10: 0 }, cpu: { some_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }, memory_available: { percent: 0, bytes: 0 } }));
      const done = collector.run(rec.ctx);
      try {
        await waitFor(() => rec.healthyCalls + rec.degraded.length > 0, "the first round, the baseline of the counters");
        // Busy under the quota for 1.5 s; then, out of the cpu cgroup so the quota does not slow it, fill the memory limit.
        const script = `echo $$ > ${container.memory}/cgroup.procs && echo $$ > ${container.cpu}/cgroup.procs && timeout 1.5 sh -c 'while :; do :; done'; echo $$ > ${V1}/cpu/cgroup.procs; head -c 300M /dev/zero | tail`;
        const victim = Bun.spawn(["sh", "-c", script], { stdout: "ignore", stderr: "ignore" });
        killAtExit(victim.pid);
        await victim.exited;
        spare(victim.pid);
        const seen = (type: string, action?: string) =>
          rec.events.find((e) => e.type === type && e.metadata.container_id === containerId && (!action || (e.event_data.container as { action: string }).action === action));
        await waitFor(() => seen("container.cpu_throttling") !== undefined && seen("container.memory_pressure", "oom_kill") !== undefined, "throttling and memory-pressure events", 15_000);
        expect(seen("container.cpu_throttling")!.metadata.pod_uid).toBe(podUid);
        // The kernel may kill `tail` and then `head` in the same poll interval: one kill or two.
        expect(Number(custom(seen("container.memory_pressure", "oom_kill")).oom_kill_delta)).toBeGreaterThanOrEqual(1);
        expect(rec.parseErrors).toEqual([]);
      } finally {
        rec.stop();
        await done;
        for (const path of created.reverse()) if (existsSync(path)) rmdirSync(path);
      }
    },
    30_000,
  );
});

/** A memory cgroup of our own under the v1 hierarchy, `parts` deep; removed in reverse. */
function makeV1Cgroups(parts: string[]): { dirs: string[]; remove(): void } {
  const dirs: string[] = [];
  let path = join(V1, "memory");
  for (const part of parts) {
    path = join(path, part);
    mkdirSync(path);
    dirs.push(path);
  }
  return { dirs, remove: () => dirs.toReversed().forEach((d) => existsSync(d) && rmdirSync(d)) };
}

/** Kills what still runs in a cgroup (a shell's children too), so it can be removed. */
async function emptyCgroup(cgroup: string): Promise<void> {
  const pids = () => readFileSync(join(cgroup, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  for (const pid of pids()) process.kill(pid, "SIGKILL");
  await waitFor(() => pids().length === 0, `${cgroup} empty`);
}

/** Wall-clock ms of the kernel log records matching `pattern` after `marker`, calibrated by the marker written to /dev/kmsg. */
function kmsgWallTimes(marker: string, writtenAt: number, pattern: RegExp): number[] {
  const lines = Bun.spawnSync(["dmesg", "-r"]).stdout.toString().split("\n");
  const stamp = (line: string) => Number(/^<\d+>\[\s*(\d+\.\d+)\]/.exec(line)?.[1]) * 1000;
  const at = lines.findIndex((l) => l.includes(marker));
  const offset = writtenAt - stamp(lines[at]!);
  return lines.slice(at + 1).filter((l) => pattern.test(l)).map((l) => stamp(l) + offset);
}

function markKmsg(): { marker: string; writtenAt: number } {
  const marker = `tapio-memory-test-${crypto.randomUUID()}`;
  const before = Date.now();
  writeFileSync("/dev/kmsg", `${marker}\n`);
  return { marker, writtenAt: (before + Date.now()) / 2 };
}

const NODE_QUIET = { psi: { memory: { some_avg10: 0, full_avg10: 0 }, cpu: { some_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }, memory_available: { percent: 0, bytes: 0 } };
const action = (e: CollectorEvent) => (e.event_data.container as { action?: string } | undefined)?.action;

describe("memory collector, live, the kernel's notifications", () => {
  test.skipIf(!v1Writable || !existsSync("/dev/kmsg"))(
    "v1: the OOM eventfd reports a kill at once, with the poll 10 s away",
    async () => {
      const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
      const cgroups = makeV1Cgroups([`tapio-test-oom-${process.pid}`, "kubepods", "burstable", `pod${crypto.randomUUID()}`, containerId]);
      const container = cgroups.dirs.at(-1)!;
      writeFileSync(join(container, "memory.limit_in_bytes"), String(32 * 1024 * 1024));
      const root = join(dir, "cgroup-oom");
      mkdirSync(root);
      symlinkSync(cgroups.dirs[0]!, join(root, "memory"));
      const interval = 10_000;
      const { rec, stop } = runInBackground(new MemoryCollector(memoryConfig({ cgroup_root: root, interval: `${interval}ms`, ...NODE_QUIET })));
      try {
        await waitFor(() => rec.sourceModes.get("memory.events")?.mode === "event", "the OOM eventfds registered");
        const { marker, writtenAt } = markKmsg();
        const victim = Bun.spawn(["sh", "-c", `echo $$ > ${container}/cgroup.procs && head -c 300M /dev/zero | tail`], { stdout: "ignore", stderr: "ignore" });
        killAtExit(victim.pid);
        await victim.exited;
        spare(victim.pid);
        await waitFor(() => rec.events.some((e) => action(e) === "oom_kill"), "the oom_kill event", interval / 2);
        const kills = kmsgWallTimes(marker, writtenAt, /Memory cgroup out of memory: Killed process/);
        const event = rec.events.find((e) => action(e) === "oom_kill")!;
        const latency = Date.parse(event.timestamp) - kills[0]!;
        console.log(`v1 OOM kill (kernel log) -> event: ${latency.toFixed(1)} ms; poll interval ${interval} ms`);
        expect(event.metadata.container_id).toBe(containerId);
        expect(rec.pollRounds.length).toBe(1);
        expect(latency).toBeLessThan(interval / 20);
      } finally {
        expect(await stop()).toBeLessThan(PROMPTLY_MS);
        cgroups.remove();
      }
    },
    30_000,
  );

  test.skipIf(!v1Writable || !existsSync("/proc/pressure/memory"))(
    "PSI trigger: memory pressure made by reading a file through a 16 MiB cgroup is reported by the trigger, not a poll",
    async () => {
      // Reading a file 8 times the limit over and over: page cache thrashing, which PSI counts as memory stall.
      const cgroups = makeV1Cgroups([`tapio-test-psi-${process.pid}`]);
      writeFileSync(join(cgroups.dirs[0]!, "memory.limit_in_bytes"), String(16 * 1024 * 1024));
      const file = join(dir, "psi-load.bin");
      Bun.spawnSync(["sh", "-c", `head -c 128M /dev/urandom > ${file}`]);
      // avg10 of 1 %: a trigger on 100 ms of stall in 10 s. The load makes a few %, a quiet machine 0.
      const config = memoryConfig({ cgroup_root: join(dir, "no-cgroups"), interval: "1h", ...NODE_QUIET, psi: { ...NODE_QUIET.psi, memory: { some_avg10: 1, full_avg10: 0 } } });
      const { rec, stop } = runInBackground(new MemoryCollector(config));
      const psi = (state: string) => rec.events.filter((e) => e.type === "node.memory_pressure" && custom(e).state === state);
      let load: ReturnType<typeof Bun.spawn> | undefined;
      try {
        await waitFor(() => rec.sourceModes.get("psi")?.mode === "event" && rec.pollRounds.length > 0, "the PSI trigger set");
        // Pressure from elsewhere on this machine at start: wait until it is over.
        if (psi("pressure").length > 0) await waitFor(() => psi("recovered").length > 0, "the node's pressure to end", 60_000, 100);
        const before = psi("pressure").length;
        const started = Date.now();
        load = Bun.spawn(["sh", "-c", `echo $$ > ${cgroups.dirs[0]}/cgroup.procs && dd if=${file} iflag=nocache count=0 2>/dev/null; for i in $(seq 30); do cat ${file} > /dev/null; done`], { stdout: "ignore", stderr: "ignore" });
        killAtExit(load.pid);
        await waitFor(() => psi("pressure").length > before, "memory pressure from the trigger", 15_000, 20);
        const event = psi("pressure").at(-1)!;
        const latency = Date.parse(event.timestamp) - started;
        console.log(`load started -> node.memory_pressure: ${latency} ms (avg10 ${custom(event).avg10}; PSI averages move every 2 s; the poll is an hour away)`);
        // PSI is not polled in event mode: the one round there was did not read it.
        expect(rec.pollRounds.length).toBe(1);
        expect(latency).toBeLessThan(10_000);
      } finally {
        expect(await stop()).toBeLessThan(PROMPTLY_MS);
        await emptyCgroup(cgroups.dirs[0]!);
        await load?.exited;
        cgroups.remove();
      }
    },
    90_000,
  );
});
