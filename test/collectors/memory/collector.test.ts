import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import fc from "fast-check";
import { MemoryCollector, memoryFactory } from "../../../src/collectors/memory/index.ts";
import { parseMeminfo, parsePsi, parseValue } from "../../../src/collectors/memory/parse.ts";
import { parseKeyed } from "../../../src/collectors/common/keyed.ts";
import { recordingContext, runOnce, type Recording } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import {
  cgroupV1,
  cgroupV2,
  CONTAINER_A,
  CONTAINER_B,
  custom,
  fakeProc,
  memoryConfig,
  POD_UID,
  recorded,
  write,
} from "./helpers.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const dir = makeTempDir("memory");
afterAll(() => removeTempDir(dir));

const summary = (rec: Recording) => rec.events.map((e) => `${e.type} ${e.severity} ${custom(e).state ?? (e.event_data.container as { action: string }).action}`);
/** PSI and meminfo thresholds that never fire, to look at the cgroups alone. */
const NODE_QUIET = { psi: { memory: { some_avg10: 0, full_avg10: 0 }, cpu: { some_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }, memory_available: { percent: 0, bytes: 0 } };

describe("node pressure: PSI and meminfo", () => {
  test("Linux 6.18 recording, default thresholds: cpu some avg10 88.4 is pressure; said once, and once more when it is over", async () => {
    const proc = fakeProc(dir, "local");
    const collector = new MemoryCollector(memoryConfig({ proc_root: proc, cgroup_root: cgroupV1(dir, []).root }));
    const first = await runOnce(collector);
    expect(summary(first)).toEqual(["node.cpu_pressure warning pressure"]);
    // Read from the kernel, not the kubelet: no kubelet member.
    expect(Object.keys(first.events[0]!.event_data)).toEqual(["custom"]);
    expect(custom(first.events[0])).toEqual({
      source: "psi",
      resource: "cpu",
      kind: "some",
      state: "pressure",
      avg10: "88.40",
      avg60: "62.22",
      avg300: "30.90",
      total_us: "142278255",
      threshold_avg10: "80.00",
    });
    expect(first.events[0]!.metadata).toMatchObject({ node_name: "node-1" });
    expect((await runOnce(collector)).events).toEqual([]);
    // Below 80 but within the hysteresis (72): still pressure.
    writeFileSync(join(proc, "pressure/cpu"), "some avg10=75.00 avg60=62.22 avg300=30.90 total=142300000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    expect((await runOnce(collector)).events).toEqual([]);
    writeFileSync(join(proc, "pressure/cpu"), "some avg10=12.00 avg60=40.00 avg300=30.90 total=142400000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    expect(summary(await runOnce(collector))).toEqual(["node.cpu_pressure info recovered"]);
  });

  test("procfs recording: full lines are high severity; a cpu file without full is fine", async () => {
    const proc = fakeProc(dir, "procfs");
    const config = memoryConfig({ proc_root: proc, cgroup_root: cgroupV1(dir, []).root, psi: { memory: { some_avg10: 0.1, full_avg10: 0.2 }, cpu: { some_avg10: 0.1, full_avg10: 1 }, io: { some_avg10: 0, full_avg10: 0.2 } } });
    const rec = await runOnce(new MemoryCollector(config));
    expect(summary(rec)).toEqual(["node.memory_pressure warning pressure", "node.memory_pressure high pressure", "node.cpu_pressure warning pressure", "node.io_pressure high pressure"]);
    expect(rec.parseErrors).toEqual([]);
  });

  test("available memory: MemAvailable against percent and bytes; estimated from free and cache before Linux 3.14", async () => {
    const local = await runOnce(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cgroupV1(dir, []).root, psi: NODE_QUIET.psi, memory_available: { percent: 98, bytes: 0 } })));
    expect(summary(local)).toEqual(["node.memory_pressure warning pressure"]);
    expect(Object.keys(local.events[0]!.event_data)).toEqual(["custom"]);
    expect(custom(local.events[0])).toEqual({
      source: "meminfo",
      state: "pressure",
      mem_total_bytes: String(24684092 * 1024),
      mem_available_bytes: String(24015576 * 1024),
      available_percent: "97.29",
      threshold_percent: "98.00",
      threshold_bytes: "0",
    });

    const proc = fakeProc(dir, "procfs");
    const collector = new MemoryCollector(memoryConfig({ proc_root: proc, cgroup_root: cgroupV1(dir, []).root, psi: NODE_QUIET.psi, memory_available: { percent: 0, bytes: "14GB" } }));
    const old = await runOnce(collector);
    expect(custom(old.events[0])).toMatchObject({ state: "pressure", mem_available_bytes: String((440324 + 1020128 + 12007640) * 1024), estimated: "true" });
    // 10% over the threshold is needed to recover.
    writeFileSync(join(proc, "meminfo"), "MemTotal: 20000000 kB\nMemAvailable: 14500000 kB\n");
    expect((await runOnce(collector)).events).toEqual([]);
    writeFileSync(join(proc, "meminfo"), "MemTotal: 20000000 kB\nMemAvailable: 15500000 kB\n");
    expect(summary(await runOnce(collector))).toEqual(["node.memory_pressure info recovered"]);
  });
});

