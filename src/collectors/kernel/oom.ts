// OOM kills in the kernel log. An OOM report is many records; the ones that
// matter here:
//   since 4.19/5.0: "oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/kubepods/...,task_memcg=/kubepods/...,task=python3,pid=6854,uid=0"
//   before 5.0:     "Task in /kubepods/... killed as a result of limit of /kubepods/..."
//                   "Memory cgroup out of memory: Kill process 1012 (heapster) score 1035 or sacrifice child"
//   always:         "[Memory cgroup out of memory: |Out of memory: ]Killed process 1012 (heapster) total-vm:...kB, anon-rss:...kB, ..."
// The "Killed process" line names the process really killed (the chosen
// one, or one of its children it was "sacrificed" for) and comes last, so it
// makes the event; the lines before it supply the memory cgroup. The header
// lines are rate-limited by the kernel, so a kill may come without them.

export interface OomKill {
  pid: number;
  command: string;
  uid?: number;
  /** the killed task's memory cgroup, e.g. /kubepods/burstable/pod<uid>/<container id> */
  memcg?: string;
  /** the memory cgroup whose limit was hit; undefined for a system-wide OOM */
  oomMemcg?: string;
  /** the kernel's constraint, since 4.19: CONSTRAINT_MEMCG, CONSTRAINT_NONE, CONSTRAINT_CPUSET, CONSTRAINT_MEMORY_POLICY */
  constraint?: string;
  /** whether a cgroup limit (memcg) or the whole system (global) ran out */
  scope?: "memcg" | "global";
  totalVmKb: number;
  anonRssKb: number;
  fileRssKb: number;
  shmemRssKb?: number;
}

