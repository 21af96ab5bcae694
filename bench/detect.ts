// npm run bench:detect: how soon real kernel events reach a NATS subscriber
// (issue 17), event-driven sources against polling ones in the same run.
// As root, on this machine's kernel: a line written to /dev/kmsg, an OOM kill
// in a cgroup v1 memory cgroup laid out as a pod's, a process started and
// killed in that pod, memory pressure (PSI) from page-cache thrashing in a
// small cgroup. Latency is from the kernel's own time of the event (the kmsg
// record's timestamp, put on the wall clock by a calibration record; for a
// process, its fork and its kill; for pressure, the start of the generator)
// to the arrival at the subscriber. Then the idle check: the agent with 0..3
// event-driven sources on a quiet node, whose CPU must not grow with them.
//
//   bun bench/detect.ts                         the event column: this tree, compiled; no poll column (a note says so)
//   bun bench/detect.ts --base OLD_BINARY       the poll column: a binary built before issue 17 (poll-only)
//   bun bench/detect.ts --binary BIN            the event column from BIN instead of building this tree
//   bun bench/detect.ts --only kmsg,oom,process,psi,idle --repeats 20 --rounds 2 --seconds 60
//   bun bench/detect.ts --out FILE              results elsewhere than bench/results/detect.json
//
// Each case runs each column's agent `rounds` times, alternating which goes
// first, each run taking its share of the repetitions (after `warmup` ones
// that are not counted). The mode a column was in is what the agent reports
// in /status (collectors[].sources), not what the column is called.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { startNatsServer, stopAllNatsServers } from "../test/helpers/nats-server.ts";
import { kernelConfigSchema } from "../src/collectors/kernel/schema.ts";
import { memoryConfigSchema } from "../src/collectors/memory/schema.ts";
import { processConfigSchema } from "../src/collectors/process/schema.ts";
import { PSI_WINDOW_US } from "../src/collectors/memory/psi-triggers.ts";
import { buildAgent } from "./lib/build.ts";
import { killAllAgents, REPO } from "./lib/procs.ts";
import { describeModes, modeOf, startDetectAgent } from "./detect/agent.ts";
import { Arrivals } from "./detect/arrivals.ts";
import { DetectCgroups, memcgV1Problem, memcgV2Note, sweepStale } from "./detect/cgroups.ts";
import { CASES, type CaseContext, type Sample } from "./detect/cases.ts";
import { idleCheck, type IdleResult } from "./detect/idle.ts";
import { KmsgProbe } from "./detect/kmsg.ts";

const { values: args } = parseArgs({
  options: {
    only: { type: "string", default: "kmsg,oom,process,psi,idle" },
    repeats: { type: "string", default: "20" },
    rounds: { type: "string", default: "2" },
    warmup: { type: "string", default: "1" },
    seconds: { type: "string", default: "60" },
    "idle-warmup": { type: "string", default: "30" },
    "idle-tolerance": { type: "string", default: "0.04" },
    binary: { type: "string" },
    base: { type: "string" },
    out: { type: "string", default: join(import.meta.dir, "results", "detect.json") },
    // The agent's own trigger window (one source of truth): the PSI row's target is it + 10 ms.
    "psi-window-ms": { type: "string", default: String(PSI_WINDOW_US / 1000) },
    "psi-readers": { type: "string", default: "2" },
    "psi-calm": { type: "string", default: "5" },
    "process-spacing-ms": { type: "string", default: "600" },
    "process-life-ms": { type: "string" },
    keep: { type: "boolean", default: false },
  },
  strict: true,
});

const KNOWN = ["kmsg", "oom", "process", "psi", "idle"];
const only = new Set(args.only!.split(",").map((s) => s.trim()));
for (const o of only) if (!KNOWN.includes(o)) throw new Error(`--only: unknown "${o}"; known: ${KNOWN.join(", ")}`);
const repeats = Number(args.repeats);
const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const idleSeconds = Number(args.seconds);
/**
 * CPU seconds per minute that the agent with event-driven sources may use
 * above the agent with none: the 10 ms ticks and the noise between two
 * identical idle agents (about 0.02 s a minute here); never under two
 * ticks. Polling the kernel log every second alone costs 0.07-0.16 a minute.
 */
