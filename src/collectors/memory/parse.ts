// Parsers for the text files this collector reads. Each takes the whole file
// and throws an Error saying what is wrong on truncated, empty or garbage
// input; the collector counts that as a parse error and goes on.
import { isDigits, nonEmptyLines, quote } from "../common/keyed.ts";

/** One line of a PSI file: shares of time (%) some or all tasks stalled, and the total stall time in µs. */
export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}

/** /proc/pressure/{memory,cpu,io}: `full` is missing for cpu on kernels before 5.13. */
export interface Psi {
  some: PsiLine;
  full?: PsiLine;
}

const PSI_LINE = /^(some|full) avg10=(\d+(?:\.\d+)?) avg60=(\d+(?:\.\d+)?) avg300=(\d+(?:\.\d+)?) total=(\d+)$/;

export function parsePsi(text: string): Psi {
  const lines: Partial<Psi> = {};
  for (const line of nonEmptyLines(text)) {
    const m = PSI_LINE.exec(line);
    if (!m) throw new Error(`not a PSI line: ${quote(line)}`);
    const kind = m[1] as "some" | "full";
    if (lines[kind]) throw new Error(`two "${kind}" lines`);
    lines[kind] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), total: Number(m[5]) };
  }
  if (!lines.some) throw new Error('no "some" line');
  return lines as Psi;
}

/** /proc/meminfo in bytes (values in kB are multiplied out; counts such as HugePages_Total are kept). */
export function parseMeminfo(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of nonEmptyLines(text)) {
    const m = /^([\w()]+):\s+(\d+)( kB)?$/.exec(line);
    if (!m) throw new Error(`not a meminfo line: ${quote(line)}`);
    values.set(m[1]!, Number(m[2]) * (m[3] ? 1024 : 1));
  }
  if (!values.has("MemTotal")) throw new Error("no MemTotal");
  return values;
}

/** A single-number file (memory.usage_in_bytes, memory.current); `max` (v2 memory.max) reads as Infinity. */
export function parseValue(text: string): number {
  // The usual shape, "<digits>\n", without the trimmed copy and the regular expression.
  const last = text.length - 1;
  if (text.charCodeAt(last) === 10 && isDigits(text, 0, last)) return Number(text.slice(0, last));
  const value = text.trim();
  if (value === "max") return Infinity;
  if (!/^\d+$/.test(value)) throw new Error(`not a number: ${quote(value)}`);
  return Number(value);
}