const TASK_IN = /^Task in (.+) killed as a result of limit of (.+)$/;
const CHOSEN = /^(Memory cgroup out of memory|Out of memory): Kill process \d+ /;
const KILLED = /^(?:(Memory cgroup out of memory|Out of memory(?: \(oom_kill_allocating_task\))?): )?Killed process (\d+) \((.*)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB(?:, shmem-rss:(\d+)kB)?(?:, UID:(\d+))?/;

/** The first characters of the lines read: "oom-kill:", "Task in", "Memory cgroup out of memory:", "Out of memory", "Killed process". */
const LEADS = new Set(["o", "T", "M", "O", "K"].map((c) => c.charCodeAt(0)));

/** oom-kill summaries waiting for their "Killed process" line: a few at most, unless that line was lost. */
const MAX_PENDING = 16;

function scopeOf(prefix: string | undefined): "memcg" | "global" | undefined {
  if (prefix === undefined) return undefined;
  return prefix.startsWith("Memory cgroup") ? "memcg" : "global";
}

interface Summary {
  constraint: string;
  oomMemcg?: string;
  memcg: string;
  uid: number;
}

const SUMMARY_START = /^oom-kill:constraint=(\w+),/;
const SUMMARY_END = /^,pid=(\d+),uid=(\d+)$/;

/**
 * An oom-kill summary and the pid it is about, as the regular expression
 * /^oom-kill:constraint=(\w+),.*?(?:,oom_memcg=(.*?)|,global_oom),task_memcg=(.*),task=(.*),pid=(\d+),uid=(\d+)$/
 * reads it, in time linear in the text: that expression backtracks through
 * its four wildcards, and a forged record of a few kilobytes took seconds.
 * Wildcards that can span the fields' names are resolved as the expression
 * would: the first oom_memcg or global_oom, the last ",task=" and ",pid=".
 */
export function parseSummary(message: string): { pid: number; summary: Summary } | undefined {
  const start = SUMMARY_START.exec(message);
  if (!start) return undefined;
  const pidAt = message.lastIndexOf(",pid=");
  const end = pidAt < 0 ? null : SUMMARY_END.exec(message.slice(pidAt));
  if (!end) return undefined;
  const taskAt = message.lastIndexOf(",task=", pidAt - ",task=".length);
  if (taskAt < 0) return undefined;
  const after = start[0].length;
  // One of the two ways to name the cgroup whose limit was hit, the one written first.
  let memcgStart = -1;
  let oomMemcg: string | undefined;
  const oomAt = message.indexOf(",oom_memcg=", after);
  if (oomAt >= 0) {
    const taskMemcgAt = message.indexOf(",task_memcg=", oomAt + ",oom_memcg=".length);
    if (taskMemcgAt >= 0 && taskMemcgAt + ",task_memcg=".length <= taskAt) {
      memcgStart = taskMemcgAt + ",task_memcg=".length;
      oomMemcg = message.slice(oomAt + ",oom_memcg=".length, taskMemcgAt);
    }
  }
  const globalAt = message.indexOf(",global_oom,task_memcg=", after);
  if (globalAt >= 0 && globalAt + ",global_oom,task_memcg=".length <= taskAt && (memcgStart < 0 || globalAt < oomAt)) {
    memcgStart = globalAt + ",global_oom,task_memcg=".length;
    oomMemcg = undefined;
  }
  if (memcgStart < 0) return undefined;
  const summary: Summary = { constraint: start[1]!, memcg: message.slice(memcgStart, taskAt), uid: Number(end[2]) };
  if (oomMemcg !== undefined) summary.oomMemcg = oomMemcg;
  return { pid: Number(end[1]), summary };
}

/**
 * Whether a (trimmed) message is the record that completes an OOM kill, the
 * one on which OomTracker.push returns it: `Killed process N (cmd) ...`,
 * the last of a report. The kmsg reader worker posts what it read at once
 * when it reads one.
 */
export function completesKill(message: string): boolean {
  return LEADS.has(message.charCodeAt(0)) && KILLED.test(message);
}

/** Follows OOM reports through the kernel log; `push` returns a kill when one is complete. */
export class OomTracker {
  readonly #summaries = new Map<number, Summary>();
  /** what the pre-5.0 lines said about the OOM being reported */
  #taskIn: { memcg: string; oomMemcg: string } | undefined;
  #scope: "memcg" | "global" | undefined;

  push(message: string): OomKill | undefined {
    if (message.includes("invoked oom-killer")) {
      // A new report: what an earlier one left behind (its kill line lost) no longer applies.
      this.#taskIn = undefined;
      this.#scope = undefined;
      return undefined;
    }
    // Every line read below starts with one of these letters; the rest of a report (its stack,
    // registers, memory stats and task dump: ~75 of ~80 lines) and other messages cost one look,
    // not four regular expressions, on the way to the kill line.
    if (!LEADS.has(message.charCodeAt(0))) return undefined;
    const parsed = parseSummary(message);
    if (parsed) {
      this.#summaries.set(parsed.pid, parsed.summary);
      if (this.#summaries.size > MAX_PENDING) this.#summaries.delete(this.#summaries.keys().next().value!);
      return undefined;
    }
    let m = TASK_IN.exec(message);
    if (m) {
      this.#taskIn = { memcg: m[1]!, oomMemcg: m[2]! };
      return undefined;
    }
    if ((m = CHOSEN.exec(message))) {
      this.#scope = scopeOf(m[1]);
      return undefined;
    }
    m = KILLED.exec(message);
    if (!m) return undefined;
    const pid = Number(m[2]);
    const kill: OomKill = { pid, command: m[3]!, totalVmKb: Number(m[4]), anonRssKb: Number(m[5]), fileRssKb: Number(m[6]) };
    if (m[7] !== undefined) kill.shmemRssKb = Number(m[7]);
    if (m[8] !== undefined) kill.uid = Number(m[8]);
    const summary = this.#summaries.get(pid);
    this.#summaries.delete(pid);
    if (summary) {
      kill.constraint = summary.constraint;
      kill.memcg = summary.memcg;
      kill.uid = summary.uid;
      if (summary.oomMemcg !== undefined) kill.oomMemcg = summary.oomMemcg;
    } else if (this.#taskIn) {
      kill.memcg = this.#taskIn.memcg;
      kill.oomMemcg = this.#taskIn.oomMemcg;
    }
    const scope = scopeOf(m[1]) ?? this.#scope ?? (summary ? (summary.oomMemcg !== undefined ? "memcg" : "global") : this.#taskIn ? "memcg" : undefined);
    if (scope) kill.scope = scope;
    this.#taskIn = undefined;
    this.#scope = undefined;
    return kill;
  }
}