const idleTolerance = Math.max(0.02, (Number(args["idle-tolerance"]) * idleSeconds) / 60); // at least 0.02 s: a window of a minute or less is noisy

// The pollers' defaults, from the collectors' schemas: the poll column runs them, and the pauses between repetitions span them.
const intervals = {
  kernel: v.parse(kernelConfigSchema, {}).read_interval.ms,
  memory: v.parse(memoryConfigSchema, {}).interval.ms,
  process: v.parse(processConfigSchema, {}).interval.ms,
};
const MiB = 1024 * 1024;

const git = (...a: string[]) => Bun.spawnSync(["git", ...a], { cwd: REPO }).stdout.toString().trim();
const commit = `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain", "--", "src") ? " (src dirty)" : ""}${args.binary ? " (the harness; the event column is --binary)" : ""}`;
const log = (line: string) => process.stderr.write(`bench:detect: ${line}\n`);

if (process.getuid?.() !== 0) {
  console.error("bench:detect needs root: it writes /dev/kmsg, creates memory cgroups and OOM-kills in them");
  process.exit(2);
}

const nonce = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const work = mkdtempSync(join(tmpdir(), "tapio-detect-"));
const columns: Array<{ name: "event" | "poll"; binary: string }> = [];
const notes: string[] = [];

interface Row {
  series: string;
  label: string;
  column: string;
  mode: string;
  n: number;
  missing: number;
  p50?: number;
  p99?: number;
  max?: number;
  target_p99_ms: number;
  pass: boolean;
}

/** Nearest rank: with 20 samples the p99 is the largest. */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

const started = performance.now();
const load = { start: loadavg(), end: [] as number[] };
const caseResults: Record<string, unknown> = {};
const rows: Row[] = [];
let idle: IdleResult[] = [];
let cgroups: DetectCgroups | undefined;
let probe: KmsgProbe | undefined;
let arrivals: Arrivals | undefined;

async function cleanup(): Promise<void> {
  await killAllAgents();
  arrivals?.stop();
  probe?.close();
  for (const problem of (await cgroups?.removeAll()) ?? []) log(`cleanup: ${problem}`);
  await stopAllNatsServers();
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}

