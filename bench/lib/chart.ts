// The SVG chart of a benchmark run (bench/results/bench.svg): agent against
// baseline for throughput, CPU and end-to-end latency (bars scaled per row),
// the targets without a baseline, and the scaling sweeps as lines.
import type { Row } from "../scenarios.ts";

const WIDTH = 820;
const LABEL_W = 330;
const BAR_W = WIDTH - LABEL_W - 150;
const AGENT = "#2b7bb9";
const BASE = "#aaaaaa";
const LINES: Record<string, string> = { jetstream: "#2b7bb9", core: "#e07b39" };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return "0";
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(3);
}

function verdict(r: Row): string {
  if (!r.target) return "";
  return `, target ${r.target}${r.pass === undefined ? "" : r.pass ? " ✓" : " ✗ MISS"}`;
}

/** The rows of `npm run bench:node` (bench/results/node.json) and the run they come from. */
export interface NodeRun {
  rows: readonly Row[];
  runs: number;
  date: string;
  commit: string;
}

export function renderSvg(rows: readonly Row[], meta: { runs: number; date: string; commit?: string }, node?: NodeRun): string {
  const parts: string[] = [];
  let y = 24;
  const heading = (text: string) => {
    y += 34;
    parts.push(`<text x="10" y="${y}" font-size="14" font-weight="bold">${esc(text)}</text>`);
    y += 8;
  };

  const paired = rows.filter((r) => !r.group.endsWith("-diagnostic") && r.baseline !== undefined && Number.isFinite(r.agent) && Number.isFinite(r.baseline!));
  /** Two bars, agent and baseline, scaled to the larger; `split`: the target on a line of its own (long units and targets). */
  const bars = (r: Row, split = false) => {
    const max = Math.max(r.agent, r.baseline!) || 1;
    const a = (Math.max(0, r.agent) / max) * BAR_W;
    const b = (Math.max(0, r.baseline!) / max) * BAR_W;
    const cmp = r.diff !== undefined ? `diff ${r.diff >= 0 ? "+" : ""}${r.diff.toFixed(3)} ${r.unit}` : `ratio ${r.ratio?.toFixed(2) ?? "-"}`;
    const colour = r.pass === false ? "#c0392b" : "#555";
    parts.push(`<text x="10" y="${y + 16}">${esc(r.measure)}</text>`);
    if (split) {
      parts.push(`<text x="10" y="${y + 32}" fill="${colour}">${esc(`${r.unit}; ${cmp}`)}</text>`);
      parts.push(`<text x="10" y="${y + 47}" fill="${colour}">${esc(verdict(r).replace(/^, /, ""))}</text>`);
    } else {
      parts.push(`<text x="10" y="${y + 32}" fill="${colour}">${esc(`${r.unit}; ${cmp}${verdict(r)}`)}</text>`);
    }
    parts.push(`<rect x="${LABEL_W}" y="${y + 4}" width="${a.toFixed(1)}" height="14" fill="${AGENT}"/>`);
    parts.push(`<text x="${LABEL_W + a + 6}" y="${y + 15}">agent ${fmt(r.agent)}</text>`);
    parts.push(`<rect x="${LABEL_W}" y="${y + 22}" width="${b.toFixed(1)}" height="14" fill="${BASE}"/>`);
    parts.push(`<text x="${LABEL_W + b + 6}" y="${y + 33}">baseline ${fmt(r.baseline!)}</text>`);
    y += split && r.target ? 58 : 46;
  };
  const pairedSection = (title: string, shown: Row[]) => {
    if (shown.length === 0) return;
    heading(title);
    for (const r of shown) bars(r);
  };
  pairedSection("Throughput and CPU: agent (blue) against bare nats.js (grey)", paired.filter((r) => r.group === "throughput"));
  pairedSection("End-to-end latency, emit to subscriber (lower is better)", paired.filter((r) => r.group === "latency"));

  // Diagnostic rows (variant builds) stay in bench.json and the table, not in the chart.
  const single = rows.filter((r) => r.baseline === undefined && r.group !== "scaling" && !r.group.endsWith("-diagnostic"));
  const figure = (r: Row) => {
    const colour = r.pass === false ? "#c0392b" : r.pass ? "#1e8449" : "#333";
    parts.push(`<text x="10" y="${y + 16}">${esc(r.measure)}</text>`);
    parts.push(`<text x="${LABEL_W}" y="${y + 16}" fill="${colour}">${esc(`${fmt(r.agent)} ${r.unit}${verdict(r)}`)}</text>`);
    y += 22;
  };
  if (single.length > 0) {
    heading("Without a baseline");
    for (const r of single) figure(r);
  }

  const scaling = rows.filter((r) => r.group === "scaling" && r.detail);
  for (const kind of ["workers", "collectors"] as const) {
    const pts = scaling.filter((r) => r.detail!.kind === kind);
    if (pts.length === 0) continue;
    heading(kind === "workers" ? "Throughput against orchestrator.workers (1 collector)" : "Throughput against the number of synthetic collectors (4 workers, same total)");
    const h = 150;
    const x0 = 80;
    const w = WIDTH - x0 - 150;
    const ns = [...new Set(pts.map((r) => r.detail!.n as number))].sort((a, b) => a - b);
    const max = Math.max(...pts.map((r) => r.agent)) * 1.1 || 1;
    const px = (n: number) => x0 + (ns.length === 1 ? 0 : (ns.indexOf(n) / (ns.length - 1)) * w);
    const py = (v: number) => y + 10 + h - (v / max) * h;
    parts.push(`<line x1="${x0}" y1="${y + 10 + h}" x2="${x0 + w}" y2="${y + 10 + h}" stroke="#999"/>`, `<line x1="${x0}" y1="${y + 10}" x2="${x0}" y2="${y + 10 + h}" stroke="#999"/>`);
    for (const frac of [0, 0.5, 1]) {
      parts.push(`<text x="${x0 - 6}" y="${py(max * frac) + 4}" text-anchor="end" fill="#555">${fmt(max * frac)}</text>`);
    }
    for (const n of ns) parts.push(`<text x="${px(n)}" y="${y + 10 + h + 16}" text-anchor="middle" fill="#555">${n}</text>`);
    for (const mode of ["jetstream", "core"]) {
      const line = pts.filter((r) => r.detail!.mode === mode).sort((a, b) => (a.detail!.n as number) - (b.detail!.n as number));
      if (line.length === 0) continue;
      const colour = LINES[mode]!;
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${line.map((r) => `${px(r.detail!.n as number).toFixed(1)},${py(r.agent).toFixed(1)}`).join(" ")}"/>`);
      for (const r of line) parts.push(`<circle cx="${px(r.detail!.n as number).toFixed(1)}" cy="${py(r.agent).toFixed(1)}" r="3" fill="${colour}"/>`);
      const last = line.at(-1)!;
      parts.push(`<text x="${px(last.detail!.n as number) + 8}" y="${py(last.agent) + 4}" fill="${colour}">${mode} (events/s)</text>`);
    }
    y += h + 34;
  }

  y += 16;
  parts.push(`<text x="10" y="${y}" fill="#555">${esc(`median of ${meta.runs} run(s), ${meta.date.slice(0, 10)}${meta.commit ? `, commit ${meta.commit}` : ""}; 1 KB JSON events; nats-server, subscriber and publisher share one 2-core machine`)}</text>`);

  if (node && node.rows.length > 0) {
    heading("On a simulated busy node (npm run bench:node): the agent (blue) against bare Bun or a bare read loop (grey)");
    for (const r of node.rows) {
      if (r.baseline !== undefined && Number.isFinite(r.agent) && Number.isFinite(r.baseline)) bars(r, true);
      else figure(r);
    }
    y += 16;
    parts.push(`<text x="10" y="${y}" fill="#555">${esc(`median of ${node.runs} run(s), ${node.date.slice(0, 10)}, commit ${node.commit}; CPU s/h: CPU seconds per hour (36 = 1% of a core); per poll: above the idle agent / bare Bun`)}</text>`);
  }
  const height = y + 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="16" font-weight="bold">tapio-collectors benchmarks (bench/run.ts)</text>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
