// Live, on this machine's kernel: the process events connector as the
// collector reads it in production (root, host namespaces), processes
// started and ended for it, and the fallback to polling where the kernel
// refuses the connector (another network or pid namespace, no CAP_NET_ADMIN).
// Skipped where the machine does not allow it (no root, no unshare or capsh).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { processFactory, type ProcessCollector } from "../../../src/collectors/process/index.ts";
import { ProcEvents, type Listed } from "../../../src/collectors/process/proc-events.ts";
import type { TableConfig } from "../../../src/collectors/process/table.ts";
import type { CollectorEvent, EventInput } from "../../../src/event/event.ts";
import { runInBackground, type Recording } from "../../helpers/collector-context.ts";
import { killAtExit, spare } from "../../helpers/cleanup.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";
import { which } from "../../deploy/helpers.ts";

const root = process.getuid?.() === 0;
const UNIFIED = "/sys/fs/cgroup/unified";
const REPEATS = 20;
/**
 * The kernel's exec or exit to the emit, for 18 of 20 (p90): p99 is printed, not asserted, as on a
 * shared 2-core machine a descheduled thread now and then adds tens of ms. None may take as long
 * as a poll interval (5 s), the way it was before.
 */
const LATENCY_P90_MS = 20;
const LATENCY_MAX_MS = 1000;

function collector(config: Record<string, unknown> = {}): ProcessCollector {
  return processFactory.create(v.parse(processFactory.configSchema, config)) as ProcessCollector;
}

const wallNow = () => performance.timeOrigin + performance.now();

/** Runs a collector and notes when (wall ms) each event was emitted, in the order of rec.events. */
function running(config: Record<string, unknown> = {}) {
  const { rec, stop } = runInBackground(collector(config));
  const emittedAt: number[] = [];
  const emit = rec.ctx.emit;
  rec.ctx.emit = (event, options) => {
    const at = wallNow();
    const wait = emit(event, options);
    emittedAt.push(at);
    return wait;
  };
  return { rec, stop, emittedAt };
}

type Kernel = { event_type: string; pid: number; ppid: number; command: string };
const find = (rec: Recording, kind: string, pid: number) => {
  const index = rec.events.findIndex((e) => (e.event_data.kernel as Kernel | undefined)?.event_type === kind && e.metadata.pid === pid);
  return index < 0 ? undefined : { index, event: rec.events[index]! };
};

const quantile = (samples: number[], q: number) => [...samples].sort((a, b) => a - b)[Math.ceil(samples.length * q) - 1]!;
const fmt = (samples: number[]) => {
  const s = [...samples].sort((a, b) => a - b);
  return `p50 ${s[Math.floor(s.length / 2)]!.toFixed(2)} ms, p90 ${quantile(s, 0.9).toFixed(2)} ms, p99 ${quantile(s, 0.99).toFixed(2)} ms, max ${s.at(-1)!.toFixed(2)} ms`;
};

const cgroups: string[] = [];
afterAll(() => {
  for (const dir of cgroups.reverse()) if (existsSync(dir)) rmdirSync(dir);
});

