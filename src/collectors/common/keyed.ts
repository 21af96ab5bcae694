// Parsers for the simplest /proc and cgroup file shapes, shared by collectors.

/** A flat keyed file: `key value` lines (cpu.stat, memory.events, memory.oom_control, /proc/vmstat). */
export function parseKeyed(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of nonEmptyLines(text)) {
    // Keys may hold dots: cpu.stat has `core_sched.force_idle_usec` on kernels built with CONFIG_SCHED_CORE.
    const m = /^([\w.]+) (\d+)$/.exec(line);
    if (!m) throw new Error(`not a "key value" line: ${quote(line)}`);
    values.set(m[1]!, Number(m[2]));
  }
  if (values.size === 0) throw new Error("empty");
  return values;
}

export function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

/** A line of input, shortened and quoted for an error message. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
