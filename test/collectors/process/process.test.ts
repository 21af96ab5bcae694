import { afterEach, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import fc from "fast-check";
import { ProcessCollector, processFactory } from "../../../src/collectors/process/index.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { recordingContext, type Recording } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const FIXTURES = resolve(import.meta.dir, "testdata");
const testdata = (name: string) => readFileSync(join(import.meta.dir, "testdata", name), "utf8");
const POD_UID = "6b2d5c4e-1b0a-4f0e-9c9f-2f0a7e6d8c11";
const CONTAINER_ID = "3f1c2e4d5b6a7988a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8";
const BTIME = 1418183276;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeTempDir(dir);
});

/** A proc root in a temp dir: the procfs fixture's /proc/stat (btime) and processes written by the test. */
function fakeProc() {
  const root = makeTempDir("proc");
  dirs.push(root);
  cpSync(join(FIXTURES, "procfs/proc/stat"), join(root, "stat"));
  return {
    root,
    /** A process: stat built from the 26231 fixture's layout with these fields replaced. */
    add(pid: number, o: { comm?: string; ppid?: number; start?: number; kthread?: boolean; cgroup?: string; cmdline?: string[] } = {}) {
      const dir = join(root, String(pid));
      mkdirSync(dir, { recursive: true });
      const fields = readFileSync(join(FIXTURES, "procfs/proc/26231/stat"), "utf8").trim().split(" ");
      fields[0] = String(pid);
      fields[1] = `(${o.comm ?? `proc${pid}`})`;
      fields[3] = String(o.ppid ?? 1);
      fields[8] = String(o.kthread ? 0x00208040 : 0x00400100);
      fields[21] = String(o.start ?? 1000);
      writeFileSync(join(dir, "stat"), `${fields.join(" ")}\n`);
      if (o.cgroup !== undefined) writeFileSync(join(dir, "cgroup"), o.cgroup);
      if (o.cmdline) writeFileSync(join(dir, "cmdline"), o.cmdline.map((a) => `${a}\0`).join(""));
    },
    remove(pid: number) {
      rmSync(join(root, String(pid)), { recursive: true, force: true });
    },
  };
}

function collector(config: Record<string, unknown>): ProcessCollector {
  return processFactory.create(v.parse(processFactory.configSchema, config)) as ProcessCollector;
}

/** One --once round per call, on the same collector and recording. */
async function rounds(c: ProcessCollector, rec: Recording, n = 1): Promise<CollectorEvent[]> {
  const before = rec.events.length;
  for (let k = 0; k < n; k++) await c.run(rec.ctx);
  return rec.events.slice(before);
}

const summary = (events: CollectorEvent[]) =>
  events.map((e) => {
    const kernel = e.event_data.kernel as { event_type: string; pid: number } | undefined;
    return kernel ? `${kernel.event_type} ${kernel.pid}` : e.type;
  });

