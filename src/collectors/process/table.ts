// What runs on the node, as the process collector knows it, and the events
// its changes make. One table per mode: polling keeps it on the main thread
// (listings only); event mode keeps it in the connector's worker thread
// (connector-worker.ts), which applies each exec and exit record to it and
// lists /proc every resync_interval, so the filters (containers_only,
// cgroup_pattern, kernel_threads) run there and the main thread hears only
// of processes that count, as events ready to emit.
//
// A process is its pid plus its start time (stat field 22), so a pid reused
// between two listings reads as one exit and one start. A listing reads each
// pid's stat, and nothing else of a process it knows: cgroup only for a new
// process, cmdline and exe only for a start it emits. Reads are synchronous
// (procfs files are built in memory).
import { readdirSync, readlinkSync } from "node:fs";
import type { EventInput, EventMetadata } from "../../event/event.ts";
import { readTextIfThere, readTextSync, under } from "../common/paths.ts";
import { isKernelThread, parseBootTime, parseCgroup, parseCmdline, parseStat, type CgroupInfo, type PidStat } from "./procfs.ts";
import { exitStatus, type ProcessRecord } from "./connector.ts";

/** What the table needs of the collector's config; plain data, so it can be passed to the worker. */
export interface TableConfig {
  readonly proc_root: string;
  readonly containers_only: boolean;
  readonly cgroup_pattern: string;
  readonly kernel_threads: boolean;
  readonly max_events_per_poll: number;
}

/** A file that did not parse: `source` is "pid stat", "pid cgroup" or "stat" (the collector's parse error sources). */
export type OnParseError = (source: string, detail: string) => void;

/** USER_HZ, the unit of stat's start time: 100 on every architecture Kubernetes runs on. */
const TICKS_PER_SECOND = 100;
/** Command lines can run to megabytes; events (and what is kept until the exit) hold the first 4 KiB. */
const MAX_ARGUMENT_CHARS = 4096;
/** Files read between two calls of a listing's `between`: a few milliseconds of reading at most. */
const READ_CHUNK = 256;

interface Tracked {
  pid: number;
  ppid: number;
  comm: string;
  startTicks: number;
  /** passes the filters (kernel threads, containers_only): only these produce events */
  reported: boolean;
  /** the last listing that saw it */
  seen: number;
  cgroup?: CgroupInfo;
  executable?: string;
  args?: string[];
}

/** startTicks of a process that exec'd and was gone before its stat could be read */
const GONE = -1;

/** A listing's events (exits, then starts, then the count of the rest), and what made it degraded though it went on. */
export interface Listing {
  events: EventInput[];
  problem?: string;
}

export class ProcessTable {
  readonly #config: TableConfig;
  /** proc_root without a trailing slash: pid paths are built by concatenation, per exec */
  readonly #root: string;
  readonly #pattern: RegExp;
  readonly #parseError: OnParseError;
  /** by pid: every process the table knows, whether it counts or not */
  readonly #known = new Map<number, Tracked>();
  #listings = 0;
  #baselined = false;
  #bootTime: number | undefined;
  #skippedTotal = 0;
  /** the set of processes that count changed since takeCountedChanged() */
  #countedChanged = false;

  constructor(config: TableConfig, parseError: OnParseError) {
    this.#config = config;
    this.#root = config.proc_root.replace(/(.)\/+$/, "$1");
    this.#pattern = new RegExp(config.cgroup_pattern);
    this.#parseError = parseError;
  }

  /** The pids of the processes that count: their exits are reported. */
  counted(): number[] {
    const pids: number[] = [];
    for (const p of this.#known.values()) if (p.reported) pids.push(p.pid);
    return pids;
  }

  /** Whether counted() changed since the last call. */
  takeCountedChanged(): boolean {
    const changed = this.#countedChanged;
    this.#countedChanged = false;
    return changed;
  }

  #keep(tracked: Tracked): void {
    const before = this.#known.get(tracked.pid);
    this.#known.set(tracked.pid, tracked);
    if (tracked.reported || before?.reported) this.#countedChanged = true;
  }

