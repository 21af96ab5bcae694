// The kernel log without eBPF: /dev/kmsg records become container.oom events
// (OOM kills, with the pod and container from the memory cgroup) and
// kernel.problem events (node-problem-detector rules), and /proc/vmstat's
// oom_kill counter is watched for kills the log did not show. Where it
// stopped in the log (boot id and sequence number) is kept in ctx.state, so
// after a restart it reads what was written while it was down; each event's
// id is derived from that place, so a record read twice makes the same ids.
// The device is read as records come (a worker waits for them, kmsg-watch.ts);
// a file standing in for it is polled every read_interval.
import type { EventInput, EventMetadata, Priority } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { sleep } from "../../wait.ts";
import { uuidV5, EVENT_ID_NAMESPACE } from "../../event/uuid.ts";
import { readText, readTextSync, under } from "../common/paths.ts";
import { readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { ownerOf } from "../common/kubepods.ts";
import { parseKeyed } from "../common/keyed.ts";
import { SourceHealth } from "../common/source-health.ts";
import { LineSplitter, openKmsg, recordOf, type KmsgRecord, type KmsgSource } from "./kmsg.ts";
import { KmsgWatch } from "./kmsg-watch.ts";
import { OomTracker, type OomKill } from "./oom.ts";
import kernelMonitor from "./rules/kernel-monitor.json";
import readonlyMonitor from "./rules/readonly-monitor.json";
import { compileRuleFile, loadRuleFile, RuleMatcher, type RuleFile, type RuleMatch } from "./rules.ts";
import { kernelConfigSchema, type KernelConfig } from "./schema.ts";
import { kernelEvents } from "./events.ts";

const INT32_MAX = 2 ** 31 - 1;

/** Reads between two yields to the event loop when the log has a lot to say (a replay, a burst). */
const READ_BATCH = 256;

/**
 * On resume, this many records up to the saved one are read again without
 * being reported, so that an OOM report (79 records on 6.18, its summary
 * right before the kill line) or a multi-line rule cut by the last save is
 * still whole; more than an NPD rule file's bufferSize (default 10).
 */
export const CONTEXT_RECORDS = 256;

/** Where the collector stopped, as kept in ctx.state: the last record whose events (if any) were delivered. */
export interface KmsgPosition {
  /** /proc/sys/kernel/random/boot_id: sequence numbers start again at every boot */
  boot_id: string;
  seq: number;
}

const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function parsePosition(text: string): KmsgPosition | undefined {
  try {
    const p = JSON.parse(text) as Partial<KmsgPosition>;
    return typeof p.boot_id === "string" && Number.isSafeInteger(p.seq) ? { boot_id: p.boot_id, seq: p.seq! } : undefined;
  } catch {
    return undefined;
  }
}

/** The event id of the `index`th event a record made: the same whenever that record is read in this boot. */
export function kmsgEventId(collector: string, bootId: string, seq: number, index: number): string {
  return uuidV5(EVENT_ID_NAMESPACE, `kernel/${collector}/${bootId}/${seq}/${index}`);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A syslog level (0 emerg ... 7 debug) as Go's metadata.priority enum: err
 * and worse are what Go's IsHighPriority() should pick out.
 */
export function priorityOf(level: number): Priority {
  if (level <= 2) return "critical";
  if (level === 3) return "high";
  if (level <= 5) return "normal";
  return "low";
}

/** RFC 3339 with nanoseconds from µs since the epoch. */
function rfc3339Micros(us: number): string {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, "0")}000Z`;
}

/** Records of a file have no time of this boot: they are dated when emitted. */
function timeOf(record: KmsgRecord, bootMicros: number | undefined): { timestamp?: string } {
  return bootMicros === undefined ? {} : { timestamp: rfc3339Micros(bootMicros + record.usec) };
}

/** A record the OOM tracker has seen, waiting for the rules: its trimmed text, whether its events are reported, and how many it made (its kill). */
interface FedRecord {
  record: KmsgRecord;
  text: string;
  reported: boolean;
  made: number;
}

export type OpenKmsg = (path: string, fromEnd: boolean) => KmsgSource;

export class KernelCollector implements Collector {
  readonly #oom = new OomTracker();
  readonly #nodeName: string;

  /** `open` is the way to the log; tests pass their own to play a device's errors. */
  constructor(
    readonly config: KernelConfig,
    readonly open: OpenKmsg = openKmsg,
  ) {
    this.#nodeName = config.node_name;
  }

  async run(ctx: CollectorContext): Promise<void> {
    const health = new SourceHealth(ctx);
    const matchers = await this.#rules(health);
    const bootId = await this.#bootId(ctx);
    await Promise.all([this.#tail(ctx, health, matchers, bootId), this.#vmstat(ctx, health)]);
  }

  /** This boot's id; undefined (logged) when unreadable: then ids are random and nothing is resumed. */
  async #bootId(ctx: CollectorContext): Promise<string | undefined> {
    const path = under(this.config.proc_root, "sys/kernel/random/boot_id");
    let text: string;
    try {
      text = (await readText(path)).trim();
    } catch (err) {
      ctx.log.warn({ path, err: message(err) }, `cannot read the boot id (${message(err)}): the kernel collector cannot resume where it stopped after a restart, and its event ids are random`);
      return undefined;
    }
    if (BOOT_ID.test(text)) return text;
    ctx.log.warn({ path }, `${path} holds no boot id (${JSON.stringify(text.slice(0, 40))}): the kernel collector cannot resume where it stopped after a restart, and its event ids are random`);
    return undefined;
  }

  /** The sequence number the last run of this boot stopped after, if ctx.state has one. */
  #resumeAfter(ctx: CollectorContext, bootId: string | undefined): number | undefined {
    if (bootId === undefined) return undefined;
    const text = ctx.state.load();
    if (text === undefined) return undefined;
    const saved = parsePosition(text);
    if (!saved) {
      ctx.log.warn({ saved: text.slice(0, 200) }, "the saved kernel log position is unreadable: starting as if there were none");
      return undefined;
    }
    if (saved.boot_id !== bootId) {
      ctx.log.info({ saved_boot_id: saved.boot_id, boot_id: bootId }, "the saved kernel log position is from an earlier boot: starting as if there were none");
      return undefined;
    }
    ctx.log.info({ boot_id: bootId, after_seq: saved.seq }, `resuming the kernel log after sequence number ${saved.seq}, where the last run stopped`);
    return saved.seq;
  }

  /** The rule sets: built-in and configured. A file that fails leaves health degraded; its good rules still apply. */
  async #rules(health: SourceHealth): Promise<Array<RuleMatcher<KmsgRecord>>> {
    const files: RuleFile[] = [];
    if (this.config.builtin_rules) {
      files.push(compileRuleFile(kernelMonitor, "built-in kernel-monitor.json"), compileRuleFile(readonlyMonitor, "built-in readonly-monitor.json"));
    }
    for (const path of this.config.rule_files) files.push(await loadRuleFile(path));
    const problems = files.flatMap((f) => f.problems);
    if (problems.length > 0) health.failed("rules", `rule files: ${problems.join("; ")}`);
    return files.flatMap((f) => (f.set ? [new RuleMatcher<KmsgRecord>(f.set)] : []));
  }

  /**
   * Follows the log: reopens it after errors. The first open resumes after
   * the saved position of this boot; without one it skips history (unless
   * `replay`). After each batch the position reached is saved: ctx.state
   * writes it once the batch's events are delivered.
   */
  async #tail(ctx: CollectorContext, health: SourceHealth, matchers: Array<RuleMatcher<KmsgRecord>>, bootId: string | undefined): Promise<void> {
    const { kmsg_path: path, retry_interval, read_interval } = this.config;
    const save = (seq: number): void => {
      if (bootId !== undefined) ctx.state.save(JSON.stringify({ boot_id: bootId, seq } satisfies KmsgPosition));
    };
    const idOf = bootId === undefined ? undefined : (seq: number, index: number) => kmsgEventId(ctx.name, bootId, seq, index);
    /** records up to this one were delivered by the last run: not reported again (until one after it is read) */
    let resumeAfter = this.#resumeAfter(ctx, bootId);
    /** the first record read after resuming tells whether records were overwritten while the collector was down */
    let gapChecked = resumeAfter === undefined;
    let opened = false;
    /** the device's last sequence number read: after a reopen, the records up to it are not read twice */
    let lastSeq = -1;
    for (;;) {
      let source: KmsgSource;
      try {
        source = this.open(path, resumeAfter === undefined && !this.config.replay && !opened);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const hint = code === "EACCES" || code === "EPERM" ? " (reading the kernel log needs root or CAP_SYSLOG)" : "";
        health.failed("kmsg", `cannot open ${path}: ${message(err)}${hint}`);
        if (ctx.once || !(await sleep(retry_interval.ms, ctx.signal))) return;
        continue;
      }
      if (!opened) {
        const from = resumeAfter !== undefined ? "after the saved position" : this.config.replay ? "from its start (replay)" : "from its end";
        ctx.log.info({ path, ...(source.skippedThrough !== undefined && { after_seq: source.skippedThrough }) }, `reading the kernel log ${path} ${from}`);
      }
      if (!opened && source.skippedThrough !== undefined) {
        // A quiet first run still leaves where it started: a restart then reads what came after.
        lastSeq = source.skippedThrough;
        save(source.skippedThrough);
      }
      opened = true;
      health.ok("kmsg");
      let watch: KmsgWatch | undefined;
      try {
        watch = await this.#watch(ctx, source);
        const bootMicros = source.device ? await this.#bootMicros() : undefined;
        const lines = new LineSplitter();
        /** this batch's records, fed to the OOM tracker as they came; the rules see them after */
        let batch: FedRecord[] = [];
        let last: KmsgRecord | undefined;
        /** One chunk of records, in the order read: its OOM kills go out before the next chunk is taken or any rule runs. */
        const chunk = async (records: KmsgRecord[]): Promise<void> => {
          const fresh = source.device ? records.filter((r) => r.seq > lastSeq) : records;
          if (!gapChecked && fresh.length > 0) {
            gapChecked = true;
            const missed = fresh[0]!.seq - resumeAfter! - 1;
            if (missed > 0) ctx.parseError("kmsg.overrun", `${path}: ${missed} record(s) after sequence number ${resumeAfter} were overwritten while the collector was down`);
          }
          last = fresh.at(-1) ?? last;
          if (source.device && fresh.length > 0) lastSeq = fresh.at(-1)!.seq;
          const kills = this.#kills(fresh, bootMicros, idOf, resumeAfter, batch);
          // Resumed: past the saved record, records are reported again (a file's numbers may start over later).
          if (resumeAfter !== undefined && fresh.some((r) => r.seq > resumeAfter!)) resumeAfter = undefined;
          await emitAll(ctx, kills);
          // A publish is a chain of promises, and what follows here (the next chunk, the rules)
          // runs on without giving the event loop back: one turn lets the kill reach NATS first.
          if (kills.length > 0) await new Promise((resolve) => setImmediate(resolve));
        };
        /** The rules on the batch's records, then where it ended is saved. */
        const endBatch = async (): Promise<void> => {
          await emitAll(ctx, this.#problems(matchers, batch, bootMicros, idOf));
          if (last && resumeAfter === undefined) save(last.seq);
          batch = [];
          last = undefined;
        };
        /** whether the worker reads the device (after this thread's first round read everything there) */
        let workerReads = false;
        for (;;) {
          if (watch && workerReads) {
            let records;
            try {
              records = await watch.next(ctx.signal);
            } catch (err) {
              await watch.stop();
              watch = undefined;
              workerReads = false;
              this.#polled(ctx, `waiting for records failed (${message(err)})`);
              continue;
            }
            if (!records) return;
            // What came while these were handled is the same batch's (up to READ_BATCH records): its kills first, the rules on all after.
            let taken = 0;
            for (; records && taken < READ_BATCH; records = taken < READ_BATCH ? watch.take() : undefined) {
              for (let i = 0; i < records.overruns; i++) ctx.parseError("kmsg.overrun", `${path}: records were overwritten before they were read`);
              for (const error of records.errors) ctx.parseError("kmsg", error);
              taken += records.records.length;
              await chunk(records.records);
            }
            await endBatch();
            // More is waiting (a burst): let the event loop breathe, and stop if asked.
            if (taken >= READ_BATCH) await new Promise((resolve) => setImmediate(resolve));
            if (ctx.signal.aborted) return;
            continue;
          }
          let idle = false;
          let reads = 0;
          // In chunks: an OOM report is ~80 records written within a millisecond, its kill last,
          // so the reader often catches up with the kernel inside a report: while a chunk brought
          // records, another is read.
          for (let more = true; more && reads < READ_BATCH; ) {
            const records: KmsgRecord[] = [];
            idle = false;
            for (; reads < READ_BATCH && !idle; reads++) {
              const read = source.read();
              if (read.kind === "idle") idle = true;
              else if (read.kind === "overrun") ctx.parseError("kmsg.overrun", `${path}: records were overwritten before they were read`);
              else for (const line of lines.push(read.text)) this.#parse(ctx, line, records);
            }
            if (idle && ctx.once) for (const line of lines.flush()) this.#parse(ctx, line, records);
            await chunk(records);
            more = records.length > 0;
          }
          await endBatch();
          if (!idle) {
            // More is waiting (a replay, a burst): let the event loop breathe, and stop if asked.
            await new Promise((resolve) => setImmediate(resolve));
            if (ctx.signal.aborted) return;
            continue;
          }
          if (ctx.once) return;
          if (watch) {
            // Everything there is read: from now on the worker reads, as records come.
            watch.read();
            workerReads = true;
            continue;
          }
          if (!(await sleep(read_interval.ms, ctx.signal))) return;
        }
      } catch (err) {
        health.failed("kmsg", `reading ${path}: ${message(err)}`);
        if (ctx.once || !(await sleep(retry_interval.ms, ctx.signal))) return;
      } finally {
        // The worker watches the fd: it must be gone before the fd is closed (and its number reused).
        await watch?.stop();
        source.close();
      }
    }
  }

  /**
   * A worker waiting for the device's records, so the log is read as they
   * come; undefined (the log is polled every read_interval, and said why)
   * for a file, in --once mode, or where a worker cannot wait on the fd.
   */
  async #watch(ctx: CollectorContext, source: KmsgSource): Promise<KmsgWatch | undefined> {
    if (ctx.once) return undefined;
    if (!source.device) return this.#polled(ctx, `${this.config.kmsg_path} is a regular file, not the kernel's device`);
    if (source.fd === undefined) return this.#polled(ctx, "the opened log gives no fd to wait on");
    try {
      const watch = await KmsgWatch.start(source.fd);
      ctx.sourceMode("kmsg", "event");
      return watch;
    } catch (err) {
      return this.#polled(ctx, `cannot wait for records (${message(err)})`);
    }
  }

  #polled(ctx: CollectorContext, why: string): undefined {
    ctx.sourceMode("kmsg", "poll", `${why}: read every ${this.config.read_interval}`);
    return undefined;
  }

  #parse(ctx: CollectorContext, line: string, records: KmsgRecord[]): void {
    try {
      const record = recordOf(line);
      if (record) records.push(record);
    } catch (err) {
      ctx.parseError("kmsg", message(err));
    }
  }

  /** Boot time in µs since the epoch, to date the device's records; undefined when /proc/uptime is unreadable. */
  async #bootMicros(): Promise<number | undefined> {
    try {
      const uptime = Number((await readText(under(this.config.proc_root, "uptime"))).split(" ")[0]);
      return Number.isFinite(uptime) ? Math.round(Date.now() * 1000 - uptime * 1e6) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The OOM kills completed by `records`, each dated by its record; every
   * record fed to the tracker is added to `fed`, for the rules. `idOf` names
   * each event after its record (the one that completed it) and its place
   * among that record's events: the kill first, then rule matches. Records up
   * to `resumeAfter` were reported by the last run: the last CONTEXT_RECORDS
   * of them only feed the OOM tracker and the rules.
   */
  #kills(
    records: KmsgRecord[],
    bootMicros: number | undefined,
    idOf: ((seq: number, index: number) => string) | undefined,
    resumeAfter: number | undefined,
    fed: FedRecord[],
  ): EventInput[] {
    const events: EventInput[] = [];
    for (const record of records) {
      const reported = resumeAfter === undefined || record.seq > resumeAfter;
      if (!reported && record.seq <= resumeAfter! - CONTEXT_RECORDS) continue;
      // Trimmed as node-problem-detector trims: its patterns expect no trailing blanks.
      const text = record.message.trim();
      const kill = this.#oom.push(text);
      fed.push({ record, text, reported, made: kill ? 1 : 0 });
      if (!kill || !reported) continue;
      const event: EventInput = { ...this.#oomEvent(kill, record), ...timeOf(record, bootMicros) };
      events.push(idOf ? { ...event, event_id: idOf(record.seq, 0) } : event);
    }
    return events;
  }

  /** The rule matches of records fed to the OOM tracker, named after the kills their records made. */
  #problems(matchers: Array<RuleMatcher<KmsgRecord>>, fed: FedRecord[], bootMicros: number | undefined, idOf: ((seq: number, index: number) => string) | undefined): EventInput[] {
    const events: EventInput[] = [];
    for (const { record, text, reported, made } of fed) {
      let index = made;
      for (const matcher of matchers) {
        for (const match of matcher.push(record, text)) {
          if (!reported) continue;
          const event: EventInput = { ...this.#problemEvent(match), ...timeOf(match.lines[0]!, bootMicros) };
          events.push(idOf ? { ...event, event_id: idOf(record.seq, index) } : event);
          index++;
        }
      }
    }
    return events;
  }

  #oomEvent(kill: OomKill, record: KmsgRecord): EventInput {
    const owner = kill.memcg ? ownerOf(kill.memcg) : {};
    const custom: Record<string, string> = {
      total_vm_bytes: String(kill.totalVmKb * 1024),
      anon_rss_bytes: String(kill.anonRssKb * 1024),
      file_rss_bytes: String(kill.fileRssKb * 1024),
    };
    if (kill.shmemRssKb !== undefined) custom.shmem_rss_bytes = String(kill.shmemRssKb * 1024);
    if (kill.memcg !== undefined) custom.memory_cgroup = kill.memcg;
    if (kill.oomMemcg !== undefined) custom.oom_cgroup = kill.oomMemcg;
    if (kill.constraint !== undefined) custom.constraint = kill.constraint;
    if (kill.scope !== undefined) custom.scope = kill.scope;
    // Go's KernelData has no field for the level: custom is where Go consumers can read it.
    custom.syslog_level = String(record.level);
    // Go's uid fields are int32; the kernel prints uids unsigned, and user namespaces can map past 2^31 - 1.
    const uid = kill.uid !== undefined && kill.uid <= INT32_MAX ? kill.uid : undefined;
    if (kill.uid !== undefined && uid === undefined) custom.uid = String(kill.uid);
    const metadata: EventMetadata = { node_name: this.#nodeName, pid: kill.pid, command: kill.command, priority: priorityOf(record.level) };
    if (uid !== undefined) metadata.uid = uid;
    if (owner.podUid) metadata.pod_uid = owner.podUid;
    if (owner.containerId) metadata.container_id = owner.containerId;
    const hints = { ...(owner.podUid ? { pod_uid: owner.podUid } : {}), ...(owner.containerId ? { container_id: owner.containerId } : {}) };
    return {
      type: "container.oom",
      severity: "error",
      event_data: {
        // A process outside any container (a host daemon) has an empty container_id.
        container: { container_id: owner.containerId ?? "", ...(owner.runtime ? { runtime: owner.runtime } : {}), state: "oom_killed", action: "oom_kill", pid: kill.pid },
        kernel: { event_type: "oom_kill", pid: kill.pid, command: kill.command, ...(uid !== undefined ? { uid } : {}) },
        custom,
      },
      metadata,
      ...(Object.keys(hints).length > 0 ? { correlation_hints: hints } : {}),
    };
  }

  #problemEvent(match: RuleMatch<KmsgRecord>): EventInput {
    const { rule } = match;
    const level = Math.min(...match.lines.map((r) => r.level));
    const custom: Record<string, string> = { reason: rule.reason, rule_type: rule.type, monitor: match.source, message: match.message, syslog_level: String(level) };
    if (rule.condition) {
      custom.condition = rule.condition;
      custom.condition_status = "True";
    }
    return {
      type: "kernel.problem",
      // NPD reports temporary problems as warnings; a permanent one sets a node condition.
      severity: rule.type === "permanent" ? "error" : "warning",
      event_data: { custom },
      metadata: { node_name: this.#nodeName, priority: priorityOf(level) },
    };
  }

  /** Polls /proc/vmstat oom_kill: every kill the kernel counted, even those whose log lines were lost or rate-limited. */
  #vmstat(ctx: CollectorContext, health: SourceHealth): Promise<void> {
    const path = under(this.config.proc_root, "vmstat");
    let last: number | undefined;
    if (!ctx.once) ctx.sourceMode("vmstat", "poll", `the kernel tells no one when /proc/vmstat changes: read every ${this.config.vmstat_interval}`);
    return poll(health.contextFor("vmstat"), this.config.vmstat_interval.ms, async () => {
      const text = readTextSync(path);
      let total: number | undefined;
      try {
        total = parseKeyed(text).get("oom_kill");
      } catch (err) {
        ctx.parseError("vmstat", `${path}: ${message(err)}`);
        return;
      }
      if (total === undefined) throw new Error(`${path} has no oom_kill counter (it needs Linux 4.13 or later)`);
      const delta = last === undefined || total < last ? 0 : total - last;
      last = total;
      if (delta === 0) return;
      await emitAll(ctx, [
        {
          type: "kernel.oom_kill",
          severity: "warning",
          event_data: { custom: { source: "vmstat", oom_kill_delta: String(delta), oom_kill_total: String(total) } },
          metadata: { node_name: this.#nodeName },
        },
      ]);
    });
  }
}

export const kernelFactory: CollectorFactory<KernelConfig> = {
  type: "kernel",
  events: kernelEvents,
  description: "kernel log (/dev/kmsg): OOM kills with their pod, node-problem-detector rules; /proc/vmstat oom_kill",
  configSchema: kernelConfigSchema,
  // Kernel problems are rare by nature: silence is the normal state.
  quietPeriodMs: () => undefined,
  sources: (c) => [
    readableFile(c.kmsg_path),
    readableFile(under(c.proc_root, "uptime")),
    readableFile(under(c.proc_root, "vmstat")),
    ...c.rule_files.map(readableFile),
  ],
  create: (config) => new KernelCollector(config),
};
