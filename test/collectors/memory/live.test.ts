// Live, on this machine: the real /proc/pressure and /proc/meminfo, and,
// where the v1 memory and cpu controllers can be written (root), a pod laid
// out as kubelet lays one out, its container throttled by a CPU quota and then
// OOM-killed by its memory limit.
import { afterAll, describe, expect, test } from "bun:test";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryCollector } from "../../../src/collectors/memory/index.ts";
import { recordingContext, runOnce } from "../../helpers/collector-context.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../../helpers/cleanup.ts";
import { custom, memoryConfig } from "./helpers.ts";
import { waitFor } from "../../helpers/wait-for.ts";

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
