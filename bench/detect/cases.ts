// The kernel events bench:detect causes, one case each, and what it measures
// of each: latency from the kernel's time of the event to the arrival of the
// agent's event at the NATS subscriber.
//   kmsg     a line written to /dev/kmsg                   -> kernel.problem (a rule of ours)
//   oom      an OOM kill in a v1 memory cgroup of a pod     -> container.oom (kernel), container.memory_pressure oom_kill (memory)
//   process  a process started, and later killed, in a pod  -> kernel.process start and exit
//            (timed by the kernel's exec and exit records, read by the benchmark itself: proc.ts)
//   psi      memory pressure from page-cache thrashing      -> node.memory_pressure (psi)
// Between repetitions a random pause (up to the poll interval of the source)
// puts each event at a random moment of the poller's cycle; waiting for an
// arrival and going on at once would always land just after a poll.
import { readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAtExit, spare } from "../../test/helpers/cleanup.ts";
import type { Arrival, Arrivals } from "./arrivals.ts";
import { epochMs } from "./arrivals.ts";
import type { AgentRun } from "./agent.ts";
import { emptyCgroup, type DetectCgroups } from "./cgroups.ts";
import { recordWallMs, wallMs, type KmsgProbe } from "./kmsg.ts";
import { ProcProbe, procProbeProblem } from "./proc.ts";

export interface Sample {
  rep: number;
  /** kernel time (ms since the epoch) of what was caused */
  kernelAt: number;
  /** arrival at the subscriber, absent when the event never came */
  arrivedAt?: number;
  latencyMs?: number;
  /** arrival minus the event's own timestamp (how the agent dated it) */
  eventTimestampLatencyMs?: number;
  /** how far the kmsg clock calibration can be off, for kmsg-timed events */
  calibrationErrorMs?: number;
  /** process cases: what the benchmark did, ms before the kernel's record (the launcher's fork before an exec, the kill(2) before an exit) */
  causedBeforeMs?: number;
  /** process cases: the kernel's record was not read (lost to a full buffer), kernelAt is when the benchmark caused it */
  noKernelRecord?: true;
}

export interface Series {
  key: string;
  label: string;
  /** the collector whose event it is, and what its source name likely holds (for its mode) */
  collector: string;
  hint: RegExp;
  /** the p99 target */
  targetMs: (opts: CaseContext["opts"]) => number;
}

export interface CaseContext {
  nonce: string;
  work: string;
  probe: KmsgProbe;
  /** the kernel's process records, for the process case (opened by it) */
  procProbe?: ProcProbe;
  cgroups: DetectCgroups;
  arrivals: Arrivals;
  /** the agents' default poll intervals, ms */
  intervals: { kernel: number; memory: number; process: number };
  opts: { processLifeMs: number; processSpacingMs: number; psiWindowMs: number; psiCalm: number; psiReaders: number; oomLimitBytes: number; psiLimitBytes: number };
  log: (line: string) => void;
}

export interface DetectCase {
  name: string;
  series: Series[];
  /** the agent's collectors (YAML under `collectors:`) */
  collectors(ctx: CaseContext): string;
  /** once, before any agent of the case starts */
  prepare?(ctx: CaseContext): Promise<void>;
  /** one agent's share of the repetitions, after `warmup` repetitions that are not counted */
  run(ctx: CaseContext, agent: AgentRun, repeats: number, warmup: number): Promise<Record<string, Sample[]>>;
  teardown?(ctx: CaseContext): Promise<void>;
  /** why it cannot run here, if it cannot */
  problem?(ctx: CaseContext): string | undefined;
}

/** The memory collector's PSI thresholds, all off (YAML). */
const PSI_OFF = "{ memory: { some_avg10: 0, full_avg10: 0 }, cpu: { some_avg10: 0, full_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }";

const pause = (maxMs: number) => Bun.sleep(Math.random() * maxMs);
const custom = (a: Arrival) => (a.event.event_data?.custom ?? {}) as Record<string, string>;
const ours = (agent: AgentRun) => (a: Arrival) => a.subject.startsWith(`${agent.subject}.`);