describe("process collector, live: the process events connector", () => {
  test.skipIf(!root)(
    `event mode: each exec and exit of \`sleep 0.2\` is emitted within ${LATENCY_P90_MS} ms of the kernel's event (p90 of ${REPEATS}); a kill's signal; stopping is prompt`,
    async () => {
      const { rec, stop, emittedAt } = running();
      await waitFor(() => rec.sourceModes.get("proc")?.mode === "event" && rec.healthyCalls > 0, "event mode and the baseline listing", 10_000);
      const startLatency: number[] = [];
      const exitLatency: number[] = [];
      const spawnLatency: number[] = [];
      // Round 0 is not measured: the recording context compiles the event schema at its first event, which holds the thread ~1 s.
      for (let i = -1; i < REPEATS; i++) {
        const spawnedAt = wallNow();
        const child = Bun.spawn(["sleep", "0.2"], { stdout: "ignore", stderr: "ignore" });
        await child.exited;
        await waitFor(() => find(rec, "exit", child.pid) !== undefined, `the exit of sleep ${child.pid}`);
        const start = find(rec, "start", child.pid)!;
        const exit = find(rec, "exit", child.pid)!;
        // The kernel's time of the exec or exit (the event's timestamp, in ms) to the emit; and from the spawn
        // (Bun's fork and sleep's exec included, so the machine's load too) to the start's emit.
        if (i >= 0) {
          startLatency.push(emittedAt[start.index]! - Date.parse(start.event.timestamp));
          exitLatency.push(emittedAt[exit.index]! - Date.parse(exit.event.timestamp));
          spawnLatency.push(emittedAt[start.index]! - spawnedAt);
        }
        expect(start.event.event_data.process).toMatchObject({
          pid: child.pid,
          ppid: process.pid,
          command: "sleep",
          arguments: ["sleep", "0.2"],
          executable: expect.stringMatching(/sleep$/),
          start_time: expect.any(String),
        });
        expect(exit.event.event_data.kernel).toEqual({ event_type: "exit", pid: child.pid, ppid: process.pid, command: "sleep" });
        expect(exit.event.event_data.custom).toEqual({ exit_code: "0" });
      }
      console.log(`kernel -> emit: exec ${fmt(startLatency)}; exit ${fmt(exitLatency)}. spawn -> start emitted: ${fmt(spawnLatency)}`);
      for (const samples of [startLatency, exitLatency]) {
        expect(quantile(samples, 0.9)).toBeLessThan(LATENCY_P90_MS);
        expect(Math.max(...samples)).toBeLessThan(LATENCY_MAX_MS);
      }

      const killed = Bun.spawn(["sleep", "60"], { stdout: "ignore", stderr: "ignore" });
      killAtExit(killed.pid);
      await waitFor(() => find(rec, "start", killed.pid) !== undefined, "the start of sleep 60");
      killed.kill("SIGKILL");
      await killed.exited;
      spare(killed.pid);
      await waitFor(() => find(rec, "exit", killed.pid) !== undefined, "the exit of the killed sleep");
      expect(find(rec, "exit", killed.pid)!.event.event_data.custom).toEqual({ signal: "9" });

      const stopMs = await stop();
      console.log(`stopped in ${stopMs.toFixed(1)} ms`);
      expect(stopMs).toBeLessThan(PROMPTLY_MS);
      // One listing (the baseline) in the whole run: the resync is a minute away, and nothing was lost.
      expect(rec.pollRounds).toHaveLength(1);
      expect(rec.degraded).toEqual([]);
      expect(rec.parseErrors).toEqual([]);
    },
    30_000,
  );

  test.skipIf(!root || !existsSync(join(UNIFIED, "cgroup.procs")))(
    "containers_only: a process started in a pod's container cgroup is reported with its pod and container; one outside is not",
    async () => {
      const podUid = crypto.randomUUID();
      const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
      const top = join(UNIFIED, `tapio-test-${process.pid}`);
      for (const dir of [top, `${top}/kubepods`, `${top}/kubepods/burstable`, `${top}/kubepods/burstable/pod${podUid}`, `${top}/kubepods/burstable/pod${podUid}/${containerId}`]) {
        mkdirSync(dir);
        cgroups.push(dir);
      }
      const container = cgroups.at(-1)!;
      const { rec, stop } = running({ containers_only: true });
      await waitFor(() => rec.sourceModes.get("proc")?.mode === "event" && rec.healthyCalls > 0, "event mode and the baseline listing", 10_000);
      // The shell moves itself into the container's cgroup, then becomes sleep: the exec happens in the container.
      const inside = Bun.spawn(["sh", "-c", `echo $$ > ${container}/cgroup.procs && exec sleep 0.2`], { stdout: "ignore", stderr: "ignore" });
      const outside = Bun.spawn(["sleep", "0.2"], { stdout: "ignore", stderr: "ignore" });
      await Promise.all([inside.exited, outside.exited]);
      await waitFor(() => find(rec, "exit", inside.pid) !== undefined, "the exit of the container's sleep");
      const start = find(rec, "start", inside.pid)!.event;
      expect(start.event_data.process).toMatchObject({ command: "sleep", container_id: containerId, cgroup_path: expect.stringContaining(`pod${podUid}`) });
      expect(start.metadata).toMatchObject({ pod_uid: podUid, container_id: containerId });
      expect(rec.events.filter((e: CollectorEvent) => e.metadata.pid === outside.pid)).toEqual([]);
      await stop();
    },
    30_000,
  );

  test.skipIf(!root)("the resync listing follows activity: a fork or exec since the last listing makes one resync_interval later; nothing happening, none", async () => {
    const resyncMs = 50;
    const w = await openWorker({}, { resyncMs });
    try {
      await waitFor(() => w.listed.length > 0, "the baseline listing");
      // Something happens: a listing follows, resync_interval after it.
      const before = w.listed.length;
      await Bun.spawn(["true"], { stdout: "ignore", stderr: "ignore" }).exited;
      await waitFor(() => w.listed.length > before, "a listing after the exec");
      // Then a window of 40 resync intervals with nothing of ours happening. Listing every
      // resync_interval (as before 71c18fa) would make ~40; following activity, one per burst of
      // the host's own (this sandbox execs every ~10 s, more under load): a few at most.
      const after = w.listed.length;
      await Bun.sleep(40 * resyncMs); // an absence is measured over a window
      expect(w.listed.length - after).toBeLessThanOrEqual(8);
    } finally {
      await w.events.close();
    }
  });

  test.skipIf(!root)("the kernel's buffer overflowing while the worker is paused is reported (ENOBUFS), listed at once, and reading goes on", async () => {
    // As small as the kernel allows (it doubles the value and keeps a floor): a few dozen records.
    const w = await openWorker({}, { receiveBuffer: 1 });
    try {
      await waitFor(() => w.listed.length > 0, "the baseline listing");
      w.events.pause();
      for (let i = 0; i < 200; i++) await Bun.spawn(["true"], { stdout: "ignore", stderr: "ignore" }).exited;
      w.events.resume();
      await waitFor(() => w.overflows() > 0, "an overflow");
      // The lost records are made up for by a listing at once, not at the next resync_interval (a minute away).
      await waitFor(() => w.listed.length > 1, "a listing after the overflow");
      const after = Bun.spawn(["true"], { stdout: "ignore", stderr: "ignore" });
      await after.exited;
      await waitFor(() => w.posted.some((e) => kernelOf(e).event_type === "exit" && kernelOf(e).pid === after.pid), "an event after the overflow");
    } finally {
      await w.events.close();
    }
  });
});

