// One measured run of bench:node: a fresh fake node, the process under test
// (bare Bun idle, the read-loop baseline, or the agent), a warm-up, then the
// fake node's activity and a window in which the process's CPU time
// (its process CPU clock, see cpuSeconds) and RSS (VmRSS sampled, VmHWM at the
// end) are read; for the agent with every collector, then a wait until every
// expected event has arrived at the subscriber.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { FFIType, ptr } from "bun:ffi";
import { openLibc } from "../../src/libc.ts";
import { killAtExit, spare } from "../../test/helpers/cleanup.ts";
import { BENCH, REPO, startAgent, type LiveAgent } from "../lib/procs.ts";
import { expectedCounts, missing, startEventCounter, writeNodeConfig, type Found, type NodeCollector } from "./agent.ts";
import { startFakeNode, type Activity, BUSY } from "./fake-node.ts";
import type { ReadLoopOptions } from "./read-loop.ts";

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
export const POLL_HISTOGRAM = "orchestrator_collector_poll_seconds";

const libc = openLibc({ clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
const timespec = new BigInt64Array(2);

/**
 * CPU seconds (user + system, every thread, exited ones included) a process
 * has used so far, to the nanosecond: its process CPU clock
 * (clock_gettime(MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))). /proc/<pid>/stat
 * counts in 10 ms ticks, more than bare Bun uses in a minute; it is the
 * fallback where the clock cannot be read.
 */
export function cpuSeconds(pid: number): number {
  if (typeof libc !== "string" && libc.clock_gettime(((~pid) << 3) | 2, ptr(timespec)) === 0) {
    return Number(timespec[0]) + Number(timespec[1]) / 1e9;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * CPU seconds so far of each live thread of a process, by thread id, with the
 * thread's name (`comm`: JSC's JITWorker and HeapHelper, mimalloc's
 * mi-scavenger, ...), from /proc/<pid>/task/<tid>/schedstat (ns). Threads that
 * ended are not there: the process clock minus these is their share.
 */
export function threadCpu(pid: number): Map<number, { name: string; seconds: number }> {
  const out = new Map<number, { name: string; seconds: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      out.set(Number(tid), { name: Number(tid) === pid ? "main" : name, seconds: ns / 1e9 });
    } catch {
      // the thread ended between readdir and the read
    }
  }
  return out;
}

/** The threads reported by name; the rest are "other". */
export const THREAD_NAMES = ["main", "JITWorker", "HeapHelper", "mi-scavenger"] as const;

/**
 * Where a process's CPU went over a window, by thread name (THREAD_NAMES, then
 * "other"), from threadCpu() at both ends; "ended" is the process clock's
 * difference (`cpu`) minus the live threads': threads that ended in the window.
 */
export function cpuByThread(before: ReturnType<typeof threadCpu>, after: ReturnType<typeof threadCpu>, cpu: number): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries([...THREAD_NAMES, "other", "ended"].map((name) => [name, 0]));
  let live = 0;
  for (const [tid, { name, seconds }] of after) {
    const d = seconds - (before.get(tid)?.seconds ?? 0);
    out[(THREAD_NAMES as readonly string[]).includes(name) ? name : "other"]! += d;
    live += d;
  }
  out.ended = Math.max(0, cpu - live);
  return out;
}

/** VmRSS and VmHWM (the peak) in bytes. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Whether the agent's source exposes the per-collector poll histogram (the idle-cost work adds it). */
export function agentHasPollHistogram(): boolean {
  const walk = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") && readFileSync(join(dir, e.name), "utf8").includes(POLL_HISTOGRAM),
    );
  return walk(join(REPO, "src"));
}

export type Variant =
  | { name: string; kind: "idle" }
  | { name: string; kind: "read-loop"; loops: ReadLoopOptions["loops"] }
  | {
      name: string;
      kind: "agent";
      collectors: readonly NodeCollector[];
      synthetic?: number;
      /** every interval at 1 s (CPU per round) */
      oneSecond?: boolean;
      /** wait for, and count, every expected event after the window */
      checkEvents?: boolean;
    };

export interface RunContext {
  work: string;
  natsUrl: string;
  /** the agent: the compiled binary, or a command such as bun src/main.ts */
  agent: string | string[];
  /** how the agent's rounds are counted: its poll histogram, or a file the counting build writes on SIGUSR2 */
  rounds: "histogram" | { file: string } | "none";
}