  #forget(pid: number): void {
    const before = this.#known.get(pid);
    this.#known.delete(pid);
    if (before?.reported) this.#countedChanged = true;
  }

  /**
   * An exec: a start, read from /proc at once (the process may live a few
   * milliseconds). With containers_only the cgroup is read first: a process
   * outside the pattern costs that one read and is forgotten (a later listing
   * looks at it again, once), so neither its start nor its exit is reported.
   */
  onExec(pid: number, ppid: number, wallMs: number): EventInput[] {
    const out: EventInput[] = [];
    const dir = `${this.#root}/${pid}`;
    const known = this.#known.get(pid);
    let cgroupText: string | undefined;
    if (this.#config.containers_only) {
      cgroupText = readTextIfThere(`${dir}/cgroup`);
      // A known process that counted may be an earlier one under a reused pid, whose exit was lost: stat tells (below).
      if (cgroupText !== undefined && !this.#pattern.test(cgroupText) && !known?.reported) {
        this.#forget(pid);
        return out;
      }
    }
    const text = readTextIfThere(`${dir}/stat`);
    const stat = text === undefined ? undefined : parseStat(text, (d) => this.#parseError("pid stat", d));
    const live = stat?.pid === pid ? stat : undefined;
    // A process is its pid and start time, but each exec is a program starting: a shell's exec, runc's init
    // becoming the container's entrypoint. Its cgroup is read again, as a process is often moved between fork and exec.
    if (known && live && known.startTicks !== live.startTicks) {
      // The pid's earlier process exited unseen (its record lost): say so before the new one.
      this.#forget(pid);
      if (known.reported) out.push(processEvent("exit", known, this.#bootTime));
    }
    let tracked: Tracked;
    if (live) {
      tracked = this.#track(live, this.#listings, cgroupText);
      if (tracked.reported) this.#details(tracked);
    } else {
      // Exited (and reaped) before it could be read: what the records tell, and the cgroup it was in before
      // this exec, or its parent's, which a child starts in.
      const before = known ?? this.#known.get(ppid);
      tracked = { pid, ppid: known?.ppid ?? ppid, comm: "", startTicks: known?.startTicks ?? GONE, reported: !this.#config.containers_only || (before?.reported ?? false), seen: this.#listings };
      if (before?.cgroup) tracked.cgroup = before.cgroup;
    }
    if (!tracked.reported) {
      // Not counted: nothing to keep until a listing (a known process's pid would otherwise read as new).
      if (live) this.#keep(tracked);
      else this.#forget(pid);
      return out;
    }
    this.#keep(tracked);
    out.push(processEvent("start", tracked, this.#bootTime, { wallMs, custom: live ? undefined : { gone: "true" } }));
    return out;
  }

  /** An exit, with the status the kernel gives; only for processes known to count. */
  onExit(record: Extract<ProcessRecord, { kind: "exit" }>, wallMs: number): EventInput[] {
    const known = this.#known.get(record.pid);
    if (!known) return [];
    this.#forget(record.pid);
    if (!known.reported) return [];
    // The kernel tells the exit before the parent reaps it: stat still has the last command name.
    const text = readTextIfThere(`${this.#root}/${record.pid}/stat`);
    const stat = text === undefined ? undefined : parseStat(text, (d) => this.#parseError("pid stat", d));
    if (stat?.pid === record.pid && stat.startTicks === known.startTicks) known.comm = stat.comm;
    if (record.ppid !== 0) known.ppid = record.ppid;
    return [processEvent("exit", known, this.#bootTime, { wallMs, custom: exitStatus(record.status) })];
  }

  /**
   * One listing: /proc now against what the table knows, as exits and starts
   * (none the first time: it only learns what runs already). A missing /proc
   * throws; a missing btime only drops start_time, and is the listing's problem.
   * `between` runs after each chunk of reads (the main thread lets its event loop through).
   */
  async list(between: () => Promise<void> | void): Promise<Listing> {
    const listing = ++this.#listings;
    const exits: Tracked[] = [];
    const fresh: PidStat[] = [];
    await this.#read(between, (stat) => {
      const known = this.#known.get(stat.pid);
      if (known && known.startTicks === stat.startTicks) {
        // Reparenting (to init or a subreaper) and exec (comm) change these while the process lives.
        known.ppid = stat.ppid;
        known.comm = stat.comm;
        known.seen = listing;
        return;
      }
      // A pid reused since the last listing: that process exited.
      if (known) {
        this.#forget(stat.pid);
        if (known.reported) exits.push(known);
      }
      fresh.push(stat);
    });
    let problem: string | undefined;
    if (this.#bootTime === undefined) {
      try {
        this.#bootTime = parseBootTime(readTextSync(under(this.#config.proc_root, "stat")), (d) => this.#parseError("stat", d));
      } catch (err) {
        problem = (err as Error).message;
      }
    }

    for (const [pid, known] of this.#known) {
      if (known.seen === listing) continue;
      this.#forget(pid);
      if (known.reported) exits.push(known);
    }
    const starts: Tracked[] = [];
    for (let i = 0; i < fresh.length; i++) {
      if (i > 0 && i % READ_CHUNK === 0) await between();
      const tracked = this.#track(fresh[i]!, listing);
      this.#keep(tracked);
      if (tracked.reported && this.#baselined) starts.push(tracked);
    }
    // In the order they started, as far as a listing can tell.
    const byStart = (a: Tracked, b: Tracked) => a.startTicks - b.startTicks || a.pid - b.pid;
    exits.sort(byStart);
    starts.sort(byStart);
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
    return problem === undefined ? { events } : { events, problem };
  }

  /** Reads the stat of every process in /proc now into `each`; a missing /proc throws (degraded, retried). */
  async #read(between: () => Promise<void> | void, each: (stat: PidStat) => void): Promise<void> {
    const root = this.#root;
    let names: string[];
    try {
      names = readdirSync(root);
    } catch (err) {
      throw new Error(`cannot list ${root}: ${(err as Error).message}`);
    }
    const fail = (detail: string) => this.#parseError("pid stat", detail);
    let read = 0;
    for (const name of names) {
      if (!isPid(name)) continue;
      if (++read % READ_CHUNK === 0) await between();
      // Gone since the listing (or hidden): a race, not an error.
      const text = readTextIfThere(`${root}/${name}/stat`);
      if (text === undefined) continue;
      const stat = parseStat(text, fail);
      // procfs never shows another pid's stat: a file that does is not what it claims to be.
      if (stat && stat.pid !== Number(name)) fail(`${under(root, name, "stat")} names pid ${stat.pid}`);
      else if (stat) each(stat);
    }
  }

  /** A process seen for the first time (or exec'd): its cgroup decides whether it counts. `cgroupText`: already read. */
  #track(stat: PidStat, listing: number, cgroupText?: string): Tracked {
    const pid = stat.pid;
    const tracked: Tracked = { pid, ppid: stat.ppid, comm: stat.comm, startTicks: stat.startTicks, reported: false, seen: listing };
    if (!this.#config.kernel_threads && isKernelThread(stat)) return tracked;
    const text = cgroupText ?? readTextIfThere(`${this.#root}/${pid}/cgroup`);
    // With containers_only, a process whose cgroup cannot be read is not known to be in a container.
    tracked.reported = !this.#config.containers_only || (text !== undefined && this.#pattern.test(text));
    // Parsed only for a process that counts: the others' cgroups are never shown.
    if (tracked.reported && text !== undefined) {
      const cgroup = parseCgroup(text, this.#pattern, (d) => this.#parseError("pid cgroup", d));
      if (cgroup) tracked.cgroup = cgroup;
    }
    return tracked;
  }

  /** cmdline and exe, read only for starts that are emitted (a fork storm reads no more than the cap). */
  #details(p: Tracked): void {
    const dir = `${this.#root}/${p.pid}`;
    const cmdline = readTextIfThere(`${dir}/cmdline`);
    if (cmdline) p.args = capArguments(parseCmdline(cmdline));
    try {
      p.executable = readlinkSync(`${dir}/exe`);
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

/** From the connector: when the kernel saw it (ms), and custom fields. */
interface FromConnector {
  wallMs: number;
  custom?: Record<string, string>;
}

function processEvent(kind: "start" | "exit", p: Tracked, bootTime: number | undefined, told?: FromConnector): EventInput {
  const process: Record<string, unknown> = { pid: p.pid, ppid: p.ppid, command: p.comm };
  if (p.executable) process.executable = p.executable;
  if (p.args && p.args.length > 0) process.arguments = p.args;
  if (bootTime !== undefined && p.startTicks !== GONE) process.start_time = new Date((bootTime + p.startTicks / TICKS_PER_SECOND) * 1000).toISOString();
  if (p.cgroup) process.cgroup_path = p.cgroup.path;
  if (p.cgroup?.containerId) process.container_id = p.cgroup.containerId;
  const metadata: EventMetadata = { pid: p.pid, ppid: p.ppid, command: p.comm };
  if (p.cgroup?.podUid) metadata.pod_uid = p.cgroup.podUid;
  if (p.cgroup?.containerId) metadata.container_id = p.cgroup.containerId;
  const event: EventInput = {
    type: "kernel.process",
    severity: "info",
    event_data: { kernel: { event_type: kind, pid: p.pid, ppid: p.ppid, command: p.comm }, process },
    metadata,
  };
  if (told) event.timestamp = new Date(told.wallMs).toISOString();
  if (told?.custom) event.event_data.custom = told.custom;
  return event;
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
