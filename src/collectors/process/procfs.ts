// Parsers for the per-process files of procfs. Each returns undefined and
// reports why through `fail` when its input is empty, truncated or garbage.
import { ownerOf } from "../common/kubepods.ts";

export type OnError = (detail: string) => void;

export interface PidStat {
  pid: number;
  /** field 2, without its parentheses: at most 15 bytes, but any of them, spaces and ')' included */
  comm: string;
  ppid: number;
  /** field 9; PF_KTHREAD marks kernel threads */
  flags: number;
  /** field 22: clock ticks after boot; with the pid it names one process, as pids are reused */
  startTicks: number;
}

/** A number past 2^53 would lose digits: no real pid, flags or start time is that large. */
const isCount = (x: string) => /^\d+$/.test(x) && Number.isSafeInteger(Number(x));
const PF_KTHREAD = 0x00200000;

/**
 * Every procfs text file ends with a newline: without one the read was cut
 * short, and the last number may be missing digits.
 */
function complete(text: string, fail: OnError): boolean {
  if (text.endsWith("\n")) return true;
  fail(text === "" ? "empty" : "truncated: no newline at the end");
  return false;
}

export function isKernelThread(stat: PidStat): boolean {
  // Bitwise operators would truncate flags to 32 signed bits; PF_KTHREAD is below 2^31 anyway.
  return Math.floor(stat.flags / PF_KTHREAD) % 2 === 1;
}

/** The fields of stat read after the comm, as indexes after it: state (3), ppid (4), flags (9), start time (22). */
const STAT_FIELDS = [0, 1, 6, 19];

/** The whitespace-separated fields of `text` from `start` at the (ascending) `indexes`; "" for those past its end. */
function fieldsAfter(text: string, start: number, indexes: readonly number[]): string[] {
  const out: string[] = [];
  let field = 0;
  let i = start;
  const end = text.length;
  const blank = (c: number) => c === 32 || c === 10 || c === 9 || c === 13 || c === 11 || c === 12;
  for (const want of indexes) {
    for (;;) {
      while (i < end && blank(text.charCodeAt(i))) i++;
      const from = i;
      while (i < end && !blank(text.charCodeAt(i))) i++;
      if (from === i) return out; // no more fields
      if (field++ === want) {
        out.push(text.slice(from, i));
        break;
      }
    }
  }
  return out;
}

/**
 * /proc/<pid>/stat: `pid (comm) state ppid ...`. comm may hold spaces and
 * parentheses ("(sd-pam)", "a) b (c"), so the fields after it are counted from
 * the last ')' in the line, never by splitting the whole line.
 */
export function parseStat(text: string, fail: OnError): PidStat | undefined {
  if (!complete(text, fail)) return undefined;
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) {
    fail("no (comm) field");
    return undefined;
  }
  const pid = text.slice(0, open).trim();
  if (!isCount(pid)) {
    fail(`pid is not a number: ${JSON.stringify(pid.slice(0, 32))}`);
    return undefined;
  }
  // After the comm come fields 3, 4, ...: field n is rest[n - 3]. The state (3) is only checked, as a sign of the layout.
  // Read by scanning, not split: a poll parses every process's stat, and only these four of its 50 fields matter.
  const [state = "", ppid = "", flags = "", startTicks = ""] = fieldsAfter(text, close + 1, STAT_FIELDS);
  if (!/^[A-Za-z]$/.test(state) || !isCount(ppid) || !isCount(flags) || !isCount(startTicks)) {
    fail(`truncated or malformed after the comm (${text.slice(close + 1).trim().split(/\s+/).length} fields)`);
    return undefined;
  }
  return {
    pid: Number(pid),
    comm: text.slice(open + 1, close),
    ppid: Number(ppid),
    flags: Number(flags),
    startTicks: Number(startTicks),
  };
}

/** /proc/<pid>/cmdline: NUL-separated argv; empty for kernel threads and zombies. */
export function parseCmdline(text: string): string[] {
  const args = text.split("\0");
  // The file ends with a NUL, which leaves one empty string at the end.
  if (args.at(-1) === "") args.pop();
  return args;
}

export interface CgroupInfo {
  /** the path of the line that best identifies the process: a container's if there is one */
  path: string;
  containerId?: string;
  podUid?: string;
}

/** `hierarchy-id:controllers:path`, one line per v1 hierarchy, `0::path` for v2. */
const CGROUP_LINE = /^(\d+):([^:]*):(\/.*)$/;

/**
 * /proc/<pid>/cgroup. Picks the line whose path names a container (pattern
 * match with a container id), else one matching the pattern, else the v2
 * line, else the first; pod uid and container id come from that path.
 */
export function parseCgroup(text: string, pattern: RegExp, fail: OnError): CgroupInfo | undefined {
  if (!complete(text, fail)) return undefined;
  const lines: Array<{ hierarchy: string; path: string }> = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = CGROUP_LINE.exec(line);
    if (!m) {
      fail(`not a cgroup line: ${JSON.stringify(line.slice(0, 64))}`);
      return undefined;
    }
    lines.push({ hierarchy: m[1]!, path: m[3]! });
  }
  const chosen =
    lines.find((l) => pattern.test(l.path) && ownerOf(l.path).containerId) ??
    lines.find((l) => pattern.test(l.path)) ??
    lines.find((l) => l.hierarchy === "0") ??
    lines[0];
  if (!chosen) {
    fail("empty");
    return undefined;
  }
  const info: CgroupInfo = { path: chosen.path };
  const owner = ownerOf(chosen.path);
  if (owner.containerId) info.containerId = owner.containerId;
  if (owner.podUid) info.podUid = owner.podUid;
  return info;
}

/** The `btime` line of /proc/stat: boot time in seconds since the epoch. */
export function parseBootTime(text: string, fail: OnError): number | undefined {
  // The newline proves the number is whole.
  const m = /^btime[ \t]+(\d+)[ \t]*\n/m.exec(text);
  if (!m || !isCount(m[1]!)) {
    fail("no btime line");
    return undefined;
  }
  return Number(m[1]);
}