describe("process collector on a fake /proc", () => {
  test("the procfs fixtures: a baseline, then one start and one exit with full details", async () => {
    const proc = fakeProc();
    for (const pid of ["26231", "27079"]) cpSync(join(FIXTURES, "procfs/proc", pid), join(proc.root, pid), { recursive: true });
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    expect(await rounds(c, rec)).toEqual([]);

    proc.remove(27079);
    proc.add(30000, { comm: "nginx", ppid: 26231, start: 90000, cgroup: testdata("cgroup-v2-containerd"), cmdline: ["nginx", "-g", "daemon off;"] });
    const events = await rounds(c, rec);
    expect(summary(events)).toEqual(["exit 27079", "start 30000"]);
    const [exit, start] = events as [CollectorEvent, CollectorEvent];
    expect(exit).toMatchObject({
      type: "kernel.process",
      severity: "info",
      event_data: { kernel: { event_type: "exit", pid: 27079, ppid: 1, command: "pthread_load" } },
      metadata: { pid: 27079, ppid: 1, command: "pthread_load" },
    });
    expect(start.event_data).toEqual({
      kernel: { event_type: "start", pid: 30000, ppid: 26231, command: "nginx" },
      process: {
        pid: 30000,
        ppid: 26231,
        command: "nginx",
        arguments: ["nginx", "-g", "daemon off;"],
        start_time: new Date((BTIME + 900) * 1000).toISOString(),
        cgroup_path: expect.stringContaining("cri-containerd-"),
        container_id: CONTAINER_ID,
      },
    });
    expect(start.metadata).toMatchObject({ pid: 30000, ppid: 26231, command: "nginx", pod_uid: POD_UID, container_id: CONTAINER_ID });
    expect(rec.degraded).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
  });

  test("a stat that names another pid is a parse error, like the procfs fixture's 26232 (pid 33)", async () => {
    const proc = fakeProc();
    cpSync(join(FIXTURES, "procfs/proc/26232"), join(proc.root, "26232"), { recursive: true });
    const c = collector({ proc_root: proc.root, kernel_threads: true });
    const rec = recordingContext();
    await rounds(c, rec, 2);
    expect(rec.events).toEqual([]);
    expect(rec.parseErrors).toEqual([
      { source: "pid stat", detail: `${join(proc.root, "26232", "stat")} names pid 33` },
      { source: "pid stat", detail: `${join(proc.root, "26232", "stat")} names pid 33` },
    ]);
  });

  test("a reused pid is an exit and a start; exec and reparenting update the exit event", async () => {
    const proc = fakeProc();
    proc.add(100, { comm: "sh", ppid: 50, start: 500 });
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    await rounds(c, rec);
    proc.add(100, { comm: "sleep", ppid: 1, start: 500 }); // same process: exec'd, parent died
    expect(await rounds(c, rec)).toEqual([]);
    proc.add(100, { comm: "cron", ppid: 1, start: 900 }); // another process with the same pid
    const events = await rounds(c, rec);
    expect(summary(events)).toEqual(["exit 100", "start 100"]);
    expect(events[0]!.event_data.kernel).toEqual({ event_type: "exit", pid: 100, ppid: 1, command: "sleep" });
    expect(events[1]!.event_data.kernel).toEqual({ event_type: "start", pid: 100, ppid: 1, command: "cron" });
  });

  test("a known process costs one read of its stat a poll: its cgroup and cmdline are read once, when it is new", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root, containers_only: true });
    const rec = recordingContext();
    await rounds(c, rec);
    proc.add(10, { start: 500, cgroup: testdata("cgroup-v2-containerd"), cmdline: ["app"] });
    expect(summary(await rounds(c, rec))).toEqual(["start 10"]);
    // Were these read again, the garbage would be a parse error (cgroup), and the missing file an event without arguments.
    writeFileSync(join(proc.root, "10", "cgroup"), "garbage/kubepods");
    rmSync(join(proc.root, "10", "cmdline"));
    proc.add(10, { comm: "renamed", ppid: 7, start: 500 }); // the same process: exec'd, reparented
    expect(await rounds(c, rec, 3)).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
    // Its stat is still read each poll: the exit carries the name and parent of the last poll.
    proc.remove(10);
    const [exit] = await rounds(c, rec);
    expect(exit!.event_data.kernel).toEqual({ event_type: "exit", pid: 10, ppid: 7, command: "renamed" });

    // A new process under a reused pid is read whole again (a cgroup is parsed only for a process that counts: this one matches).
    proc.add(10, { start: 900, cgroup: "garbage/kubepods" });
    await rounds(c, rec);
    expect(rec.parseErrors).toEqual([{ source: "pid cgroup", detail: "truncated: no newline at the end" }]);
  });

  test("containers_only reports only processes in kubepods cgroups; kernel threads only when asked", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root, containers_only: true });
    const all = collector({ proc_root: proc.root, kernel_threads: true });
    const rec = recordingContext();
    const recAll = recordingContext();
    await rounds(c, rec);
    await rounds(all, recAll);
    proc.add(10, { cgroup: testdata("cgroup-v1-kubepods") });
    proc.add(11, { cgroup: testdata("cgroup-v2-crio") });
    proc.add(12, { cgroup: testdata("cgroup-v2-host") });
    proc.add(13); // no cgroup file: not known to be in a container
    proc.add(14, { kthread: true, ppid: 2, cgroup: "0::/\n" });
    expect(summary(await rounds(c, rec))).toEqual(["start 10", "start 11"]);
    expect(summary(await rounds(all, recAll))).toEqual(["start 10", "start 11", "start 12", "start 13", "start 14"]);
    for (const pid of [10, 11, 12, 13, 14]) proc.remove(pid);
    expect(summary(await rounds(c, rec))).toEqual(["exit 10", "exit 11"]);
    const exit = rec.events.at(-1)!;
    expect(exit.metadata).toMatchObject({ pod_uid: POD_UID, container_id: CONTAINER_ID });
    expect(exit.event_data.process).toMatchObject({ container_id: CONTAINER_ID, cgroup_path: expect.stringContaining("crio-") });

    // A pattern of the operator's choosing.
    const custom = collector({ proc_root: proc.root, containers_only: true, cgroup_pattern: "^0::/system\\.slice/" });
    const recCustom = recordingContext();
    await rounds(custom, recCustom);
    proc.add(20, { cgroup: testdata("cgroup-v2-host") });
    proc.add(21, { cgroup: testdata("cgroup-v2-crio") });
    expect(summary(await rounds(custom, recCustom))).toEqual(["start 20"]);
  });

  test("a fork storm is capped per poll and the rest counted", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root, max_events_per_poll: 3 });
    const rec = recordingContext();
    await rounds(c, rec);
    for (let pid = 200; pid < 210; pid++) proc.add(pid, { start: pid });
    const events = await rounds(c, rec);
    expect(summary(events)).toEqual(["start 200", "start 201", "start 202", "kernel.process.skipped"]);
    expect(events[3]).toMatchObject({
      severity: "warning",
      event_data: { custom: { starts: "10", exits: "0", skipped: "7", skipped_total: "7", max_events_per_poll: "3" } },
    });
    // Skipped processes are known: they do not start again next poll, and their exits are reported.
    expect(await rounds(c, rec)).toEqual([]);
    for (let pid = 200; pid < 205; pid++) proc.remove(pid);
    const exits = await rounds(c, rec);
    expect(summary(exits)).toEqual(["exit 200", "exit 201", "exit 202", "kernel.process.skipped"]);
    expect(exits[3]!.event_data.custom).toMatchObject({ skipped: "2", skipped_total: "9" });
  });

  test("a long command line is cut at 4 KiB", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    await rounds(c, rec);
    proc.add(300, { cmdline: ["java", "a".repeat(3000), "b".repeat(3000), "c"] });
    const [start] = await rounds(c, rec);
    expect((start!.event_data.process as { arguments: string[] }).arguments).toEqual(["java", "a".repeat(3000), `${"b".repeat(4096 - 3004)}...`]);
  });

  test("a missing /proc is degraded and retried until it appears; a missing btime only drops start_time", async () => {
    const root = join(makeTempDir("proc-missing"), "proc");
    dirs.push(root);
    const c = collector({ proc_root: root, interval: "20ms" });
    const rec = recordingContext({ once: false });
    const running = c.run(rec.ctx);
    await waitFor(() => rec.degraded.length >= 3, "three failed rounds");
    // A proc_root that is not this pid namespace's procfs cannot be matched with the kernel's process events: polled.
    expect(rec.sourceModes.get("proc")).toEqual({ mode: "poll", reason: `${root} is not the procfs of the agent's pid namespace` });
    expect(rec.degraded[0]).toContain(`cannot list ${root}`);
    expect(rec.healthyCalls).toBe(0);

    mkdirSync(root);
    await waitFor(() => rec.degraded.length >= 4 && rec.degraded.at(-1)!.includes("/stat "), "a round that finds the directory but no stat");
    expect(rec.degraded.at(-1)).toContain("does not exist");
    writeFileSync(join(root, "stat"), `btime ${BTIME}\n`);
    await waitFor(() => rec.healthyCalls > 0, "a healthy round");
    mkdirSync(join(root, "42"));
    writeFileSync(join(root, "42", "stat"), "42 (late) S 1 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 4200 0 0\n");
    await waitFor(() => rec.events.length > 0, "the start of pid 42");
    rec.stop();
    await running;
    expect(rec.events[0]!.event_data.process).toMatchObject({ pid: 42, command: "late", start_time: new Date((BTIME + 42) * 1000).toISOString() });
  });

  test("property: garbage in stat and cgroup files is counted, never thrown, and polling goes on", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root, containers_only: true });
    const rec = recordingContext();
    await rounds(c, rec);
    let pid = 1000;
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 300 }), fc.string({ unit: "binary", maxLength: 200 }), async (stat, cgroup) => {
        const garbage = ++pid;
        mkdirSync(join(proc.root, String(garbage)));
        writeFileSync(join(proc.root, String(garbage), "stat"), stat);
        writeFileSync(join(proc.root, String(garbage), "cgroup"), cgroup);
        proc.add(++pid, { cgroup: testdata("cgroup-v1-kubepods") });
        const errorsBefore = rec.parseErrors.length;
        const events = await rounds(c, rec);
        // The good process next to the garbage is still seen.
        expect(summary(events)).toContain(`start ${pid}`);
        expect(rec.parseErrors.length).toBeGreaterThan(errorsBefore);
        proc.remove(garbage);
      }),
      { numRuns: 60 },
    );
    expect(rec.degraded).toEqual([]);
    expect(new Set(rec.parseErrors.map((e) => e.source))).toEqual(new Set(["pid stat"]));
  });
});

