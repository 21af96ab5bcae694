// The idle check of bench:detect: the agent on a quiet node with 0, 1, 2 and
// 3 event-driven sources (kernel log; + memory; + process), all running side
// by side over the same window so the machine's noise hits each alike. In
// event mode nothing wakes the agent for a source while nothing happens, so
// its CPU must not grow with their number; a polling build's does (each
// poll is a wake-up and a round of reads).
import { readdirSync, readFileSync } from "node:fs";
import { cpuSeconds } from "../node/measure.ts";
import { describeModes, startDetectAgent, type AgentRun } from "./agent.ts";
import type { DetectCgroups } from "./cgroups.ts";

export interface IdleLevel {
  sources: number;
  what: string;
  collectors: string[];
  yaml: string;
}

export function idleLevels(cgroups: DetectCgroups): IdleLevel[] {
  const kernel = `  kernel: { config: {} }\n`;
  const memory = `  memory: { config: { cgroup_root: ${JSON.stringify(cgroups.fakeRoot)} } }\n`;
  const proc = `  process: { config: { containers_only: true, cgroup_pattern: ${JSON.stringify(cgroups.cgroupPattern)} } }\n`;
  return [
    { sources: 0, what: "no collectors", collectors: [], yaml: "" },
    { sources: 1, what: "kernel (kmsg)", collectors: ["kernel"], yaml: kernel },
    { sources: 2, what: "kernel + memory (cgroup OOM, PSI)", collectors: ["kernel", "memory"], yaml: kernel + memory },
    { sources: 3, what: "kernel + memory + process (proc connector)", collectors: ["kernel", "memory", "process"], yaml: kernel + memory + proc },
  ];
}

/** Context switches of each thread of `pid` so far, by thread id: each is the end of a run, so their growth counts wake-ups. */
export function contextSwitches(pid: number): Map<string, number> {
  const byThread = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      byThread.set(tid, Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return byThread;
}

/**
 * Wake-ups between two readings: the growth of each thread there at the end
 * (all of it for one started meanwhile). A thread that ended meanwhile is left
 * out (its last count is gone with it); summing totals instead made the count
 * shrink when JSC's helper threads came and went.
 */
export function wakeupsBetween(start: Map<string, number>, end: Map<string, number>): number {
  let n = 0;
  for (const [tid, count] of end) n += count - (start.get(tid) ?? 0);
  return n;
}

export interface IdleResult {
  column: string;
  sources: number;
  what: string;
  modes: string;
  cpu_seconds: number;
  wakeups: number;
  seconds: number;
}

/** Runs every level of every column at once: `warmup` seconds, then a window of `seconds`. */
export async function idleCheck(
  columns: Array<{ name: string; binary: string }>,
  cgroups: DetectCgroups,
  work: string,
  natsUrl: string,
  subjectPrefix: string,
  warmup: number,
  seconds: number,
): Promise<IdleResult[]> {
  const levels = idleLevels(cgroups);
  const runs: Array<{ column: string; level: IdleLevel; run: AgentRun }> = [];
  try {
    for (const column of columns) {
      for (const level of levels) {
        const name = `idle-${column.name}-${level.sources}`;
        runs.push({ column: column.name, level, run: await startDetectAgent(column.binary, work, name, natsUrl, `${subjectPrefix}.${name.replaceAll("-", "_")}`, level.yaml) });
      }
    }
    await Bun.sleep(warmup * 1000);
    const start = runs.map((r) => ({ cpu: cpuSeconds(r.run.agent.pid), switches: contextSwitches(r.run.agent.pid), at: performance.now() }));
    await Bun.sleep(seconds * 1000);
    const end = runs.map((r) => ({ cpu: cpuSeconds(r.run.agent.pid), switches: contextSwitches(r.run.agent.pid), at: performance.now() }));
    const results: IdleResult[] = [];
    for (const [i, r] of runs.entries()) {
      results.push({
        column: r.column,
        sources: r.level.sources,
        what: r.level.what,
        modes: r.level.collectors.length === 0 ? "" : describeModes(await r.run.status(), r.level.collectors),
        cpu_seconds: end[i]!.cpu - start[i]!.cpu,
        wakeups: wakeupsBetween(start[i]!.switches, end[i]!.switches),
        seconds: (end[i]!.at - start[i]!.at) / 1000,
      });
    }
    return results;
  } finally {
    await Promise.all(runs.map((r) => r.run.agent.stop("SIGTERM")));
  }
}