export interface Timing {
  warmupSeconds: number;
  seconds: number;
  activity?: Activity;
}

export interface Sample {
  /** CPU seconds in the window */
  cpu: number;
  seconds: number;
  /** median of VmRSS read every 5 s in the window */
  rssSteady: number;
  /** VmHWM at the end of the window */
  rssPeak: number;
  /** rounds per collector (or read loop) in the window */
  rounds?: Record<string, number>;
  /** CPU seconds inside the rounds per loop in the window, where the process measures it (the read loop) */
  roundCpuSeconds?: Record<string, number>;
  /** the poll histogram's wall time per collector in the window (seconds), when the agent has it */
  pollWallSeconds?: Record<string, number>;
  /** watch changes sent in the window */
  watchChanges: number;
  /** CPU seconds in the window by thread (cpuByThread) */
  threads?: Record<string, number>;
  events?: { expected: Found; found: Found; missing: Partial<Found>; byCollector: Record<string, number> };
  byCollector?: Record<string, number>;
}

let seq = 0;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Histogram _count and _sum per collector label. */
function histogramTotals(text: string, name: string): Map<string, { count: number; sum: number }> {
  const out = new Map<string, { count: number; sum: number }>();
  for (const m of text.matchAll(new RegExp(`^${name}_(count|sum)\\{[^}]*collector="([^"]+)"[^}]*\\}\\s+(\\S+)`, "gm"))) {
    const t = out.get(m[2]!) ?? { count: 0, sum: 0 };
    t[m[1] as "count" | "sum"] += Number(m[3]);
    out.set(m[2]!, t);
  }
  return out;
}

interface Rounds {
  rounds: Record<string, number>;
  /** CPU µs spent inside the rounds, where the process measures it (the read loop) */
  cpuUs?: Record<string, number>;
}

/** Asks a process for its round counts (SIGUSR2) and reads them once the file shows the new sequence number. */
async function roundsFromFile(pid: number, file: string, last: { seq: number }): Promise<Rounds> {
  process.kill(pid, "SIGUSR2");
  const until = performance.now() + 5000;
  for (;;) {
    if (existsSync(file)) {
      const doc = JSON.parse(readFileSync(file, "utf8") || "{}") as { seq?: number; rounds?: Record<string, number>; cpu_us?: Record<string, number> };
      if ((doc.seq ?? 0) > last.seq) {
        last.seq = doc.seq!;
        return { rounds: doc.rounds ?? {}, cpuUs: doc.cpu_us };
      }
    }
    if (performance.now() > until) throw new Error(`pid ${pid} did not write its rounds to ${file}`);
    await Bun.sleep(5);
  }
}

async function httpUrl(agent: LiveAgent): Promise<string> {
  const timeout = Bun.sleep(30_000).then(() => {
    throw new Error(`the agent did not log its HTTP address within 30 s:\n${agent.log().slice(-2000)}`);
  });
  return Promise.race([agent.http, timeout]);
}

