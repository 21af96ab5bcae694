// Spool and buffer-mode figures, all measured in one run on this machine so
// the ratios hold on a noisy shared box: bun bench/spool.ts
//  1. the spool alone: append and peek+remove rates for 1 KB events;
//  2. the agent end to end (JetStream, --once, synthetic 1 KB events) in
//     memory mode against disk mode (every event through the spool).
import { join } from "node:path";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Spool } from "../src/spool/spool.ts";
import pino from "pino";
import type { QueuedEvent } from "../src/event/event.ts";
import { startNatsServer, stopAllNatsServers } from "../test/helpers/nats-server.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SPOOL_EVENTS = 200_000;
const AGENT_EVENTS = 100_000;
const BATCH = 256;
const work = mkdtempSync(join(tmpdir(), "tapio-bench-"));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function spoolRates(): { append: number; drain: number } {
  const path = join(work, `spool-${Math.random()}.db`);
  const spool = Spool.open({ path, maxBytes: 4 * 1024 ** 3, whenFull: "block", log: pino({ level: "silent" }) });
  const payload = new Uint8Array(1024).fill(120);
  const batch: QueuedEvent[] = Array.from({ length: BATCH }, (_, i) => ({ subject: "tapio.events.bench", id: `id-${i}`, bytes: payload, collector: "bench" }));
  let t = performance.now();
  for (let n = 0; n < SPOOL_EVENTS; n += BATCH) spool.append(batch);
  const append = SPOOL_EVENTS / ((performance.now() - t) / 1000);
  t = performance.now();
  for (;;) {
    const rows = spool.peek(BATCH);
    if (rows.length === 0) break;
    spool.remove(rows);
  }
  const drain = SPOOL_EVENTS / ((performance.now() - t) / 1000);
  spool.close();
  rmSync(path, { force: true });
  return { append, drain };
}

async function agentRate(url: string, mode: "memory" | "disk", run: number): Promise<number> {
  const dir = mkdtempSync(join(work, "agent-"));
  const config = join(dir, "config.yaml");
  writeFileSync(config, `
orchestrator: { workers: 4, buffer: { type: ${mode} }, shutdown_timeout: 120s, log_level: warn }
nats: { url: ${url}, subject: bench.${mode}.r${run}, stream: { name: BENCH_${mode.toUpperCase()}_${run} } }
spool: { path: ${join(dir, "spool.db")} }
collectors:
  synthetic: { config: { count: ${AGENT_EVENTS}, rate: 0, payload_bytes: 1024 } }
`);
  const t = performance.now();
  const proc = Bun.spawn([process.execPath, "src/main.ts", "--once", "-c", config], { stdout: "ignore", stderr: "inherit" });
  const code = await proc.exited;
  const seconds = (performance.now() - t) / 1000;
  if (code !== 0) throw new Error(`agent exited ${code} in ${mode} mode`);
  return AGENT_EVENTS / seconds;
}

const server = await startNatsServer({ jetstream: true });
try {
  const spool = { append: [] as number[], drain: [] as number[] };
  const agent = { memory: [] as number[], disk: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    const s = spoolRates();
    spool.append.push(s.append);
    spool.drain.push(s.drain);
    // Alternate the order so neither mode always runs on a warmer machine.
    for (const mode of run % 2 === 0 ? (["memory", "disk"] as const) : (["disk", "memory"] as const)) {
      agent[mode].push(await agentRate(server.url, mode, run));
    }
  }
  const results = {
    runs: RUNS,
    spool_append_events_per_s: median(spool.append),
    spool_drain_events_per_s: median(spool.drain),
    agent_memory_mode_events_per_s: median(agent.memory),
    agent_disk_mode_events_per_s: median(agent.disk),
    disk_over_memory: median(agent.disk) / median(agent.memory),
  };
  console.log(`spool, 1 KB events, batches of ${BATCH} (median of ${RUNS}):`);
  console.log(`  append       ${fmt(results.spool_append_events_per_s)} events/s (${fmt(results.spool_append_events_per_s / 1024)} MB/s)`);
  console.log(`  peek+remove  ${fmt(results.spool_drain_events_per_s)} events/s`);
  console.log(`agent --once, JetStream, ${fmt(AGENT_EVENTS)} synthetic 1 KB events, wall time incl. start (median of ${RUNS}):`);
  console.log(`  memory mode  ${fmt(results.agent_memory_mode_events_per_s)} events/s`);
  console.log(`  disk mode    ${fmt(results.agent_disk_mode_events_per_s)} events/s  (${results.disk_over_memory.toFixed(2)}x memory mode)`);
  await Bun.write(join(import.meta.dir, "results", "spool.json"), `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`);
} finally {
  await stopAllNatsServers();
  rmSync(work, { recursive: true, force: true });
}