test("live, polling: a spawned process is seen to start and to exit", async () => {
  const c = collector({ interval: "100ms", proc_connector: false });
  const rec = recordingContext({ once: false });
  const running = c.run(rec.ctx);
  await waitFor(() => rec.healthyCalls > 0, "the first round");
  expect(rec.sourceModes.get("proc")).toEqual({ mode: "poll", reason: "proc_connector is off" });
  // It runs until it has been seen, however slow the machine: the test ends it.
  const child = Bun.spawn(["sleep", "60"], { stdout: "ignore", stderr: "ignore" });
  const mine = (kind: string) =>
    rec.events.find((e) => (e.event_data.kernel as { event_type: string; pid: number }).event_type === kind && e.metadata.pid === child.pid);
  await waitFor(() => mine("start") !== undefined, "the child's start", 10_000);
  expect(mine("start")?.event_data.process).toMatchObject({
    pid: child.pid,
    ppid: process.pid,
    command: "sleep",
    arguments: ["sleep", "60"],
    executable: expect.stringMatching(/sleep$/),
  });
  expect(mine("exit")).toBeUndefined();
  child.kill();
  await child.exited;
  await waitFor(() => mine("exit") !== undefined, "the child's exit", 10_000);
  rec.stop();
  await running;
  expect(mine("exit")?.event_data.kernel).toEqual({ event_type: "exit", pid: child.pid, ppid: process.pid, command: "sleep" });
  expect(rec.degraded).toEqual([]);
});

describe("config", () => {
  test("defaults, and a bad pattern fails at load", () => {
    expect(v.parse(processFactory.configSchema, {})).toMatchObject({
      proc_root: "/proc",
      interval: expect.objectContaining({ ms: 5000 }),
      proc_connector: true,
      resync_interval: expect.objectContaining({ ms: 60_000 }),
      containers_only: false,
      cgroup_pattern: "kubepods",
      kernel_threads: false,
      max_events_per_poll: 500,
    });
    const bad = v.safeParse(processFactory.configSchema, { cgroup_pattern: "(", max_events_per_poll: 0 });
    expect(bad.issues?.map((i) => i.message)).toEqual([
      'expected a regular expression, got "("',
      "expected an integer from 1 to 1000000, got 0",
    ]);
  });

  test("quiet period: none when limited to containers", () => {
    expect(processFactory.quietPeriodMs!(v.parse(processFactory.configSchema, { containers_only: true }))).toBeUndefined();
    expect(processFactory.quietPeriodMs!(v.parse(processFactory.configSchema, {}))).toBe(15 * 60_000);
  });
});