function sample(rep: number, kernelAt: number, arrival: Arrival | undefined, calibrationErrorMs?: number): Sample {
  const s: Sample = { rep, kernelAt };
  if (calibrationErrorMs !== undefined) s.calibrationErrorMs = calibrationErrorMs;
  if (!arrival) return s;
  s.arrivedAt = arrival.at;
  s.latencyMs = arrival.at - kernelAt;
  s.eventTimestampLatencyMs = arrival.at - epochMs(arrival.event.timestamp);
  return s;
}

// ------------------------------------------------------------------ kmsg

export const kmsgCase: DetectCase = {
  name: "kmsg",
  series: [{ key: "kmsg", label: "kmsg line -> kernel.problem", collector: "kernel", hint: /kmsg/i, targetMs: () => 10 }],
  collectors: (ctx) => {
    const rules = join(ctx.work, "detect-rules.json");
    // NPD's rule format; the pattern must match up to the end of the line.
    const pattern = `${ctx.probe.tag} \\S+ line`;
    writeFileSync(rules, JSON.stringify({ plugin: "kmsg", source: "tapio-detect", rules: [{ type: "temporary", reason: "TapioDetect", pattern }] }));
    return `  kernel: { config: { rule_files: [${JSON.stringify(rules)}] } }\n`;
  },
  async run(ctx, agent, repeats, warmup) {
    const out: Sample[] = [];
    for (let rep = -warmup; rep < repeats; rep++) {
      await pause(ctx.intervals.kernel);
      const cal = ctx.probe.calibrate();
      const text = `${ctx.probe.tag} ${agent.subject.split(".").pop()}.${rep} line`;
      ctx.probe.write(4, text);
      // The arrival first, the record read back after (as for OOM kills): not while the agent works.
      const arrival = await ctx.arrivals.waitFor((a) => ours(agent)(a) && a.event.type === "kernel.problem" && custom(a).message === text, ctx.intervals.kernel + 5000);
      const record = ctx.probe.find((m) => m === text);
      if (!record) throw new Error(`"${text}" written to /dev/kmsg was not read back`);
      if (rep >= 0) out.push(sample(rep, recordWallMs(record, cal), arrival, cal.errorMs));
    }
    return { kmsg: out };
  },
};

// ------------------------------------------------------------------ OOM

/** How long a container cgroup exists before its process is OOM-killed, at least. */
const OOM_CGROUP_AGE_MS = 1000;

export const oomCase: DetectCase = {
  name: "oom",
  series: [
    { key: "oom.kernel", label: "v1 OOM kill -> container.oom (kernel)", collector: "kernel", hint: /kmsg/i, targetMs: () => 10 },
    { key: "oom.memory", label: "v1 OOM kill -> container.memory_pressure oom_kill (memory)", collector: "memory", hint: /oom|event|cgroup/i, targetMs: () => 10 },
  ],
  collectors: (ctx) =>
    `  kernel: { config: {} }\n` +
    // PSI and MemAvailable off: they are the psi case's; here they would only add reads and events from the kills' pressure.
    `  memory: { config: { cgroup_root: ${JSON.stringify(ctx.cgroups.fakeRoot)}, psi: ${PSI_OFF}, memory_available: { percent: 0, bytes: 0 } } }\n`,
  async run(ctx, agent, repeats, warmup) {
    const kernel: Sample[] = [];
    const memory: Sample[] = [];
    for (let rep = -warmup; rep < repeats; rep++) {
      // The container's cgroup exists a while before the kill, as a real one does: an event-driven
      // collector has the time to find it (and to arm a notification on it).
      const container = ctx.cgroups.container(ctx.opts.oomLimitBytes);
      await Bun.sleep(OOM_CGROUP_AGE_MS);
      await pause(ctx.intervals.memory);
      const cal = ctx.probe.calibrate();
      // tail keeps every byte of a line it has not seen the end of, and /dev/zero has no end.
      const victim = Bun.spawn(["sh", "-c", `echo $$ > ${container.dir}/cgroup.procs && exec tail /dev/zero`], { stdout: "ignore", stderr: "ignore" });
      killAtExit(victim.pid);
      const timer = setTimeout(() => victim.kill("SIGKILL"), 30_000);
      await victim.exited;
      clearTimeout(timer);
      spare(victim.pid);
      const isOurs = ours(agent);
      // The arrivals first, the kill's record after (the ring buffer keeps it, the arrivals are stamped
      // by the subscriber's thread): reading and parsing a hundred records here now would take CPU from
      // the agent in the very milliseconds measured.
      const [k, m] = await Promise.all([
        ctx.arrivals.waitFor((a) => isOurs(a) && a.event.type === "container.oom" && a.event.metadata?.container_id === container.id, ctx.intervals.kernel + 5000),
        ctx.arrivals.waitFor(
          (a) => isOurs(a) && a.event.type === "container.memory_pressure" && a.event.event_data?.container?.action === "oom_kill" && a.event.metadata?.container_id === container.id,
          ctx.intervals.memory + 5000,
        ),
      ]);
      const killed = new RegExp(`Killed process ${victim.pid} \\(`);
      const record = ctx.probe.find((m) => killed.test(m));
      if (!record) throw new Error(`no "Killed process ${victim.pid}" in /dev/kmsg: the victim was not OOM-killed (exit ${victim.exitCode}, signal ${victim.signalCode})`);
      const kernelAt = recordWallMs(record, cal);
      await ctx.cgroups.remove(container.dir);
      if (rep < 0) continue;
      kernel.push(sample(rep, kernelAt, k, cal.errorMs));
      memory.push(sample(rep, kernelAt, m, cal.errorMs));
    }
    return { "oom.kernel": kernel, "oom.memory": memory };
  },
};

