// The text table the benchmark runners print: one row per measure, the
// agent's figure, the baseline's, their ratio or difference, the target and
// whether it was met.
import type { Row } from "../scenarios.ts";

export function formatRow(r: Row, missed = "MISS"): string {
  const base = r.baseline === undefined ? "".padEnd(28) : `baseline ${fmt(r.baseline)}`.padEnd(28);
  const cmp = r.diff !== undefined ? `diff ${r.diff >= 0 ? "+" : ""}${r.diff.toFixed(3)}` : r.ratio !== undefined ? `ratio ${r.ratio.toFixed(2)}` : "";
  const target = r.target ? `target ${r.target} ${r.pass === undefined ? "" : r.pass ? "PASS" : missed}` : "";
  return `${r.measure.padEnd(58)} agent ${fmt(r.agent)} ${r.unit.padEnd(9)}${base}${cmp.padEnd(14)}${target}`;
}

export function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return "-".padStart(10);
  return (Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(3)).padStart(10);
}
