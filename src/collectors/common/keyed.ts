// Parsers for the simplest /proc and cgroup file shapes, shared by collectors.

/**
 * A flat keyed file: `key value` lines (cpu.stat, memory.events,
 * memory.oom_control, /proc/vmstat); each line is `[\w.]+ \d+`, empty lines
 * are skipped. A scan of the text, not a split and a regular expression per
 * line: the memory collector parses hundreds of these a poll, and every
 * array and match left behind is work for the GC.
 */
export function parseKeyed(text: string): Map<string, number> {
  const values = new Map<string, number>();
  const end = text.length;
  for (let start = 0; start < end; ) {
    let newline = text.indexOf("\n", start);
    if (newline < 0) newline = end;
    if (newline > start) {
      // Keys may hold dots: cpu.stat has `core_sched.force_idle_usec` on kernels built with CONFIG_SCHED_CORE.
      let space = start;
      while (space < newline && isKeyChar(text.charCodeAt(space))) space++;
      if (space === start || text.charCodeAt(space) !== SPACE || !isDigits(text, space + 1, newline)) {
        throw new Error(`not a "key value" line: ${quote(text.slice(start, newline))}`);
      }
      values.set(text.slice(start, space), Number(text.slice(space + 1, newline)));
    }
    start = newline + 1;
  }
  if (values.size === 0) throw new Error("empty");
  return values;
}

const SPACE = 32;

/** [A-Za-z0-9_.] */
function isKeyChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 46;
}

/** text[from, to) is one or more ASCII digits. */
export function isDigits(text: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

/** A line of input, shortened and quoted for an error message. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