// ------------------------------------------------------------------ process

/**
 * A process event timed by the kernel's own record of it (exec, exit), read by
 * the benchmark from its own connector socket; `causedAt`, when the benchmark
 * caused it, is kept beside (and used when the record was lost).
 */
function kernelSample(rep: number, causedAt: number, kernelAt: number | undefined, arrival: Arrival | undefined): Sample {
  const s = sample(rep, kernelAt ?? causedAt, arrival);
  if (kernelAt === undefined) s.noKernelRecord = true;
  else s.causedBeforeMs = kernelAt - causedAt;
  return s;
}

/** Starts processes in a container cgroup on request: bash forks each (the child is in the cgroup from its fork) and tells its pid and the time just before the fork. */
class Launcher {
  readonly #proc: Bun.Subprocess<"pipe", "pipe", "ignore">;
  readonly #chunks: AsyncIterator<Uint8Array>;
  #buffer = "";
  #seq = 0;

  constructor(dir: string) {
    const script = `echo $$ > ${dir}/cgroup.procs || exit 1; while read n; do t=$EPOCHREALTIME; sleep 3600 & echo "$n $! $t"; done`;
    this.#proc = Bun.spawn(["bash", "-c", script], { stdin: "pipe", stdout: "pipe", stderr: "ignore" });
    killAtExit(this.#proc.pid);
    this.#chunks = this.#proc.stdout[Symbol.asyncIterator]();
  }

  /** A new process: its pid and when it was forked (ms since the epoch, µs digits). */
  async start(): Promise<{ pid: number; startedAt: number }> {
    const n = ++this.#seq;
    this.#proc.stdin.write(`${n}\n`);
    await this.#proc.stdin.flush();
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const [seq, pid, t] = this.#buffer.slice(0, nl).split(" ");
        this.#buffer = this.#buffer.slice(nl + 1);
        if (Number(seq) !== n) throw new Error(`launcher answered ${seq} to ${n}`);
        // EPOCHREALTIME: seconds.microseconds
        const [s, us] = t!.split(/[.,]/);
        return { pid: Number(pid), startedAt: Number(s) * 1000 + Number(us) / 1000 };
      }
      const { value, done } = await this.#chunks.next();
      if (done) throw new Error("the launcher ended");
      this.#buffer += new TextDecoder().decode(value);
    }
  }

  stop(): void {
    this.#proc.stdin.end();
    spare(this.#proc.pid);
  }
}