// Ctrl-C or a kill: still remove the cgroups and stop what runs in them.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  for (const stale of await sweepStale()) log(`removed the cgroups of an earlier run that was killed: ${stale}`);
  if (args.binary) columns.push({ name: "event", binary: args.binary });
  else {
    const binary = join(work, "tapio-collectors");
    log(`building this tree (${commit}) as the event column`);
    buildAgent(binary);
    columns.push({ name: "event", binary });
  }
  if (args.base) columns.push({ name: "poll", binary: args.base });
  else notes.push("no --base: the poll column is not measured (give a binary built before issue 17, e.g. from main, to compare)");

  const nats = await startNatsServer({ jetstream: false });
  const subject = `detect.r${nonce.replace(/\W/g, "")}`;
  arrivals = await Arrivals.start(nats.url, `${subject}.>`);
  probe = new KmsgProbe(`tapio-detect ${nonce}`);
  if (["oom", "process", "psi", "idle"].some((c) => only.has(c))) {
    const v1Problem = memcgV1Problem();
    if (v1Problem) throw new Error(`the oom, process, psi and idle cases need a writable cgroup v1 memory controller: ${v1Problem} (--only kmsg runs without)`);
    cgroups = new DetectCgroups(nonce, join(work, "cgroup-root"));
    notes.push(
      `pods are faked in the cgroup v1 memory hierarchy: ${cgroups.pod}/<container id> (cgroupfs driver layout); ` +
        `the memory collector's cgroup_root is a folder whose memory/ links to ${cgroups.top}, the process collector has containers_only with cgroup_pattern ${cgroups.cgroupPattern}`,
    );
  }
  if (only.has("oom")) notes.push(`cgroup v2 OOM: not measured: ${memcgV2Note()}`);

  const opts: CaseContext["opts"] = {
    processLifeMs: args["process-life-ms"] ? Number(args["process-life-ms"]) : intervals.process + 1000,
    processSpacingMs: Number(args["process-spacing-ms"]),
    psiWindowMs: Number(args["psi-window-ms"]),
    psiCalm: Number(args["psi-calm"]),
    psiReaders: Number(args["psi-readers"]),
    oomLimitBytes: 32 * MiB,
    psiLimitBytes: 8 * MiB,
  };
  // Only the kmsg case runs without cgroups (--only kmsg), and it does not use them.
  const ctx: CaseContext = { nonce, work, probe, cgroups: cgroups!, arrivals, intervals, opts, log };
  let runNo = 0;

  for (const c of CASES.filter((c) => only.has(c.name))) {
    const problem = c.problem?.(ctx);
    if (problem) {
      for (const s of c.series) notes.push(`${s.label}: not measured: ${problem}`);
      continue;
    }
    await c.prepare?.(ctx);
    const runs: Array<{ column: string; round: number; agent_started_at: number; modes: string; modes_at_start: string; by_series: Record<string, { mode: string }>; samples: Record<string, Sample[]> }> = [];
    try {
      for (let round = 0; round < rounds; round++) {
        // This round's share of the repetitions.
        const share = Math.floor(repeats / rounds) + (round < repeats % rounds ? 1 : 0);
        if (share === 0) continue;
        for (const column of round % 2 === 0 ? columns : [...columns].reverse()) {
          const name = `${c.name}-${column.name}-${++runNo}`;
          const t = performance.now();
          const startedAt = Date.now();
          const agent = await startDetectAgent(column.binary, work, name, nats.url, `${subject}.run${runNo}`, c.collectors(ctx));
          const collectorNames = [...new Set(c.series.map((s) => s.collector))];
          let samples: Record<string, Sample[]>;
          let atStart: string;
          let status;
          try {
            atStart = describeModes(await agent.status(), collectorNames);
            samples = await c.run(ctx, agent, share, warmup);
            status = await agent.status();
          } finally {
            await agent.agent.stop("SIGTERM");
          }
          const bySeries = Object.fromEntries(c.series.map((s) => [s.key, { mode: modeOf(status, s.collector, s.hint) }]));
          runs.push({ column: column.name, round, agent_started_at: startedAt, modes: describeModes(status, collectorNames), modes_at_start: atStart, by_series: bySeries, samples });
          const brief = c.series
            .map((s) => {
              const got = samples[s.key]!.filter((x) => x.latencyMs !== undefined).map((x) => x.latencyMs!);
              return `${s.key} ${got.length}/${samples[s.key]!.length} median ${got.length ? percentile([...got].sort((a, b) => a - b), 0.5)!.toFixed(1) : "-"} ms`;
            })
            .join(", ");
          log(`${name} (${Object.values(bySeries).map((b) => b.mode).join("/")}): ${brief} [${Math.round((performance.now() - t) / 1000)} s]`);
        }
      }
    } finally {
      await c.teardown?.(ctx);
    }
    caseResults[c.name] = { runs };
    for (const s of c.series) {
      for (const column of columns) {
        const mine = runs.filter((r) => r.column === column.name);
        if (mine.length === 0) continue;
        const all = mine.flatMap((r) => r.samples[s.key]!);
        const got = all.filter((x) => x.latencyMs !== undefined).map((x) => x.latencyMs!).sort((a, b) => a - b);
        const modes = [...new Set(mine.map((r) => r.by_series[s.key]!.mode))];
        const target = s.targetMs(opts);
        const p99 = percentile(got, 0.99);
        const missing = all.length - got.length;
        rows.push({
          series: s.key,
          label: s.label,
          column: column.name,
          mode: modes.length === 1 ? modes[0]! : "mixed",
          n: all.length,
          missing,
          p50: percentile(got, 0.5),
          p99,
          max: got.at(-1),
          target_p99_ms: target,
          pass: missing === 0 && p99 !== undefined && p99 <= target,
        });
      }
    }
  }

  if (only.has("idle")) {
    log(`idle check: ${columns.length * 4} agents side by side, ${args["idle-warmup"]} s warm-up + ${idleSeconds} s`);
    idle = await idleCheck(columns, cgroups!, work, nats.url, `${subject}.idle`, Number(args["idle-warmup"]), idleSeconds);
  }
} finally {
  await cleanup();
}
load.end = loadavg();