const kernelOf = (e: EventInput) => (e.event_data.kernel ?? {}) as Partial<Kernel>;

/** The connector's worker on its own, as the collector opens it, and everything it posts to the main thread. */
async function openWorker(table: Partial<TableConfig>, o: { receiveBuffer?: number; resyncMs?: number } = {}) {
  const posted: EventInput[] = [];
  const listed: Listed[] = [];
  const parseErrors: string[] = [];
  let overflows = 0;
  const opened = await ProcEvents.open({
    receiveBuffer: o.receiveBuffer ?? 8 * 1024 * 1024,
    ackTimeoutMs: 2000,
    table: { proc_root: "/proc", containers_only: false, cgroup_pattern: "kubepods", kernel_threads: false, max_events_per_poll: 500, ...table },
    resyncMs: o.resyncMs ?? 60_000,
    onEvents: (events) => posted.push(...events),
    onListed: (l) => listed.push(l),
    onParseError: (source, detail) => parseErrors.push(`${source}: ${detail}`),
    onOverflow: (n) => (overflows = n),
    onFailed: (reason) => {
      throw new Error(reason);
    },
  });
  if (!opened.ok) throw new Error(opened.reason);
  return { events: opened.events, posted, listed, parseErrors, overflows: () => overflows };
}

/** A fake pod's container cgroup in the v2 hierarchy, under a top cgroup only this test's pattern matches. */
function containerCgroup(name: string) {
  const podUid = crypto.randomUUID();
  const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  const top = join(UNIFIED, `tapio-test-${process.pid}-${name}`);
  for (const dir of [top, `${top}/kubepods`, `${top}/kubepods/burstable`, `${top}/kubepods/burstable/pod${podUid}`, `${top}/kubepods/burstable/pod${podUid}/${containerId}`]) {
    mkdirSync(dir);
    cgroups.push(dir);
  }
  return { podUid, containerId, dir: cgroups.at(-1)!, pattern: `tapio-test-${process.pid}-${name}/` };
}