export const processCase: DetectCase = {
  name: "process",
  series: [
    { key: "process.start", label: "process start -> kernel.process start", collector: "process", hint: /proc|connector|netlink/i, targetMs: () => 10 },
    { key: "process.exit", label: "process exit (SIGKILL) -> kernel.process exit", collector: "process", hint: /proc|connector|netlink/i, targetMs: () => 10 },
  ],
  collectors: (ctx) => `  process: { config: { containers_only: true, cgroup_pattern: ${JSON.stringify(ctx.cgroups.cgroupPattern)} } }\n`,
  problem: () => procProbeProblem(),
  async prepare(ctx) {
    ctx.procProbe = new ProcProbe();
  },
  async teardown(ctx) {
    ctx.procProbe?.close();
    ctx.procProbe = undefined;
  },
  async run(ctx, agent, repeats, warmup) {
    const probe = ctx.procProbe;
    if (!probe) throw new Error("the process case needs the kernel's process records (ctx.procProbe)");
    probe.clear();
    const container = ctx.cgroups.container();
    const launcher = new Launcher(container.dir);
    const isOurs = ours(agent);
    const event = (pid: number, kind: "start" | "exit") => (a: Arrival) =>
      isOurs(a) && a.event.type === "kernel.process" && a.event.event_data?.kernel?.pid === pid && a.event.event_data?.kernel?.event_type === kind;
    const timeout = ctx.intervals.process + 5000;
    try {
      for (let w = 0; w < warmup; w++) {
        // One process seen to start and exit: the collector is past its first look.
        const { pid } = await launcher.start();
        await ctx.arrivals.waitFor(event(pid, "start"), timeout);
        process.kill(pid, "SIGKILL");
        await ctx.arrivals.waitFor(event(pid, "exit"), timeout);
      }
      // Started apart at random spacing, each living processLifeMs (longer than the poll interval,
      // so that polling sees it at all) before it is killed: many in flight, each on its own.
      const runs: Array<Promise<{ start: Sample; exit: Sample }>> = [];
      for (let rep = 0; rep < repeats; rep++) {
        await Bun.sleep(ctx.opts.processSpacingMs * (0.5 + Math.random()));
        const { pid, startedAt } = await launcher.start();
        runs.push(
          (async () => {
            const started = ctx.arrivals.waitFor(event(pid, "start"), ctx.opts.processLifeMs + timeout);
            const exec = await probe.waitFor(pid, "exec");
            await Bun.sleep(Math.max(0, startedAt + ctx.opts.processLifeMs - wallMs()));
            const killedAt = wallMs();
            process.kill(pid, "SIGKILL");
            const exited = ctx.arrivals.waitFor(event(pid, "exit"), timeout);
            const exit = await probe.waitFor(pid, "exit");
            return { start: kernelSample(rep, startedAt, exec?.wallMs, await started), exit: kernelSample(rep, killedAt, exit?.wallMs, await exited) };
          })(),
        );
      }
      const done = await Promise.all(runs);
      return { "process.start": done.map((d) => d.start), "process.exit": done.map((d) => d.exit) };
    } finally {
      launcher.stop();
      await ctx.cgroups.remove(container.dir);
    }
  },
};

// ------------------------------------------------------------------ PSI

/** some avg10 of /proc/pressure/memory (node-wide: cgroup v1 has no per-cgroup pressure). */
function memorySomeAvg10(): number {
  const m = /^some avg10=(\d+(?:\.\d+)?)/m.exec(readFileSync("/proc/pressure/memory", "utf8"));
  return m ? Number(m[1]) : NaN;
}

async function calm(threshold: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (memorySomeAvg10() > threshold) {
    if (Date.now() > deadline) throw new Error(`memory pressure (some avg10 ${memorySomeAvg10()}) stayed above ${threshold} for ${timeoutMs / 1000} s`);
    await Bun.sleep(250);
  }
}

/** A folder on a disk-backed file system: page cache of tmpfs (shmem, no swap here) cannot be reclaimed, so it makes OOM kills, not pressure. */
function diskDir(work: string): string | undefined {
  const TMPFS = 0x01021994;
  for (const dir of [work, "/var/tmp"]) {
    try {
      if (statfsSync(dir).type !== TMPFS) return dir;
    } catch {
      // not there
    }
  }
  return undefined;
}