/** Starts a process of the variant on a fresh fake node, measures it over the window, stops it. */
export async function measure(ctx: RunContext, variant: Variant, timing: Timing): Promise<Sample> {
  const id = seq++;
  const dir = join(ctx.work, `${variant.name}-${id}`);
  mkdirSync(dir, { recursive: true });
  const node = await startFakeNode(dir);
  const stops: Array<() => Promise<unknown> | void> = [() => node.stop()];
  try {
    let pid: number;
    let rounds: () => Promise<Rounds | undefined> = async () => undefined;
    let wall: () => Promise<Map<string, { count: number; sum: number }> | undefined> = async () => undefined;
    let counter: Awaited<ReturnType<typeof startEventCounter>> | undefined;
    if (variant.kind === "agent") {
      const subject = `bench.node${id}`;
      const stream = `BENCH_NODE_${id}`;
      counter = await startEventCounter(ctx.natsUrl, stream, subject);
      stops.unshift(() => counter!.stop());
      const config = writeNodeConfig({ node, natsUrl: ctx.natsUrl, subject, stream, dir, collectors: variant.collectors, synthetic: variant.synthetic, oneSecond: variant.oneSecond });
      // Each agent numbers its writes of the rounds file from 1.
      if (typeof ctx.rounds === "object") rmSync(ctx.rounds.file, { force: true });
      const agent = startAgent(ctx.agent, config);
      stops.unshift(() => agent.stop());
      pid = agent.pid;
      const base = await httpUrl(agent);
      const until = performance.now() + 30_000;
      while ((await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) !== 200) {
        if (performance.now() > until) throw new Error(`the agent was not ready within 30 s:\n${agent.log().slice(-2000)}`);
        await Bun.sleep(50);
      }
      const metrics = async () => histogramTotals(await (await fetch(`${base}/metrics`)).text(), POLL_HISTOGRAM);
      if (ctx.rounds === "histogram") {
        wall = metrics;
        rounds = async () => ({ rounds: Object.fromEntries([...(await metrics())].map(([k, v]) => [k, v.count])) });
      } else if (typeof ctx.rounds === "object") {
        const file = ctx.rounds.file;
        const last = { seq: 0 };
        rounds = () => roundsFromFile(pid, file, last);
      }
    } else {
      const script = variant.kind === "idle" ? join(BENCH, "node/idle.ts") : join(BENCH, "node/read-loop.ts");
      const roundsFile = join(dir, "rounds.json");
      const args =
        variant.kind === "read-loop"
          ? [JSON.stringify({ procRoot: node.files.procRoot, cgroupRoot: node.files.cgroupRoot, kmsgPath: node.files.kmsgPath, loops: variant.loops, roundsFile } satisfies ReadLoopOptions)]
          : [];
      const proc = Bun.spawn([process.execPath, script, ...args], { stdout: "inherit", stderr: "inherit" });
      killAtExit(proc.pid);
      stops.unshift(async () => {
        proc.kill("SIGTERM");
        await proc.exited;
        spare(proc.pid);
      });
      pid = proc.pid;
      if (variant.kind === "read-loop") {
        const last = { seq: 0 };
        rounds = () => roundsFromFile(pid, roundsFile, last);
      }
    }

    await Bun.sleep(timing.warmupSeconds * 1000);
    node.startActivity(timing.activity ?? BUSY);
    const changes = () => node.expected.podChanges.size + node.expected.k8sEvents.size;
    const changes0 = changes();
    const rounds0 = await rounds();
    const wall0 = await wall();
    const cpu0 = cpuSeconds(pid);
    const threads0 = threadCpu(pid);
    const t0 = performance.now();
    const rss: number[] = [];
    for (;;) {
      rss.push(memoryOf(pid).rss);
      const left = timing.seconds * 1000 - (performance.now() - t0);
      if (left <= 0) break;
      await Bun.sleep(Math.min(5000, left));
    }
    const cpu1 = cpuSeconds(pid);
    const threads1 = threadCpu(pid);
    const seconds = (performance.now() - t0) / 1000;
    const peak = memoryOf(pid).hwm;
    const rounds1 = await rounds();
    const wall1 = await wall();
    node.stopActivity();

    const sample: Sample = { cpu: cpu1 - cpu0, seconds, rssSteady: median(rss), rssPeak: peak, watchChanges: changes() - changes0, threads: cpuByThread(threads0, threads1, cpu1 - cpu0) };
    const delta = (later: Record<string, number>, earlier: Record<string, number>) => Object.fromEntries(Object.entries(later).map(([k, n]) => [k, n - (earlier[k] ?? 0)]));
    if (rounds0 && rounds1) sample.rounds = delta(rounds1.rounds, rounds0.rounds);
    if (rounds0?.cpuUs && rounds1?.cpuUs) sample.roundCpuSeconds = Object.fromEntries(Object.entries(delta(rounds1.cpuUs, rounds0.cpuUs)).map(([k, us]) => [k, us / 1e6]));
    if (wall0 && wall1) sample.pollWallSeconds = Object.fromEntries([...wall1].map(([k, v]) => [k, v.sum - (wall0.get(k)?.sum ?? 0)]));
    if (counter && variant.kind === "agent" && variant.checkEvents) {
      // The slowest path is a vmstat or memory poll (10 s) after the last kill; give it three.
      const expected = expectedCounts(node.expected);
      const until = performance.now() + 35_000;
      while (Object.keys(missing(expected, counter.found(node.expected))).length > 0 && performance.now() < until) await Bun.sleep(250);
      const found = counter.found(node.expected);
      sample.events = { expected, found, missing: missing(expected, found), byCollector: Object.fromEntries(counter.byCollector) };
    } else if (counter) {
      sample.byCollector = Object.fromEntries(counter.byCollector);
    }
    return sample;
  } finally {
    for (const stop of stops) await stop();
  }
}
