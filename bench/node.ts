// npm run bench:node: what the agent costs on a simulated busy Kubernetes
// node (issue 13), against bare Bun and a bare read loop measured in the
// same run. Each variant runs on a fresh fake node (bench/node/fake-node.ts)
// for a warm-up and a measured window, run after run, alternating the order;
// figures are medians. Prints the targets with PASS/FAIL and writes
// bench/results/node.json (and redraws bench/results/bench.svg).
//
//   bun bench/node.ts [--seconds 120] [--warmup 10] [--runs 3]
//                     [--poll-seconds 30] [--poll-warmup 5] [--only main,polls] [--source]
//
// main:  bare Bun idle; the agent with no collectors; with synthetic at 10/s;
//        the read loop of every /proc poll at the agent's default intervals;
//        the agent with every node collector at its defaults (events counted).
// polls: one collector per run with its intervals at 1 s, CPU per round above
//        the idle agent; the read loop of each /proc collector, above bare Bun.
// --source runs the agent as `bun src/main.ts` instead of the compiled binary.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir, loadavg, cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { startNatsServer, stopAllNatsServers } from "../test/helpers/nats-server.ts";
import { processConfigSchema } from "../src/collectors/process/schema.ts";
import { memoryConfigSchema } from "../src/collectors/memory/schema.ts";
import { networkConfigSchema } from "../src/collectors/network/schema.ts";
import { kernelConfigSchema } from "../src/collectors/kernel/schema.ts";
import { buildAgent, buildVariant } from "./lib/build.ts";
import { killAllAgents, REPO } from "./lib/procs.ts";
import { formatRow } from "./lib/table.ts";
import { renderSvg } from "./lib/chart.ts";
import type { Row } from "./scenarios.ts";
import { NODE_COLLECTORS, PROC_COLLECTORS, type NodeCollector } from "./node/agent.ts";
import { agentHasPollHistogram, measure, type RunContext, type Sample, type Variant } from "./node/measure.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "120" },
    warmup: { type: "string", default: "10" },
    runs: { type: "string", default: "3" },
    "poll-seconds": { type: "string", default: "30" },
    "poll-warmup": { type: "string", default: "5" },
    only: { type: "string", default: "main,polls" },
    source: { type: "boolean", default: false },
  },
  strict: true,
});
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const runs = Number(args.runs);
const pollSeconds = Number(args["poll-seconds"]);
const pollWarmup = Number(args["poll-warmup"]);
const only = new Set(args.only!.split(",").map((s) => s.trim()));
for (const o of only) if (o !== "main" && o !== "polls") throw new Error(`--only: unknown set "${o}"; known: main, polls`);

/** 0.5% of a core for an hour */
const NODE_CPU_TARGET = 18;
/** 0.1% of a core for an hour */
const SYNTHETIC_CPU_TARGET = 3.6;
const MiB = 1048576;

const git = (...a: string[]) => Bun.spawnSync(["git", ...a], { cwd: REPO }).stdout.toString().trim();
const commit = `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain", "--", "src") ? " (src dirty)" : ""}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const perHour = (s: Sample) => (s.cpu / s.seconds) * 3600;

// The read loop paces itself at the agent's defaults, read from the collectors' schemas.
const defaults = {
  process: v.parse(processConfigSchema, {}).interval.ms,
  memory: v.parse(memoryConfigSchema, {}).interval.ms,
  network: v.parse(networkConfigSchema, {}).interval.ms,
  kernel: v.parse(kernelConfigSchema, {}).read_interval.ms,
  vmstat: v.parse(kernelConfigSchema, {}).vmstat_interval.ms,
};

const MAIN: Variant[] = [
  { name: "idle", kind: "idle" },
  { name: "agent-none", kind: "agent", collectors: [] },
  { name: "agent-synthetic", kind: "agent", collectors: [], synthetic: 10 },
  { name: "read-loop", kind: "read-loop", loops: defaults },
  { name: "agent-node", kind: "agent", collectors: NODE_COLLECTORS, checkEvents: true },
];
const POLLS: Variant[] = [
  ...NODE_COLLECTORS.map((c): Variant => ({ name: `agent-${c}`, kind: "agent", collectors: [c], oneSecond: true })),
  ...PROC_COLLECTORS.map((c): Variant => ({ name: `read-loop-${c}`, kind: "read-loop", loops: { [c]: 1000 } })),
  // Without the main set, the references for "above the idle agent / bare Bun" are measured here.
  ...(only.has("main") ? [] : MAIN.slice(0, 2).map((m) => ({ ...m, name: `${m.name}-short` }))),
];

const work = mkdtempSync(join(tmpdir(), "tapio-bench-node-"));
const started = performance.now();
const load: { start: number[]; end?: number[] } = { start: loadavg() };
let binary: string | string[];
let pollBinary: string | string[];
let rounds: RunContext["rounds"];
const roundsFile = join(work, "rounds.json");
if (args.source) {
  binary = [process.execPath, join(REPO, "src/main.ts")];
} else {
  binary = join(work, "tapio-collectors");
  buildAgent(binary);
}
if (agentHasPollHistogram()) {
  pollBinary = binary;
  rounds = "histogram";
} else {
  // The agent does not count its rounds yet: a build whose poll loop counts them (and writes the counts on SIGUSR2).
  pollBinary = join(work, "tapio-collectors-rounds");
  await buildVariant(pollBinary, [
    {
      file: "src/collectors/common/poll.ts",
      replace: [["    try {\n      await round();", "    try {\n      benchRounds.set(ctx.name, (benchRounds.get(ctx.name) ?? 0) + 1);\n      await round();"]],
      append: `