interface PsiState {
  dir: string;
  file: string;
}
const psiState = new WeakMap<CaseContext, PsiState>();

export const psiCase: DetectCase = {
  name: "psi",
  series: [{ key: "psi", label: "memory pressure (PSI) -> node.memory_pressure", collector: "memory", hint: /psi|pressure/i, targetMs: (o) => o.psiWindowMs + 10 }],
  collectors: (ctx) =>
    // Memory PSI only (its default thresholds); cpu and io pressure, MemAvailable and the pod cgroups' events are other cases' or none.
    `  memory: { config: { cgroup_root: ${JSON.stringify(ctx.cgroups.fakeRoot)}, psi: { cpu: { some_avg10: 0, full_avg10: 0 }, io: { some_avg10: 0, full_avg10: 0 } }, memory_available: { percent: 0, bytes: 0 }, cgroup_memory_percent: 0, cpu_throttling: { percent: 0 } } }\n`,
  problem(ctx) {
    if (!readFileSyncSafe("/proc/pressure/memory")) return "no /proc/pressure/memory (kernel without PSI)";
    if (!diskDir(ctx.work)) return "no disk-backed folder for the file the pressure generator re-reads (tmpdir and /var/tmp are tmpfs)";
    return undefined;
  },
  async prepare(ctx) {
    const dir = ctx.cgroups.sibling("psi", ctx.opts.psiLimitBytes);
    const file = join(diskDir(ctx.work)!, `tapio-detect-${ctx.nonce}-psi.bin`);
    // Written from inside the small cgroup: its page cache is charged there, so re-reading it there reclaims and refaults.
    const writer = Bun.spawn(["bash", "-c", `echo $$ > ${dir}/cgroup.procs && head -c 128M /dev/urandom > ${file} && sync ${file}`], { stdout: "ignore", stderr: "pipe" });
    killAtExit(writer.pid);
    if ((await writer.exited) !== 0) throw new Error(`writing ${file}: ${await new Response(writer.stderr).text()}`);
    spare(writer.pid);
    psiState.set(ctx, { dir, file });
  },
  async run(ctx, agent, repeats) {
    const { dir, file } = psiState.get(ctx)!;
    const isOurs = ours(agent);
    const isPressure = (a: Arrival) => a.event.type === "node.memory_pressure" && custom(a).source !== "meminfo" && (custom(a).resource ?? "memory") === "memory";
    const out: Sample[] = [];
    for (let rep = 0; rep < repeats; rep++) {
      await calm(ctx.opts.psiCalm, 180_000);
      await pause(ctx.intervals.memory);
      const startedAt = wallMs();
      // Readers re-reading a file 16x the cgroup's limit: page-cache thrashing, reclaim and refault stalls.
      const readers = `for r in $(seq ${ctx.opts.psiReaders}); do (while :; do cat ${file} > /dev/null; done) & done; wait`;
      const generator = Bun.spawn(["bash", "-c", `echo $$ > ${dir}/cgroup.procs || exit 1; ${readers}`], { stdout: "ignore", stderr: "ignore" });
      killAtExit(generator.pid);
      const arrival = await ctx.arrivals.waitFor((a) => isOurs(a) && a.at > startedAt && isPressure(a) && custom(a).state === "pressure", 2 * ctx.intervals.memory + 30_000);
      const stoppedAt = wallMs();
      await emptyCgroup(dir);
      spare(generator.pid);
      out.push(sample(rep, startedAt, arrival));
      // Back to no pressure as the collector sees it, before the next start can be news.
      const recovered = await ctx.arrivals.waitFor((a) => isOurs(a) && a.at > stoppedAt && isPressure(a) && custom(a).state === "recovered", 2 * ctx.intervals.memory + 60_000);
      if (!recovered) ctx.log(`psi: no "recovered" event within ${(2 * ctx.intervals.memory + 60_000) / 1000} s of the pressure's end (repetition ${rep})`);
    }
    return { psi: out };
  },
  async teardown(ctx) {
    const state = psiState.get(ctx);
    if (state) rmSync(state.file, { force: true });
  },
};

function readFileSyncSafe(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export const CASES: DetectCase[] = [kmsgCase, oomCase, processCase, psiCase];
