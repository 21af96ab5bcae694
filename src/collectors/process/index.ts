// Process start and exit, seen by listing /proc at an interval: the
// eBPF-free stand-in for exec/exit tracepoints. A process is its pid plus
// its start time (stat field 22), so a pid reused between two polls reads as
// one exit and one start.
//
// A poll reads each pid's stat, and nothing else of a process it knows:
// cgroup only for a new process, cmdline and exe only for a start it emits.
// Reads are synchronous (procfs files are built in memory), in chunks with
// the event loop let through between them.
import { readdirSync, readlinkSync } from "node:fs";
import type { EventInput, EventMetadata } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { readTextIfThere, readTextSync, under, yieldToEventLoop } from "../common/paths.ts";
import { readableDirectory, readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { isKernelThread, parseBootTime, parseCgroup, parseCmdline, parseStat, type CgroupInfo, type PidStat } from "./procfs.ts";
import { processConfigSchema, type ProcessConfig } from "./schema.ts";
import { processEvents } from "./events.ts";

/** USER_HZ, the unit of stat's start time: 100 on every architecture Kubernetes runs on. */
const TICKS_PER_SECOND = 100;
/** Command lines can run to megabytes; events (and what is kept until the exit) hold the first 4 KiB. */
const MAX_ARGUMENT_CHARS = 4096;
/** Files read between two turns of the event loop: a few milliseconds of reading at most. */
const READ_CHUNK = 256;
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
  /** the last poll that saw it */
  seen: number;
  cgroup?: CgroupInfo;
  executable?: string;
  args?: string[];
}

export class ProcessCollector implements Collector {
  readonly #config: ProcessConfig;
  readonly #pattern: RegExp;
  /** by pid: what the last poll saw */
  #known = new Map<number, Tracked>();
  #polls = 0;
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
    const poll = ++this.#polls;
    const exits: Tracked[] = [];
    const fresh: PidStat[] = [];
    await this.#list(ctx, (stat) => {
      const known = this.#known.get(stat.pid);
      if (known && known.startTicks === stat.startTicks) {
        // Reparenting (to init or a subreaper) and exec (comm) change these while the process lives.
        known.ppid = stat.ppid;
        known.comm = stat.comm;
        known.seen = poll;
        return;
      }
      // A pid reused since the last poll: that process exited.
      if (known) {
        this.#known.delete(stat.pid);
        if (known.reported) exits.push(known);
      }
      fresh.push(stat);
    });
    // Boot time only dates the starts: without it events go out without start_time, and health says why.
    let bootTimeProblem: string | undefined;
    if (this.#bootTime === undefined) {
      try {
        this.#bootTime = parseBootTime(readTextSync(under(this.#config.proc_root, "stat")), (d) => ctx.parseError("stat", d));
      } catch (err) {
        bootTimeProblem = (err as Error).message;
      }
    }

    for (const [pid, known] of this.#known) {
      if (known.seen === poll) continue;
      this.#known.delete(pid);
      if (known.reported) exits.push(known);
    }
    const starts: Tracked[] = [];
    for (let i = 0; i < fresh.length; i++) {
      if (i > 0 && i % READ_CHUNK === 0) await yieldToEventLoop();
      const tracked = this.#track(ctx, fresh[i]!, poll);
      this.#known.set(tracked.pid, tracked);
      if (tracked.reported && this.#baselined) starts.push(tracked);
    }
    // In the order they started, as far as a poll can tell.
    const byStart = (a: Tracked, b: Tracked) => a.startTicks - b.startTicks || a.pid - b.pid;
    exits.sort(byStart);
    starts.sort(byStart);
    // The first poll only learns what runs already: those processes did not start now.
    this.#baselined = true;

    const cap = this.#config.max_events_per_poll;
    const emitted = [...exits.map((p) => ["exit", p] as const), ...starts.map((p) => ["start", p] as const)].slice(0, cap);
    for (const [kind, p] of emitted) if (kind === "start") this.#details(p);
    const events = emitted.map(([kind, p]) => processEvent(kind, p, this.#bootTime));
    const skipped = exits.length + starts.length - emitted.length;
    if (skipped > 0) {
      this.#skippedTotal += skipped;
      events.push(skippedEvent(starts.length, exits.length, skipped, this.#skippedTotal, cap));
    }
    await emitAll(ctx, events);
    if (bootTimeProblem) throw new Error(bootTimeProblem);
  }

  /** Reads the stat of every process in /proc now into `each`; a missing /proc throws (degraded, retried). */
  async #list(ctx: CollectorContext, each: (stat: PidStat) => void): Promise<void> {
    const root = this.#config.proc_root;
    let names: string[];
    try {
      names = readdirSync(root);
    } catch (err) {
      throw new Error(`cannot list ${root}: ${(err as Error).message}`);
    }
    const fail = (detail: string) => ctx.parseError("pid stat", detail);
    let read = 0;
    for (const name of names) {
      if (!isPid(name)) continue;
      if (++read % READ_CHUNK === 0) await yieldToEventLoop();
      // Gone since the listing (or hidden): a race, not an error.
      const text = readTextIfThere(`${root}/${name}/stat`);
      if (text === undefined) continue;
      const stat = parseStat(text, fail);
      // procfs never shows another pid's stat: a file that does is not what it claims to be.
      if (stat && stat.pid !== Number(name)) fail(`${under(root, name, "stat")} names pid ${stat.pid}`);
      else if (stat) each(stat);
    }
  }

  /** A process seen for the first time: its cgroup decides whether it is reported. */
  #track(ctx: CollectorContext, stat: PidStat, poll: number): Tracked {
    const pid = stat.pid;
    const tracked: Tracked = { pid, ppid: stat.ppid, comm: stat.comm, startTicks: stat.startTicks, reported: false, seen: poll };
    if (!this.#config.kernel_threads && isKernelThread(stat)) return tracked;
    const text = readTextIfThere(under(this.#config.proc_root, String(pid), "cgroup"));
    const cgroup = text === undefined ? undefined : parseCgroup(text, this.#pattern, (d) => ctx.parseError("pid cgroup", d));
    if (cgroup) tracked.cgroup = cgroup;
    // With containers_only, a process whose cgroup cannot be read is not known to be in a container.
    tracked.reported = !this.#config.containers_only || (text !== undefined && this.#pattern.test(text));
    return tracked;
  }

  /** cmdline and exe, read only for starts that are emitted (a fork storm reads no more than the cap). */
  #details(p: Tracked): void {
    const dir = under(this.#config.proc_root, String(p.pid));
    const cmdline = readTextIfThere(under(dir, "cmdline"));
    if (cmdline) p.args = capArguments(parseCmdline(cmdline));
    try {
      p.executable = readlinkSync(under(dir, "exe"));
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

/** A /proc entry that is a process: all digits (the other entries are the kernel's files). */
function isPid(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
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
  events: processEvents,
  description: "process start and exit from /proc polls, optionally only in container cgroups",
  configSchema: processConfigSchema,
  quietPeriodMs: (config) => (config.containers_only ? undefined : Math.max(UNLIMITED_QUIET_MS, 10 * config.interval.ms)),
  sources: (c) => [readableFile(under(c.proc_root, "stat")), readableDirectory(c.proc_root)],
  create: (config) => new ProcessCollector(config),
};