import { writeFileSync as benchWriteFile } from "node:fs";
// bench/node.ts: rounds per collector, written to a file on SIGUSR2
const benchRounds = new Map<string, number>();
let benchSeq = 0;
process.on("SIGUSR2", () => benchWriteFile(${JSON.stringify(roundsFile)}, JSON.stringify({ seq: ++benchSeq, rounds: Object.fromEntries(benchRounds) })));
`,
    },
  ]);
  rounds = { file: roundsFile };
}
process.stderr.write(`bench:node: agent ${args.source ? "from source (bun src/main.ts)" : "compiled"}; rounds counted by ${rounds === "histogram" ? "the agent's poll histogram" : "a build that counts them"}\n`);

const server = await startNatsServer({ jetstream: true, storeDir: join(work, "js") });
const samples = new Map<string, Sample[]>();
try {
  const mainCtx: RunContext = { work, natsUrl: server.url, agent: binary, rounds: "none" };
  const pollCtx: RunContext = { work, natsUrl: server.url, agent: pollBinary, rounds };
  const sets: Array<[Variant[], RunContext, number, number]> = [];
  if (only.has("main")) sets.push([MAIN, mainCtx, warmup, seconds]);
  if (only.has("polls")) sets.push([POLLS, pollCtx, pollWarmup, pollSeconds]);
  for (const [variants, ctx, w, s] of sets) {
    for (let i = 0; i < runs; i++) {
      // Every other run in reverse order: no variant always gets the warmer (or more tired) machine.
      for (const variant of i % 2 === 0 ? variants : [...variants].reverse()) {
        const t = performance.now();
        const sample = await measure(ctx, variant, { warmupSeconds: w, seconds: s });
        samples.set(variant.name, [...(samples.get(variant.name) ?? []), sample]);
        const missed = sample.events && Object.keys(sample.events.missing).length > 0 ? ` MISSING ${JSON.stringify(sample.events.missing)}` : "";
        process.stderr.write(
          `  run ${i + 1}/${runs} ${variant.name.padEnd(20)} ${perHour(sample).toFixed(2).padStart(8)} CPU-s/h  RSS ${(sample.rssSteady / MiB).toFixed(1)} MiB (peak ${(sample.rssPeak / MiB).toFixed(1)})` +
            `${sample.rounds ? ` rounds ${JSON.stringify(sample.rounds)}` : ""}${missed}  [${Math.round((performance.now() - t) / 1000)} s]\n` +
            `      CPU-s/h by thread: ${Object.entries(sample.threads ?? {}).map(([k, v]) => `${k} ${((v / sample.seconds) * 3600).toFixed(2)}`).join(", ")}\n`,
        );
      }
    }
  }
} finally {
  await killAllAgents();
  await stopAllNatsServers();
  rmSync(work, { recursive: true, force: true });
}
load.end = loadavg();

// ------------------------------------------------------------------ rows

const of = (name: string) => samples.get(name) ?? [];
const rows: Row[] = [];
const runsOf = (xs: Sample[], f: (s: Sample) => number) => xs.map(f);
const cpuRow = (measure: string, agent: string, baseline: string | undefined, extra: Partial<Row> = {}): Row => {
  const a = median(of(agent).map(perHour));
  const b = baseline ? median(of(baseline).map(perHour)) : undefined;
  return {
    group: "node",
    measure,
    unit: "CPU s/h",
    agent: a,
    ...(b !== undefined ? { baseline: b, ratio: a / b } : {}),
    ...extra,
    detail: {
      percent_of_a_core: a / 36,
      agent_runs: runsOf(of(agent), perHour),
      ...(baseline ? { baseline_runs: runsOf(of(baseline), perHour), baseline_percent_of_a_core: b! / 36 } : {}),
      ...(extra.detail ?? {}),
    },
  };
};
const rssRow = (measure: string, agent: string, baseline: string, key: "rssSteady" | "rssPeak", allowance?: number): Row => {
  const a = median(of(agent).map((s) => s[key])) / MiB;
  const b = median(of(baseline).map((s) => s[key])) / MiB;
  return {
    group: "node",
    measure,
    unit: "MiB",
    agent: a,
    baseline: b,
    diff: a - b,
    ...(allowance !== undefined ? { target: `<= bare Bun + ${allowance} MiB`, pass: a - b <= allowance } : {}),
    detail: { agent_runs: of(agent).map((s) => s[key] / MiB), baseline_runs: of(baseline).map((s) => s[key] / MiB) },
  };
};

if (only.has("main")) {
  const none = cpuRow("no collectors (connected, HTTP on): CPU", "agent-none", "idle");
  none.target = "<= 2x bare Bun idle";
  none.pass = none.ratio! <= 2;
  rows.push(none);
  rows.push(rssRow("no collectors: steady RSS", "agent-none", "idle", "rssSteady", 20));
  rows.push(rssRow("no collectors: peak RSS (VmHWM)", "agent-none", "idle", "rssPeak"));
  const synthetic = cpuRow("synthetic at 10 events/s: CPU", "agent-synthetic", "agent-none");
  synthetic.diff = synthetic.agent - synthetic.baseline!;
  delete synthetic.ratio;
  synthetic.target = `<= +${SYNTHETIC_CPU_TARGET} (0.1% of a core)`;
  synthetic.pass = synthetic.diff <= SYNTHETIC_CPU_TARGET;
  synthetic.detail = { ...synthetic.detail, events_at_the_subscriber: of("agent-synthetic").map((s) => s.byCollector?.synthetic ?? 0) };
  rows.push(synthetic);
  const node = cpuRow("busy node, all collectors: CPU (vs read loop)", "agent-node", "read-loop");
  node.target = `<= ${NODE_CPU_TARGET} (0.5% of a core)`;
  node.pass = node.agent <= NODE_CPU_TARGET;
  rows.push(node);
  rows.push(rssRow("busy node, all collectors: steady RSS", "agent-node", "idle", "rssSteady", 30));
  rows.push(rssRow("busy node, all collectors: peak RSS (VmHWM)", "agent-node", "idle", "rssPeak"));
  rows.push(rssRow("read loop of the node's polls: steady RSS", "read-loop", "idle", "rssSteady"));
  const events = of("agent-node").map((s) => s.events!);
  const missingTotal = (e: (typeof events)[number]) => Object.values(e.missing).reduce((n, x) => n + (x ?? 0), 0);
  const expectedTotal = (e: (typeof events)[number]) => Object.values(e.expected).reduce((n, x) => n + x, 0);
  const worst = Math.max(...events.map(missingTotal));
  rows.push({
    group: "node",
    measure: "busy node: expected events missing (worst run)",
    unit: "events",
    agent: worst,
    baseline: median(events.map(expectedTotal)),
    target: "0",
    pass: worst === 0,
    detail: { note: "baseline: the events expected in a run", runs: events },
  });
}

if (only.has("polls")) {
  const agentRef = only.has("main") ? "agent-none" : "agent-none-short";
  const bareRef = only.has("main") ? "idle" : "idle-short";
  const rate = (name: string) => median(of(name).map((s) => s.cpu / s.seconds));
  /** CPU per round in ms above the reference's CPU over the same time, per run */
  const perRound = (name: string, ref: string, key: string, count: (s: Sample) => number = (s) => s.rounds?.[key] ?? NaN) =>
    of(name).map((s) => ((s.cpu - rate(ref) * s.seconds) / count(s)) * 1000);
  const roundNames: Record<NodeCollector, string> = {
    process: "process: CPU per poll (interval 1 s)",
    memory: "memory: CPU per poll (interval 1 s)",
    network: "network: CPU per poll (interval 1 s)",
    kernel: "kernel: CPU per 1 s (vmstat + kmsg read)",
    kubelet: "kubelet: CPU per poll (pods + stats, 1 s)",
    dns: "dns: CPU per probe round (interval 1 s)",
    kubeapi: "kubeapi: CPU per watch change",
  };
  for (const c of NODE_COLLECTORS) {
    const name = `agent-${c}`;
    const count = c === "kubeapi" ? (s: Sample) => s.watchChanges : c === "kubelet" ? (s: Sample) => (s.rounds?.[c] ?? NaN) / 2 : undefined;
    const agent = perRound(name, agentRef, c, count);
    const detail: Record<string, unknown> = {
      agent_runs: agent,
      rounds_runs: of(name).map((s) => (count ? count(s) : s.rounds?.[c])),
      cpu_s_per_hour_runs: of(name).map(perHour),
      reference: `${agentRef}: ${(rate(agentRef) * 3600).toFixed(2)} CPU s/h subtracted`,
    };
    const wallRuns = of(name).map((s) => s.pollWallSeconds?.[c]);
    if (wallRuns.every((w) => w !== undefined)) detail.poll_histogram_wall_ms_per_round_runs = of(name).map((s) => (s.pollWallSeconds![c]! / s.rounds![c]!) * 1000);
    const row: Row = { group: "node", measure: roundNames[c], unit: "ms", agent: median(agent), detail };
    if ((PROC_COLLECTORS as readonly string[]).includes(c)) {
      // Measured like the agent's figure: the read loop's whole process (its process CPU clock: the
      // timer's wake-ups, its GC and allocator too) above bare Bun idle over the same time, per round.
      // What the rounds themselves take inside (process.cpuUsage around each) is in detail.
      const loop = of(`read-loop-${c}`);
      const base = perRound(`read-loop-${c}`, bareRef, c);
      row.baseline = median(base);
      row.ratio = row.agent / row.baseline;
      row.target = "<= 1.5x read loop";
      row.pass = row.ratio <= 1.5;
      detail.baseline_runs = base;
      detail.baseline_rounds_runs = loop.map((s) => s.rounds?.[c]);
      detail.baseline_inside_rounds_runs = loop.map((s) => (s.roundCpuSeconds![c]! / s.rounds![c]!) * 1000);
      detail.baseline_reference = `${bareRef}: ${(rate(bareRef) * 3600).toFixed(2)} CPU s/h`;
    }
    rows.push(row);
  }
}

// ---------------------------------------------------------------- report

const took = Math.round((performance.now() - started) / 1000);
console.log(
  `\ntapio-collectors on a simulated busy node at ${commit}, median of ${runs} run(s) (${[only.has("main") ? `${warmup} s warm-up + ${seconds} s` : "", only.has("polls") ? `per poll ${pollWarmup} + ${pollSeconds} s` : ""].filter(Boolean).join("; ")}), ` +
    `${new Date().toISOString()}, ${took} s, Bun ${Bun.version}, agent ${args.source ? "from source" : "compiled"}, load ${load.start.map((x) => x.toFixed(1)).join(" ")} -> ${load.end!.map((x) => x.toFixed(1)).join(" ")}`,
);
for (const r of rows) console.log(formatRow(r, "FAIL"));

const stamp = {
  date: new Date().toISOString(),
  commit,
  runs,
  seconds,
  warmup_seconds: warmup,
  poll_seconds: pollSeconds,
  poll_warmup_seconds: pollWarmup,
  agent: args.source ? "bun src/main.ts" : "compiled (build.ts)",
  rounds_counted_by: rounds === "histogram" ? "the agent's orchestrator_collector_poll_seconds histogram" : "a build of the agent whose poll loop counts rounds (bench/node.ts)",
  bun: Bun.version,
  machine: { cpus: cpus().length, loadavg_start: load.start, loadavg_end: load.end, note: "shared with other work; CPU seconds are the process's own, less sensitive to that than wall time" },
  took_seconds: took,
  partial: only.size < 2 ? [...only] : undefined,
  samples: Object.fromEntries(samples),
  rows,
};
const results = join(import.meta.dir, "results");
await Bun.write(join(results, "node.json"), `${JSON.stringify(stamp, null, 2)}\n`);
// The chart shows the throughput scenarios (bench.json) and these.
if (existsSync(join(results, "bench.json"))) {
  const bench = JSON.parse(readFileSync(join(results, "bench.json"), "utf8")) as { rows: Row[]; runs: number; date: string; commit: string };
  writeFileSync(join(results, "bench.svg"), renderSvg(bench.rows, { runs: bench.runs, date: bench.date, commit: bench.commit }, { rows, runs, date: stamp.date, commit }));
}
