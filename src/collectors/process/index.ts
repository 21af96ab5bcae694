// Process start and exit, seen by listing /proc at an interval: the
// eBPF-free stand-in for exec/exit tracepoints. A process is its pid plus
// its start time (stat field 22), so a pid reused between two polls reads as
// one exit and one start.
import { readdir, readlink } from "node:fs/promises";
import type { EventInput, EventMetadata } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { under, readText } from "../common/paths.ts";
import { readableDirectory, readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { isKernelThread, parseBootTime, parseCgroup, parseCmdline, parseStat, type CgroupInfo, type PidStat } from "./procfs.ts";
import { processConfigSchema, type ProcessConfig } from "./schema.ts";

/** USER_HZ, the unit of stat's start time: 100 on every architecture Kubernetes runs on. */
const TICKS_PER_SECOND = 100;
/** Command lines can run to megabytes; events (and what is kept until the exit) hold the first 4 KiB. */
const MAX_ARGUMENT_CHARS = 4096;
/** Files read at once while listing; bounds open descriptors on nodes with many processes. */
const READ_BATCH = 128;
/**
 * Unfiltered, a live node starts something every few minutes (timers, exec
 * probes, kubelet's mounts); silence that long means /proc is not the host's.
 * Limited to containers, hours without a start or exit are normal.
 */
const UNLIMITED_QUIET_MS = 15 * 60_000;

interface Tracked {
  pid: number;
  ppid: number;
  comm: string;
  startTicks: number;
  /** passes the filters (kernel threads, containers_only): only these produce events */
  reported: boolean;
  cgroup?: CgroupInfo;
  executable?: string;
  args?: string[];
}

/** Reads a per-process file; undefined when the process is gone (or hides it): a race, not an error. */
async function readPidFile(path: string): Promise<string | undefined> {
  try {
    return await readText(path);
  } catch {
    return undefined;
  }
}

export class ProcessCollector implements Collector {
  readonly #config: ProcessConfig;
  readonly #pattern: RegExp;
  /** by pid: what the last poll saw */
  #known = new Map<number, Tracked>();
  #baselined = false;
  #bootTime: number | undefined;
  #skippedTotal = 0;

  constructor(config: ProcessConfig) {
    this.#config = config;
    this.#pattern = new RegExp(config.cgroup_pattern);
  }

  run(ctx: CollectorContext): Promise<void> {
    return poll(ctx, this.#config.interval.ms, () => this.#round(ctx));
  }

  /** One poll: list /proc, diff against the last poll, emit starts and exits. */
  async #round(ctx: CollectorContext): Promise<void> {
    const current = await this.#list(ctx);
    // Boot time only dates the starts: without it events go out without start_time, and health says why.
    let bootTimeProblem: string | undefined;
    if (this.#bootTime === undefined) {
      try {
        this.#bootTime = parseBootTime(await readText(under(this.#config.proc_root, "stat")), (d) => ctx.parseError("stat", d));
      } catch (err) {
        bootTimeProblem = (err as Error).message;
      }
    }

    const exits: Tracked[] = [];
    for (const [pid, known] of this.#known) {
      const now = current.get(pid);
      if (now && now.startTicks === known.startTicks) {
        // Reparenting (to init or a subreaper) and exec (comm) change these while the process lives.
        known.ppid = now.ppid;
        known.comm = now.comm;
        continue;
      }
      this.#known.delete(pid);
      if (known.reported) exits.push(known);
    }
    const starts: Tracked[] = [];
    const fresh = [...current].filter(([pid]) => !this.#known.has(pid));
    await inBatches(fresh, async ([pid, stat]) => {
      const tracked = await this.#track(ctx, pid, stat);
      this.#known.set(pid, tracked);
      if (tracked.reported && this.#baselined) starts.push(tracked);
    });
    // In the order they started, as far as a poll can tell.
    const byStart = (a: Tracked, b: Tracked) => a.startTicks - b.startTicks || a.pid - b.pid;
    exits.sort(byStart);
    starts.sort(byStart);
    // The first poll only learns what runs already: those processes did not start now.
    this.#baselined = true;

    const cap = this.#config.max_events_per_poll;
    const emitted = [...exits.map((p) => ["exit", p] as const), ...starts.map((p) => ["start", p] as const)].slice(0, cap);
    await inBatches(emitted.filter(([kind]) => kind === "start"), ([, p]) => this.#details(p));
    const events = emitted.map(([kind, p]) => processEvent(kind, p, this.#bootTime));
    const skipped = exits.length + starts.length - emitted.length;
    if (skipped > 0) {
      this.#skippedTotal += skipped;
      events.push(skippedEvent(starts.length, exits.length, skipped, this.#skippedTotal, cap));
    }
    await emitAll(ctx, events);
    if (bootTimeProblem) throw new Error(bootTimeProblem);
  }

  /** pid -> stat of every process in /proc now; a missing /proc throws (degraded, retried). */
  async #list(ctx: CollectorContext): Promise<Map<number, PidStat>> {
    const root = this.#config.proc_root;
    let names: string[];
    try {
      names = await readdir(root);
    } catch (err) {
      throw new Error(`cannot list ${root}: ${(err as Error).message}`);
    }
    const pids = names.filter((n) => /^\d+$/.test(n));
    const current = new Map<number, PidStat>();
    await inBatches(pids, async (name) => {
      const text = await readPidFile(under(root, name, "stat"));
      if (text === undefined) return;
      const fail = (detail: string) => ctx.parseError("pid stat", detail);
      const stat = parseStat(text, fail);
      // procfs never shows another pid's stat: a file that does is not what it claims to be.
      if (stat && stat.pid !== Number(name)) fail(`${under(root, name, "stat")} names pid ${stat.pid}`);
      else if (stat) current.set(stat.pid, stat);
    });
    return current;
  }

  /** A process seen for the first time: its cgroup decides whether it is reported. */
  async #track(ctx: CollectorContext, pid: number, stat: PidStat): Promise<Tracked> {
    const tracked: Tracked = { pid, ppid: stat.ppid, comm: stat.comm, startTicks: stat.startTicks, reported: false };
    if (!this.#config.kernel_threads && isKernelThread(stat)) return tracked;
    const text = await readPidFile(under(this.#config.proc_root, String(pid), "cgroup"));
    const cgroup = text === undefined ? undefined : parseCgroup(text, this.#pattern, (d) => ctx.parseError("pid cgroup", d));
    if (cgroup) tracked.cgroup = cgroup;
    // With containers_only, a process whose cgroup cannot be read is not known to be in a container.
    tracked.reported = !this.#config.containers_only || (text !== undefined && this.#pattern.test(text));
    return tracked;
  }

  /** cmdline and exe, read only for starts that are emitted (a fork storm reads no more than the cap). */
  async #details(p: Tracked): Promise<void> {
    const dir = under(this.#config.proc_root, String(p.pid));
    const cmdline = await readPidFile(under(dir, "cmdline"));
    if (cmdline) p.args = capArguments(parseCmdline(cmdline));
    try {
      p.executable = await readlink(under(dir, "exe"));
    } catch {
      // Kernel threads have no exe; other users' processes hide it unless the agent runs as root.
    }
  }
}

/** The arguments up to MAX_ARGUMENT_CHARS; a cut argument ends in "...". */
function capArguments(args: string[]): string[] {
  const kept: string[] = [];
  let room = MAX_ARGUMENT_CHARS;
  for (const arg of args) {
    if (arg.length > room) {
      kept.push(`${arg.slice(0, room)}...`);
      break;
    }
    kept.push(arg);
    room -= arg.length;
  }
  return kept;
}

/** Runs `fn` over `items`, READ_BATCH at a time. */
async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += READ_BATCH) await Promise.all(items.slice(i, i + READ_BATCH).map(fn));
}

function processEvent(kind: "start" | "exit", p: Tracked, bootTime: number | undefined): EventInput {
  const process: Record<string, unknown> = { pid: p.pid, ppid: p.ppid, command: p.comm };
  if (p.executable) process.executable = p.executable;
  if (p.args && p.args.length > 0) process.arguments = p.args;
  if (bootTime !== undefined) process.start_time = new Date((bootTime + p.startTicks / TICKS_PER_SECOND) * 1000).toISOString();
  if (p.cgroup) process.cgroup_path = p.cgroup.path;
  if (p.cgroup?.containerId) process.container_id = p.cgroup.containerId;
  const metadata: EventMetadata = { pid: p.pid, ppid: p.ppid, command: p.comm };
  if (p.cgroup?.podUid) metadata.pod_uid = p.cgroup.podUid;
  if (p.cgroup?.containerId) metadata.container_id = p.cgroup.containerId;
  return {
    type: "kernel.process",
    severity: "info",
    event_data: { kernel: { event_type: kind, pid: p.pid, ppid: p.ppid, command: p.comm }, process },
    metadata,
  };
}

function skippedEvent(starts: number, exits: number, skipped: number, total: number, cap: number): EventInput {
  return {
    type: "kernel.process.skipped",
    severity: "warning",
    event_data: {
      custom: { starts: String(starts), exits: String(exits), skipped: String(skipped), skipped_total: String(total), max_events_per_poll: String(cap) },
    },
  };
}

export const processFactory: CollectorFactory<ProcessConfig> = {
  type: "process",
  description: "process start and exit from /proc polls, optionally only in container cgroups",
  configSchema: processConfigSchema,
  quietPeriodMs: (config) => (config.containers_only ? undefined : Math.max(UNLIMITED_QUIET_MS, 10 * config.interval.ms)),
  sources: (c) => [readableFile(under(c.proc_root, "stat")), readableDirectory(c.proc_root)],
  create: (config) => new ProcessCollector(config),
};
