// Process start and exit: the eBPF-free stand-in for exec/exit tracepoints.
// Where the kernel allows, its process events connector tells each exec and
// exit as it happens (a worker thread reads the netlink socket), and /proc
// is listed only at the start and every resync_interval; elsewhere /proc is
// listed every interval. A process is its pid plus its start time (stat
// field 22), so a pid reused between two listings reads as one exit and one start.
//
// A listing reads each pid's stat, and nothing else of a process it knows:
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
import { exitStatus, type ProcessRecord } from "./connector.ts";
import { ProcEvents } from "./proc-events.ts";

/** USER_HZ, the unit of stat's start time: 100 on every architecture Kubernetes runs on. */
const TICKS_PER_SECOND = 100;
/** Command lines can run to megabytes; events (and what is kept until the exit) hold the first 4 KiB. */
const MAX_ARGUMENT_CHARS = 4096;
/** SO_RCVBUF asked for: about 40 000 records of room while emits wait (the kernel caps it at net.core.rmem_max). */
const CONNECTOR_RECEIVE_BUFFER = 8 * 1024 * 1024;
/** The kernel acknowledges a subscription at once; silence means it ignores this listener. */
const CONNECTOR_ACK_TIMEOUT_MS = 2000;
/** Why the connector may refuse, as the operator can fix it. */
const CONNECTOR_HINTS: Record<string, string> = {
  EPERM: "no permission (needs CAP_NET_ADMIN)",
  EACCES: "no permission (needs CAP_NET_ADMIN)",
  EPROTONOSUPPORT: "no process events connector in this network namespace (needs hostNetwork)",
  // Kernels that let the socket be made in any network namespace refuse the subscription instead.
  ECONNREFUSED: "no process events connector in this network namespace (needs hostNetwork)",
};
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