/** A long-lived process, killed at the end of the run at the latest. */
function spawnKept(cmd: string[]) {
  const child = Bun.spawn(cmd, { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  killAtExit(child.pid);
  return child;
}

async function killAndReap(child: ReturnType<typeof spawnKept>) {
  child.kill("SIGKILL");
  await child.exited;
  spare(child.pid);
}

describe("process collector, live: the worker filters (containers_only)", () => {
  const v2 = root && existsSync(join(UNIFIED, "cgroup.procs"));

  test.skipIf(!v2)("a process outside cgroup_pattern is never posted, start or exit; one inside is posted with every field", async () => {
    const pod = containerCgroup("filter");
    const w = await openWorker({ containers_only: true, cgroup_pattern: pod.pattern });
    try {
      await waitFor(() => w.listed.length > 0, "the baseline listing");
      const outside = Bun.spawn(["sleep", "0.05"], { stdout: "ignore", stderr: "ignore" });
      await outside.exited;
      // The kernel tells records in order: once the inside process's exit is posted, the outside one's records were read.
      const inside = Bun.spawn(["sh", "-c", `echo $$ > ${pod.dir}/cgroup.procs && exec sleep 0.05`], { stdout: "ignore", stderr: "ignore" });
      await inside.exited;
      const of = (pid: number, kind: string) => w.posted.find((e) => kernelOf(e).pid === pid && kernelOf(e).event_type === kind);
      await waitFor(() => of(inside.pid, "exit") !== undefined, "the exit of the container's sleep");
      expect(w.posted.filter((e) => kernelOf(e).pid === outside.pid)).toEqual([]);
      const start = of(inside.pid, "start")!;
      const exit = of(inside.pid, "exit")!;
      expect(start).toMatchObject({
        type: "kernel.process",
        severity: "info",
        event_data: {
          kernel: { event_type: "start", pid: inside.pid, ppid: process.pid, command: "sleep" },
          process: {
            pid: inside.pid,
            ppid: process.pid,
            command: "sleep",
            executable: expect.stringMatching(/sleep$/),
            arguments: ["sleep", "0.05"],
            start_time: expect.any(String),
            cgroup_path: expect.stringContaining(`pod${pod.podUid}/${pod.containerId}`),
            container_id: pod.containerId,
          },
        },
        metadata: { pid: inside.pid, ppid: process.pid, command: "sleep", pod_uid: pod.podUid, container_id: pod.containerId },
      });
      expect(start.event_data.custom).toBeUndefined();
      expect(exit).toMatchObject({ event_data: { kernel: { event_type: "exit", pid: inside.pid, ppid: process.pid, command: "sleep" }, custom: { exit_code: "0" } } });
      // The kernel's times: the exec before the exit, both a moment ago.
      const [startAt, exitAt] = [Date.parse(start.timestamp!), Date.parse(exit.timestamp!)];
      expect(startAt).toBeLessThanOrEqual(exitAt);
      expect(Date.now() - startAt).toBeLessThan(10_000);

      // A child that ends at once after its exec (often before the worker let its exit through, or even
      // read its files: then it is reported as gone, in its parent's container): the status still comes.
      const parent = Bun.spawn(["sh", "-c", `echo $$ > ${pod.dir}/cgroup.procs && exec sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/false; done; sleep 0.1'`], {
        stdout: "ignore",
        stderr: "ignore",
      });
      await parent.exited;
      await waitFor(() => of(parent.pid, "exit") !== undefined, "the exit of the container's shell");
      const children = w.posted.filter((e) => kernelOf(e).ppid === parent.pid && kernelOf(e).event_type === "exit" && kernelOf(e).pid !== parent.pid);
      const falses = children.filter((e) => (e.event_data.custom as Record<string, string> | undefined)?.exit_code === "1");
      expect(falses).toHaveLength(10);
      for (const exit of falses) expect(of(kernelOf(exit).pid!, "start")).toBeDefined();
      expect(w.parseErrors).toEqual([]);
    } finally {
      await w.events.close();
    }
  });

  test.skipIf(!v2)("a listing keeps the worker's set of processes that count: the baseline's and a resync's exits are posted, an outside one's not", async () => {
    const pod = containerCgroup("resync");
    // Before the worker: found by the baseline listing, one in the container and one outside.
    const inside = spawnKept(["sh", "-c", `echo $$ > ${pod.dir}/cgroup.procs && exec sleep 60`]);
    const outside = spawnKept(["sleep", "60"]);
    await waitFor(() => readIfThere(`/proc/${inside.pid}/cmdline`).startsWith("sleep"), "the container's sleep");
    const kept = [inside, outside];
    const w = await openWorker({ containers_only: true, cgroup_pattern: pod.pattern }, { resyncMs: 1000 });
    try {
      await waitFor(() => w.listed.length > 0, "the baseline listing");
      const listings = w.listed.length;
      // Started outside (its exec is dropped), moved into the container a moment later without an exec,
      // as a runtime may do: the records never say it counts; the next listing does.
      const moved = spawnKept(["sh", "-c", `sleep 0.2; echo $$ > ${pod.dir}/cgroup.procs; read line`]);
      kept.push(moved);
      await waitFor(() => readIfThere(`/proc/${moved.pid}/cgroup`).includes(pod.containerId), "the move into the container");
      await waitFor(() => w.listed.length > listings, "the next listing", 5000);
      const of = (pid: number, kind: string) => w.posted.find((e) => kernelOf(e).pid === pid && kernelOf(e).event_type === kind);
      expect(of(moved.pid, "start")).toMatchObject({ event_data: { process: { pid: moved.pid, command: "sh", container_id: pod.containerId } } });
      // The outside process first: when the later exits are posted, its record was read.
      await killAndReap(outside);
      await killAndReap(inside);
      await killAndReap(moved);
      await waitFor(() => of(inside.pid, "exit") !== undefined && of(moved.pid, "exit") !== undefined, "the exits of the two that count");
      expect(of(inside.pid, "exit")).toMatchObject({ event_data: { kernel: { command: "sleep" }, process: { container_id: pod.containerId }, custom: { signal: "9" } } });
      expect(of(moved.pid, "exit")).toMatchObject({ event_data: { custom: { signal: "9" } } });
      // The baseline emits no starts; nothing of the outside process, ever.
      expect(of(inside.pid, "start")).toBeUndefined();
      expect(w.posted.filter((e) => kernelOf(e).pid === outside.pid)).toEqual([]);
      expect(w.listed.every((l) => l.problem === undefined)).toBe(true);
    } finally {
      await w.events.close();
      // Out of the cgroups before they are removed, whatever failed.
      for (const child of kept) await killAndReap(child);
    }
  });
});

function readIfThere(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Runs mode-probe.ts under `wrapper` (another namespace, fewer capabilities) and returns the mode it printed. */
function probe(wrapper: string[]): { mode: string; reason?: string } {
  const run = Bun.spawnSync([...wrapper, process.execPath, join(import.meta.dir, "mode-probe.ts")], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`${wrapper.join(" ")}: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString());
}

describe("process collector, live: polling where the connector is refused", () => {
  const unshare = which("unshare");
  const capsh = which("capsh");

  test.skipIf(!root || !unshare)("another network namespace (no hostNetwork): poll, saying so", () => {
    expect(probe([unshare!, "--net"])).toEqual({ mode: "poll", reason: expect.stringContaining("needs hostNetwork") });
  });

  test.skipIf(!root || !unshare)("another pid namespace (no hostPID): the kernel stays silent; poll, saying so", () => {
    expect(probe([unshare!, "--pid", "--fork", "--mount-proc"])).toEqual({ mode: "poll", reason: expect.stringContaining("hostPID") });
  });

  test.skipIf(!root || !capsh)("without CAP_NET_ADMIN: poll, saying so", () => {
    expect(probe([capsh!, "--drop=cap_net_admin", "--", "-c", 'exec "$0" "$1"'])).toEqual({ mode: "poll", reason: expect.stringContaining("needs CAP_NET_ADMIN") });
  });
});