describe("pod cgroups, v1 (cgroupfs driver)", () => {
  test("the first round takes baselines; later OOM kills and limit hits are reported per container", async () => {
    const cg = cgroupV1(dir, [CONTAINER_A, CONTAINER_B]);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    // Counts from before the collector started are history.
    writeFileSync(join(cg.dir("memory", CONTAINER_A), "memory.failcnt"), "7\n");
    const first = await runOnce(collector);
    expect(first.events).toEqual([]);
    expect(first.degraded).toEqual([]);

    writeFileSync(join(cg.dir("memory", CONTAINER_A), "memory.failcnt"), "12\n");
    writeFileSync(join(cg.dir("memory", CONTAINER_A), "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    const second = await runOnce(collector);
    expect(summary(second)).toEqual(["container.memory_pressure error oom_kill"]);
    const [event] = second.events;
    expect(event!.event_data.container).toEqual({ container_id: CONTAINER_A, state: "running", action: "oom_kill" });
    expect(custom(event)).toEqual({ cgroup_path: `/kubepods/burstable/pod${POD_UID}/${CONTAINER_A}`, oom_kill_delta: "1", failcnt_delta: "5" });
    expect(event!.metadata).toMatchObject({ node_name: "node-1", pod_uid: POD_UID, container_id: CONTAINER_A });
    expect(event!.correlation_hints).toEqual({ pod_uid: POD_UID, container_id: CONTAINER_A, cgroup_path: `/kubepods/burstable/pod${POD_UID}/${CONTAINER_A}` });
    expect((await runOnce(collector)).events).toEqual([]);
  });

  test("a pod-level count its containers explain is not reported twice; what they do not explain is the pod's", async () => {
    const cg = cgroupV1(dir, [CONTAINER_A]);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    await runOnce(collector);
    // A kernel counting oom_kill up the hierarchy: the pod sees the container's kill too.
    for (const container of [CONTAINER_A, undefined]) writeFileSync(join(cg.dir("memory", container), "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    expect(summary(await runOnce(collector))).toEqual(["container.memory_pressure error oom_kill"]);
    // failcnt counts the pod's own limit: a pod-level event, without container.
    writeFileSync(join(cg.dir("memory"), "memory.failcnt"), "3\n");
    const pod = await runOnce(collector);
    expect(summary(pod)).toEqual(["container.memory_pressure warning failcnt"]);
    expect(pod.events[0]!.event_data.container).toEqual({ container_id: "", state: "running", action: "failcnt" });
    expect(pod.events[0]!.metadata!.container_id).toBeUndefined();
  });

  test("usage against the limit, and under_oom: reported when entered and when left", async () => {
    const cg = cgroupV1(dir, [CONTAINER_B]);
    const b = cg.dir("memory", CONTAINER_B);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    writeFileSync(join(b, "memory.limit_in_bytes"), String(100 * 1024 * 1024));
    writeFileSync(join(b, "memory.usage_in_bytes"), String(95 * 1024 * 1024));
    const high = await runOnce(collector);
    expect(summary(high)).toEqual(["container.memory_pressure warning usage_high"]);
    expect(custom(high.events[0])).toMatchObject({ usage_bytes: String(95 * 1024 * 1024), limit_bytes: String(100 * 1024 * 1024), usage_percent: "95.00", threshold_percent: "90.00" });
    writeFileSync(join(b, "memory.oom_control"), "oom_kill_disable 1\nunder_oom 1\noom_kill 0\n");
    expect(summary(await runOnce(collector))).toEqual(["container.memory_pressure high under_oom"]);
    writeFileSync(join(b, "memory.oom_control"), "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n");
    writeFileSync(join(b, "memory.usage_in_bytes"), String(50 * 1024 * 1024));
    expect(summary(await runOnce(collector))).toEqual(["container.memory_pressure info usage_normal", "container.memory_pressure info oom_resolved"]);
    expect((await runOnce(collector)).events).toEqual([]);
  });

  test("under_oom with the OOM killer on is the moment before the kill, not a cgroup held under OOM: no event, and the kill is reported", async () => {
    const cg = cgroupV1(dir, [CONTAINER_B]);
    const b = cg.dir("memory", CONTAINER_B);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    await runOnce(collector);
    // What a read right after the kernel's OOM signal can see (memcg1_oom_prepare marks, signals, unmarks, then kills).
    writeFileSync(join(b, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 1\noom_kill 0\n");
    expect((await runOnce(collector)).events).toEqual([]);
    writeFileSync(join(b, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    expect(summary(await runOnce(collector))).toEqual(["container.memory_pressure error oom_kill"]);
  });

  test("a container that appears after the start counts from zero; one that goes away is forgotten", async () => {
    const cg = cgroupV1(dir, [CONTAINER_A]);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    await runOnce(collector);
    rmSync(cg.dir("memory", CONTAINER_A), { recursive: true });
    rmSync(cg.dir("cpu", CONTAINER_A), { recursive: true });
    mkdirSync(cg.dir("memory", CONTAINER_B));
    for (const file of ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt"]) writeFileSync(join(cg.dir("memory", CONTAINER_B), file), recorded(`cgroup-v1-memory/${file}`));
    writeFileSync(join(cg.dir("memory", CONTAINER_B), "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    const rec = await runOnce(collector);
    expect(summary(rec)).toEqual(["container.memory_pressure error oom_kill"]);
    expect(rec.events[0]!.metadata!.container_id).toBe(CONTAINER_B);
    expect(rec.degraded).toEqual([]);
  });

  test("CPU throttling: the recorded 2 s busy loop under a 10 ms / 100 ms quota (16 of 24 periods) is throttling, and its end recovery", async () => {
    const cg = cgroupV1(dir, [CONTAINER_A]);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    await runOnce(collector);
    writeFileSync(join(cg.dir("cpu", CONTAINER_A), "cpu.stat"), recorded("cgroup-v1-cpu.stat.throttled"));
    const throttled = await runOnce(collector);
    expect(summary(throttled)).toEqual(["container.cpu_throttling warning throttled"]);
    expect(throttled.events[0]!.event_data.scheduler).toEqual({ event_type: "cfs_throttle", throttle_pct: 66.67, throttle_ms: 893.798, container_id: CONTAINER_A });
    expect(custom(throttled.events[0])).toEqual({
      cgroup_path: `/kubepods/burstable/pod${POD_UID}/${CONTAINER_A}`,
      state: "throttled",
      throttled_percent: "66.67",
      periods: "24",
      throttled_periods: "16",
      throttled_time_ns: "893798447",
      threshold_percent: "25.00",
    });
    expect(throttled.events[0]!.metadata).toMatchObject({ pod_uid: POD_UID, container_id: CONTAINER_A });
    // No periods since: nothing runs, nothing is throttled.
    expect(summary(await runOnce(collector))).toEqual(["container.cpu_throttling info recovered"]);
  });

  test("CPU throttling needs min_periods periods to judge", async () => {
    const cg = cgroupV1(dir, []);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET, cpu_throttling: { min_periods: 30 } }));
    await runOnce(collector);
    writeFileSync(join(cg.dir("cpu"), "cpu.stat"), recorded("cgroup-v1-cpu.stat.throttled"));
    expect((await runOnce(collector)).events).toEqual([]);
  });
});

describe("pod cgroups, v2 (systemd driver)", () => {
  test("memory.events: the worst counter names the event; the pod's own share is reported apart; throttled_usec in ns", async () => {
    const cg = cgroupV2(dir, [CONTAINER_A]);
    const a = cg.dir("", CONTAINER_A);
    const collector = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }));
    expect((await runOnce(collector)).events).toEqual([]);
    writeFileSync(join(a, "memory.events"), "low 0\nhigh 4\nmax 10\noom 1\noom_kill 1\noom_group_kill 0\n");
    // Hierarchical counts: the pod sees its container's plus 3 limit hits of its own.
    writeFileSync(join(cg.dir(""), "memory.events"), "low 0\nhigh 4\nmax 13\noom 1\noom_kill 1\noom_group_kill 0\n");
    writeFileSync(join(a, "cpu.stat"), "usage_usec 9\nuser_usec 0\nsystem_usec 0\nnr_periods 100\nnr_throttled 50\nthrottled_usec 2500\nnr_bursts 0\nburst_usec 0\n");
    const rec = await runOnce(collector);
    expect(summary(rec)).toEqual(["container.memory_pressure error oom_kill", "container.memory_pressure warning max", "container.cpu_throttling warning throttled"]);
    const [container, pod, cpu] = rec.events;
    expect(container!.event_data.container).toEqual({ container_id: CONTAINER_A, runtime: "containerd", state: "running", action: "oom_kill" });
    expect(custom(container)).toMatchObject({ oom_kill_delta: "1", oom_delta: "1", max_delta: "10", high_delta: "4" });
    expect(custom(pod)).toEqual({ cgroup_path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll("-", "_")}.slice`, max_delta: "3" });
    expect(pod!.metadata).toMatchObject({ pod_uid: POD_UID });
    expect(custom(cpu)).toMatchObject({ throttled_percent: "50.00", throttled_time_ns: "2500000" });
  });

  test("memory.max 'max' is no limit: usage is not judged", async () => {
    const cg = cgroupV2(dir, [CONTAINER_A]);
    writeFileSync(join(cg.dir("", CONTAINER_A), "memory.current"), String(2 ** 40));
    const rec = await runOnce(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET })));
    expect(rec.events).toEqual([]);
    writeFileSync(join(cg.dir("", CONTAINER_A), "memory.max"), String(2 ** 40));
    expect(summary(await runOnce(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: cg.root, ...NODE_QUIET }))))).toEqual(["container.memory_pressure warning usage_high"]);
  });
});

describe("missing and broken sources", () => {
  test("no PSI, no cgroup mount, no kubepods: degraded with the reason; the sources that work still report", async () => {
    const proc = fakeProc(dir, "local");
    rmSync(join(proc, "pressure"), { recursive: true });
    const noPsi = await runOnce(new MemoryCollector(memoryConfig({ proc_root: proc, cgroup_root: join(dir, "nowhere"), memory_available: { percent: 98 } })));
    expect(noPsi.degraded.length).toBe(1);
    expect(noPsi.degraded[0]).toStartWith(`no PSI on this kernel (${proc}/pressure is missing: CONFIG_PSI off, or booted with psi=0); ${dir}/nowhere`);
    expect(noPsi.degraded[0]).toContain(`${dir}/nowhere is neither a cgroup v1 nor a cgroup v2 mount`);
    expect(summary(noPsi)).toEqual(["node.memory_pressure warning pressure"]);

    const v2 = cgroupV2(dir, []);
    rmSync(join(v2.root, "kubepods.slice"), { recursive: true });
    const noPods = await runOnce(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: v2.root })));
    expect(noPods.degraded).toEqual([`no kubepods cgroup under ${v2.root} (not a Kubernetes node?)`]);

    const noProc = await runOnce(new MemoryCollector(memoryConfig({ proc_root: join(dir, "no-proc"), cgroup_root: v2.root })));
    expect(noProc.degraded[0]).toContain("does not exist (is the host path mounted?)");
  });

  test("sources whose thresholds are all off are not read: without PSI and meminfo, nothing is wrong", async () => {
    const cg = cgroupV1(dir, []);
    const rec = await runOnce(new MemoryCollector(memoryConfig({ proc_root: join(dir, "empty-proc"), cgroup_root: cg.root, ...NODE_QUIET })));
    expect(rec.degraded).toEqual([]);
  });

  test("a source that appears later is picked up by the next poll: healthy again", async () => {
    const v2 = cgroupV2(dir, []);
    rmSync(join(v2.root, "kubepods.slice"), { recursive: true });
    const rec = recordingContext({ once: false });
    const done = new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), cgroup_root: v2.root, interval: "20ms", ...NODE_QUIET })).run(rec.ctx);
    await waitFor(() => rec.degraded.length >= 2);
    const healthyBefore = rec.healthyCalls;
    mkdirSync(join(v2.root, "kubepods.slice"));
    await waitFor(() => rec.healthyCalls > healthyBefore);
    rec.stop();
    await done;
  });

  test("property: garbage in any file is counted as a parse error, once per file, and the round goes on", async () => {
    const checks: Array<[string, (text: string) => unknown]> = [
      ["pressure/memory", parsePsi],
      ["pressure/cpu", parsePsi],
      ["meminfo", parseMeminfo],
      ["memory.events", parseKeyed],
      ["memory.current", parseValue],
      ["cpu.stat", parseKeyed],
    ];
    const refuses = (parse: (text: string) => unknown, text: string) => {
      try {
        parse(text);
        return false;
      } catch {
        return true;
      }
    };
    const content = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(..."0123456789 =:\nsomeavg10fulltotalmaxoom_kill") }));
    await fc.assert(
      fc.asyncProperty(fc.array(content, { minLength: checks.length, maxLength: checks.length }), async (texts) => {
        const proc = fakeProc(dir, "local");
        const cg = cgroupV2(dir, [CONTAINER_A]);
        const a = cg.dir("", CONTAINER_A);
        const paths = [join(proc, "pressure/memory"), join(proc, "pressure/cpu"), join(proc, "meminfo"), join(a, "memory.events"), join(a, "memory.current"), join(a, "cpu.stat")];
        const collector = new MemoryCollector(memoryConfig({ proc_root: proc, cgroup_root: cg.root }));
        await runOnce(collector);
        paths.forEach((path, i) => write(path, texts[i]!));
        const rec = await runOnce(collector);
        const bad = checks.filter(([, parse], i) => refuses(parse, texts[i]!)).map(([name]) => name);
        expect(rec.parseErrors.map((p) => p.source).sort()).toEqual(bad.sort());
        expect(rec.degraded).toEqual([]);
        rmSync(proc, { recursive: true });
        rmSync(cg.root, { recursive: true });
      }),
      { numRuns: 100 },
    );
  });
});

describe("config", () => {
  test("defaults; the cgroup root follows sys_root unless set", async () => {
    const config = v.parse(memoryFactory.configSchema, undefined);
    expect(config).toMatchObject({
      proc_root: "/proc",
      sys_root: "/sys",
      psi: { memory: { some_avg10: 10, full_avg10: 5 }, cpu: { some_avg10: 80, full_avg10: 0 }, io: { some_avg10: 40, full_avg10: 20 } },
      memory_available: { percent: 10, bytes: 100 * 1024 * 1024 },
      cgroup_memory_percent: 90,
      cpu_throttling: { percent: 25, min_periods: 10 },
    });
    expect(config.interval.ms).toBe(10_000);
    const sys = join(dir, "host-sys");
    const rec = await runOnce(new MemoryCollector(memoryConfig({ proc_root: fakeProc(dir, "local"), sys_root: sys })));
    expect(rec.degraded[0]).toContain(`${sys}/fs/cgroup is neither`);
    expect(v.safeParse(memoryFactory.configSchema, { cpu_throttling: { precent: 5 } }).issues?.[0]?.message).toContain('did you mean "percent"');
    expect(memoryFactory.quietPeriodMs!(config)).toBeUndefined();
  });
});
