// The kernel log without eBPF: /dev/kmsg records become container.oom events
// (OOM kills, with the pod and container from the memory cgroup) and
// kernel.problem events (node-problem-detector rules), and /proc/vmstat's
// oom_kill counter is watched for kills the log did not show.
import type { EventInput, EventMetadata, Priority } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { sleep } from "../../wait.ts";
import { readText, readTextSync, under } from "../common/paths.ts";
import { readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { ownerOf } from "../common/kubepods.ts";
import { parseKeyed } from "../common/keyed.ts";
import { SourceHealth } from "../common/source-health.ts";
import { LineSplitter, openKmsg, parseKmsgLine, type KmsgRecord, type KmsgSource } from "./kmsg.ts";
import { OomTracker, type OomKill } from "./oom.ts";
import kernelMonitor from "./rules/kernel-monitor.json";
import readonlyMonitor from "./rules/readonly-monitor.json";
import { compileRuleFile, loadRuleFile, RuleMatcher, type RuleFile, type RuleMatch } from "./rules.ts";
import { kernelConfigSchema, type KernelConfig } from "./schema.ts";

const INT32_MAX = 2 ** 31 - 1;

/** Reads between two yields to the event loop when the log has a lot to say (a replay, a burst). */
const READ_BATCH = 256;

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
    await Promise.all([this.#tail(ctx, health, matchers), this.#vmstat(ctx, health)]);
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

  /** Follows the log: reopens it after errors, skips history only on the first open (unless `replay`). */
  async #tail(ctx: CollectorContext, health: SourceHealth, matchers: Array<RuleMatcher<KmsgRecord>>): Promise<void> {
    const { kmsg_path: path, retry_interval, read_interval } = this.config;
    let opened = false;
    /** the device's last sequence number read: after a reopen, the records up to it are not read twice */
    let lastSeq = -1;
    for (;;) {
      let source: KmsgSource;
      try {
        source = this.open(path, !this.config.replay && !opened);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const hint = code === "EACCES" || code === "EPERM" ? " (reading the kernel log needs root or CAP_SYSLOG)" : "";
        health.failed("kmsg", `cannot open ${path}: ${message(err)}${hint}`);
        if (ctx.once || !(await sleep(retry_interval.ms, ctx.signal))) return;
        continue;
      }
      opened = true;
      health.ok("kmsg");
      try {
        const bootMicros = source.device ? await this.#bootMicros() : undefined;
        const lines = new LineSplitter();
        for (;;) {
          let idle = false;
          const records: KmsgRecord[] = [];
          for (let i = 0; i < READ_BATCH && !idle; i++) {
            const read = source.read();
            if (read.kind === "idle") idle = true;
            else if (read.kind === "overrun") ctx.parseError("kmsg.overrun", `${path}: records were overwritten before they were read`);
            else for (const line of lines.push(read.text)) this.#parse(ctx, line, records);
          }
          if (idle && ctx.once) for (const line of lines.flush()) this.#parse(ctx, line, records);
          const fresh = source.device ? records.filter((r) => r.seq > lastSeq) : records;
          if (source.device && fresh.length > 0) lastSeq = fresh.at(-1)!.seq;
          await emitAll(ctx, this.#events(matchers, fresh, bootMicros));
          if (!idle) {
            // More is waiting (a replay, a burst): let the event loop breathe, and stop if asked.
            await new Promise((resolve) => setImmediate(resolve));
            if (ctx.signal.aborted) return;
            continue;
          }
          if (ctx.once || !(await sleep(read_interval.ms, ctx.signal))) return;
        }
      } catch (err) {
        health.failed("kmsg", `reading ${path}: ${message(err)}`);
        if (ctx.once || !(await sleep(retry_interval.ms, ctx.signal))) return;
      } finally {
        source.close();
      }
    }
  }

  #parse(ctx: CollectorContext, line: string, records: KmsgRecord[]): void {
    // Continuation lines carry KEY=value context (SUBSYSTEM=, DEVICE=), not message text.
    if (line === "" || line.startsWith(" ")) return;
    try {
      records.push(parseKmsgLine(line));
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

  #events(matchers: Array<RuleMatcher<KmsgRecord>>, records: KmsgRecord[], bootMicros: number | undefined): EventInput[] {
    const events: EventInput[] = [];
    // Records of a file have no time of this boot: they are dated when emitted.
    const time = (r: KmsgRecord) => (bootMicros === undefined ? {} : { timestamp: rfc3339Micros(bootMicros + r.usec) });
    for (const record of records) {
      // Trimmed as node-problem-detector trims: its patterns expect no trailing blanks.
      const text = record.message.trim();
      const kill = this.#oom.push(text);
      if (kill) events.push({ ...this.#oomEvent(kill, record), ...time(record) });
      for (const matcher of matchers) {
        for (const match of matcher.push(record, text)) events.push({ ...this.#problemEvent(match), ...time(match.lines[0]!) });
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