// ------------------------------------------------------------------ report

const fmt = (x: number | undefined) => (x === undefined ? "-" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(x >= 10 ? 1 : 2));
const took = Math.round((performance.now() - started) / 1000);
console.log(
  `\nbench:detect at ${commit}, ${new Date().toISOString()}, ${took} s, Bun ${Bun.version}, ${cpus().length} CPUs, load ${load.start.map((x) => x.toFixed(1)).join(" ")} -> ${load.end.map((x) => x.toFixed(1)).join(" ")}`,
);
console.log(`columns: ${columns.map((c) => `${c.name} = ${c.binary}`).join("; ")}`);
console.log(`${repeats} repetitions per case and column in ${rounds} alternating rounds (+${warmup} warm-up per run but for psi); latency from the kernel's time of the event to the NATS subscriber, ms\n`);
if (rows.length > 0) {
  console.log("| event | column | mode (reported) | n | missing | p50 | p99 | max | target p99 | result |");
  console.log("|---|---|---|---:|---:|---:|---:|---:|---|---|");
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.column} | ${r.mode} | ${r.n} | ${r.missing} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | <= ${fmt(r.target_p99_ms)} | ${r.pass ? "PASS" : "FAIL"} |`);
  }
}
const idlePass: Record<string, boolean> = {};
if (idle.length > 0) {
  console.log(`\nidle check: CPU (the process CPU clock) and wake-ups (context switches of all threads) over ${idleSeconds} s, nothing happening for the sources`);
  console.log("| column | event-driven sources | CPU s | CPU s above 0 sources | wake-ups/s | modes (reported) | result |");
  console.log("|---|---|---:|---:|---:|---|---|");
  for (const column of columns) {
    const mine = idle.filter((r) => r.column === column.name);
    const zero = mine.find((r) => r.sources === 0)!;
    // CPU must not grow with the number of sources: each level within the tolerance of no collectors at all.
    idlePass[column.name] = mine.every((r) => r.cpu_seconds - zero.cpu_seconds <= idleTolerance);
    for (const r of mine) {
      const above = r.cpu_seconds - zero.cpu_seconds;
      const result = r.sources === 0 ? "" : above <= idleTolerance ? "PASS" : "FAIL";
      console.log(`| ${column.name} | ${r.sources}: ${r.what} | ${r.cpu_seconds.toFixed(2)} | ${r.sources === 0 ? "" : `${above >= 0 ? "+" : ""}${above.toFixed(2)}`} | ${(r.wakeups / r.seconds).toFixed(1)} | ${r.modes} | ${result} |`);
    }
  }
  console.log(`tolerance: +${idleTolerance.toFixed(3)} CPU s over the window (--idle-tolerance ${args["idle-tolerance"]} per minute)`);
}
for (const note of notes) console.log(`note: ${note}`);

const out = {
  date: new Date().toISOString(),
  commit,
  bun: Bun.version,
  took_seconds: took,
  machine: { cpus: cpus().length, loadavg_start: load.start, loadavg_end: load.end, kernel: Bun.spawnSync(["uname", "-r"]).stdout.toString().trim() },
  columns,
  options: { repeats, rounds, warmup, idle_seconds: idleSeconds, idle_tolerance_cpu_seconds: idleTolerance, poll_intervals_ms: intervals, only: [...only], psi_window_ms: Number(args["psi-window-ms"]) },
  rows,
  idle: idle.length > 0 ? { results: idle, pass: idlePass } : undefined,
  notes,
  cases: caseResults,
};
mkdirSync(dirname(args.out!), { recursive: true });
writeFileSync(args.out!, `${JSON.stringify(out, null, 2)}\n`);
console.log(`\nwritten: ${args.out}`);