/** startTicks of a process that exec'd and was gone before its stat could be read */
const GONE = -1;

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

  async run(ctx: CollectorContext): Promise<void> {
    if (ctx.once) return this.#poll(ctx);
    const unavailable = this.#connectorUnavailable();
    if (unavailable) {
      ctx.sourceMode("proc", "poll", unavailable);
      return this.#poll(ctx);
    }
    const inbox = new Inbox();
    const opened = await ProcEvents.open({
      receiveBuffer: CONNECTOR_RECEIVE_BUFFER,
      ackTimeoutMs: CONNECTOR_ACK_TIMEOUT_MS,
      onRecords: (records, wallOffsetMs) => inbox.add(records, wallOffsetMs),
      onOverflow: () => inbox.overflow(),
      onFailed: (reason) => inbox.fail(reason),
    });
    if (!opened.ok) {
      const hint = opened.code ? CONNECTOR_HINTS[opened.code] : undefined;
      ctx.sourceMode("proc", "poll", `process events connector: ${opened.reason}${hint ? `: ${hint}` : ""}`);
      return this.#poll(ctx);
    }
    let failure: string | undefined;
    try {
      ctx.sourceMode("proc", "event");
      failure = await this.#follow(ctx, opened.events, inbox);
    } finally {
      await opened.events.close();
    }
    if (failure === undefined) return;
    ctx.sourceMode("proc", "poll", `process events connector: ${failure}`);
    return this.#poll(ctx);
  }

  #poll(ctx: CollectorContext): Promise<void> {
    return poll(ctx, this.#config.interval.ms, () => this.#round(ctx));
  }

  /** Why the connector cannot stand in for polling here, or undefined when it may be tried. */
  #connectorUnavailable(): string | undefined {
    if (!this.#config.proc_connector) return "proc_connector is off";
    if (process.platform !== "linux") return `the process events connector is Linux's (this is ${process.platform})`;
    // The connector names processes by their pids in the host's pid namespace: proc_root must show the same ones.
    const root = this.#config.proc_root;
    let self: string | undefined;
    try {
      self = readlinkSync(under(root, "self"));
    } catch {
      // not a procfs
    }
    if (self !== String(process.pid)) return `${root} is not the procfs of the agent's pid namespace`;
    return undefined;
  }

  /**
   * Event mode: a baseline listing, then records as the worker reads them,
   * a listing every resync_interval and after records were lost. Returns
   * when stopped, or the reason the connector failed.
   */
  async #follow(ctx: CollectorContext, events: ProcEvents, inbox: Inbox): Promise<string | undefined> {
    const resyncMs = this.#config.resync_interval.ms;
    // The subscription came first: a process started during the baseline listing is in the inbox too.
    await this.#resync(ctx);
    let nextResync = performance.now() + resyncMs;
    let overflows = 0;
    for (;;) {
      if (ctx.signal.aborted) return undefined;
      if (inbox.failure !== undefined) return inbox.failure;
      const lost = inbox.takeOverflow();
      if (lost || performance.now() >= nextResync) {
        if (lost) {
          overflows++;
          ctx.log.warn({ overflows }, "the process events connector dropped records (socket buffer full): listing /proc to catch up");
        }
        await this.#resync(ctx);
        nextResync = performance.now() + resyncMs;
        continue;
      }
      const batch = inbox.take();
      if (batch.length > 0) await this.#apply(ctx, events, batch);
      else await inbox.wait(nextResync - performance.now(), ctx.signal);
    }
  }

  /** One listing of /proc in event mode, with the health and metrics of a poll round. */
  async #resync(ctx: CollectorContext): Promise<void> {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    try {
      await this.#round(ctx);
      ctx.healthy();
    } catch (err) {
      if (!ctx.signal.aborted) ctx.degraded(err instanceof Error ? err.message : String(err));
    }
    const used = process.cpuUsage(cpu);
    ctx.pollRound((performance.now() - wall) / 1000, (used.user + used.system) / 1e6);
  }

  /** Emits what a batch of records tells, pausing the worker while the queue makes the collector wait. */
  async #apply(ctx: CollectorContext, events: ProcEvents, batch: readonly Received[]): Promise<void> {
    try {
      for (const { record, wallMs } of batch) {
        const out = record.kind === "exec" ? this.#onExec(ctx, record.pid, record.ppid, wallMs) : record.kind === "exit" ? this.#onExit(ctx, record, wallMs) : [];
        for (const event of out) {
          const wait = ctx.emit(event);
          if (wait) {
            events.pause();
            await wait;
          }
        }
      }
    } finally {
      events.resume();
    }
  }

  /** An exec: a start, read from /proc at once (the process may live a few milliseconds). */
  #onExec(ctx: CollectorContext, pid: number, ppid: number, wallMs: number): EventInput[] {
    const out: EventInput[] = [];
    const text = readTextIfThere(under(this.#config.proc_root, String(pid), "stat"));
    const stat = text === undefined ? undefined : parseStat(text, (d) => ctx.parseError("pid stat", d));
    const known = this.#known.get(pid);
    const live = stat?.pid === pid ? stat : undefined;
    // A process is its pid and start time, but each exec is a program starting: a shell's exec, runc's init
    // becoming the container's entrypoint. Its cgroup is read again, as a process is often moved between fork and exec.
    if (known && live && known.startTicks !== live.startTicks) {
      // The pid's earlier process exited unseen (its record lost): say so before the new one.
      this.#known.delete(pid);
      if (known.reported) out.push(processEvent("exit", known, this.#bootTime));
    }
    let tracked: Tracked;
    if (live) {
      tracked = this.#track(ctx, live, this.#polls);
      if (tracked.reported) this.#details(tracked);
    } else {
      // Exited (and reaped) before it could be read: what the records tell, and the cgroup it was in before
      // this exec, or its parent's, which a child starts in.
      const before = known ?? this.#known.get(ppid);
      tracked = { pid, ppid: known?.ppid ?? ppid, comm: "", startTicks: known?.startTicks ?? GONE, reported: !this.#config.containers_only || (before?.reported ?? false), seen: this.#polls };
      if (before?.cgroup) tracked.cgroup = before.cgroup;
    }
    this.#known.set(pid, tracked);
    if (tracked.reported) out.push(processEvent("start", tracked, this.#bootTime, { wallMs, custom: live ? undefined : { gone: "true" } }));
    return out;
  }

  /** An exit, with the status the kernel gives; only for processes known to have started. */
  #onExit(ctx: CollectorContext, record: Extract<ProcessRecord, { kind: "exit" }>, wallMs: number): EventInput[] {
    const known = this.#known.get(record.pid);
    if (!known) return [];
    this.#known.delete(record.pid);
    if (!known.reported) return [];
    // The kernel tells the exit before the parent reaps it: stat still has the last command name.
    const text = readTextIfThere(under(this.#config.proc_root, String(record.pid), "stat"));
    const stat = text === undefined ? undefined : parseStat(text, (d) => ctx.parseError("pid stat", d));
    if (stat?.pid === record.pid && stat.startTicks === known.startTicks) known.comm = stat.comm;
    if (record.ppid !== 0) known.ppid = record.ppid;
    return [processEvent("exit", known, this.#bootTime, { wallMs, custom: exitStatus(record.status) })];
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

interface Received {
  readonly record: ProcessRecord;
  /** when the kernel saw it, on the wall clock (ms) */
  readonly wallMs: number;
}

/** What the worker sent and the collector has not handled yet; wait() is the only thing event mode sleeps on. */
class Inbox {
  #items: Received[] = [];
  #overflowed = false;
  failure: string | undefined;
  #wake: (() => void) | undefined;

  add(records: readonly ProcessRecord[], wallOffsetMs: number): void {
    for (const record of records) this.#items.push({ record, wallMs: record.ns / 1e6 + wallOffsetMs });
    this.#notify();
  }

  overflow(): void {
    this.#overflowed = true;
    this.#notify();
  }

  fail(reason: string): void {
    this.failure = reason;
    this.#notify();
  }

  take(): Received[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  takeOverflow(): boolean {
    const lost = this.#overflowed;
    this.#overflowed = false;
    return lost;
  }

  /** Until something arrives, `ms` pass, or `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
      if (signal.aborted) done();
    });
  }

  #notify(): void {
    this.#wake?.();
  }
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
  description: "process start and exit from the kernel's process events connector or /proc polls, optionally only in container cgroups",
  configSchema: processConfigSchema,
  quietPeriodMs: (config) => (config.containers_only ? undefined : Math.max(UNLIMITED_QUIET_MS, 10 * config.interval.ms)),
  sources: (c) => [readableFile(under(c.proc_root, "stat")), readableDirectory(c.proc_root)],
  create: (config) => new ProcessCollector(config),
};
