// npm run bench: every figure of the agent against a baseline measured in
// the same run (the machines are shared and noisy; ratios hold, absolute
// figures do not). Starts its own nats-server on a free loopback port,
// compiles the agent, runs each scenario RUNS times (median), prints a
// table of ratios, writes bench/results/bench.json and bench/results/bench.svg.
//   BENCH_RUNS=5 (default)  BENCH_EVENTS=300000 (per throughput run)
//   BENCH_ONLY=throughput,latency,internal,memory,startup,scaling,batching,ingest,routing
// With BENCH_ONLY the results files keep the rows of the scenarios not run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers } from "../test/helpers/nats-server.ts";
import { killAllAgents } from "./lib/procs.ts";
import { buildAgent } from "./lib/build.ts";
import { SCENARIOS, type Context, type Row } from "./scenarios.ts";
import { renderSvg, type NodeRun } from "./lib/chart.ts";
import { formatRow } from "./lib/table.ts";

const runs = Number(process.env.BENCH_RUNS ?? 5);
const events = Number(process.env.BENCH_EVENTS ?? 300_000);
const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
const unknown = only?.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown?.length) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);

const git = (...args: string[]) => Bun.spawnSync(["git", ...args], { cwd: join(import.meta.dir, "..") }).stdout.toString().trim();
/** the commit measured; "src dirty" when src/ had uncommitted changes when the agent was built */
const commit = `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain", "--", "src") ? " (src dirty)" : ""}`;
const selected = SCENARIOS.filter((s) => !only || only.includes(s.name));
const work = mkdtempSync(join(tmpdir(), "tapio-bench-"));
const binary = join(work, "tapio-collectors");
const started = performance.now();
buildAgent(binary);

const server = await startNatsServer({ jetstream: true, storeDir: join(work, "js") });
const rows: Row[] = [];
const durations: Record<string, number> = {};
try {
  const ctx: Context = { url: server.url, server, binary, work, runs, events };
  // Every binary from the same src/, before anything is measured (src/ may change during a run).
  for (const scenario of selected) await scenario.prepare?.(ctx);
  for (const scenario of selected) {
    process.stderr.write(`bench: ${scenario.name} ...\n`);
    const t = performance.now();
    const found = await scenario.run(ctx);
    durations[scenario.name] = Math.round((performance.now() - t) / 1000);
    rows.push(...found);
    for (const r of found) process.stderr.write(`  ${formatRow(r)}\n`);
  }
} finally {
  await killAllAgents();
  await server.kill("SIGCONT").catch(() => {});
  await stopAllNatsServers();
  rmSync(work, { recursive: true, force: true });
}

const seconds = Math.round((performance.now() - started) / 1000);
console.log(`\ntapio-collectors benchmarks at ${commit}, median of ${runs} run(s), ${new Date().toISOString()}, ${seconds} s, Bun ${Bun.version}`);
for (const r of rows) console.log(formatRow(r));

// A partial run (BENCH_ONLY) replaces its scenarios' rows and keeps the others.
const file = join(import.meta.dir, "results", "bench.json");
let kept: Row[] = [];
if (only && existsSync(file)) {
  const previous = JSON.parse(readFileSync(file, "utf8")) as { rows: Row[] };
  kept = previous.rows.filter((r) => r.group !== undefined && !only.includes(r.group.split("-")[0]!));
}
const ran = new Set(rows.map((r) => r.group));
const all = [...kept.filter((r) => !ran.has(r.group)), ...rows];
const order = SCENARIOS.map((s) => s.name);
const rank = (r: Row) => order.indexOf(r.group.split("-")[0]!);
all.sort((a, b) => rank(a) - rank(b));
const stamp = {
  date: new Date().toISOString(),
  commit,
  runs,
  events_per_throughput_run: events,
  bun: Bun.version,
  machine: { cpus: navigator.hardwareConcurrency, note: "nats-server, subscriber and the publisher under test share these CPUs" },
  scenario_seconds: durations,
  partial: only ?? undefined,
  rows: all,
};
await Bun.write(file, `${JSON.stringify(stamp, null, 2)}\n`);
// The chart also shows the last `npm run bench:node` (bench/results/node.json).
const nodeFile = join(import.meta.dir, "results", "node.json");
const node = existsSync(nodeFile) ? (JSON.parse(readFileSync(nodeFile, "utf8")) as NodeRun) : undefined;
await Bun.write(join(import.meta.dir, "results", "bench.svg"), renderSvg(all, { runs, date: stamp.date, commit }, node));
