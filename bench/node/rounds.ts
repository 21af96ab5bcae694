// CPU per round of the memory and network collectors, in this process, on the
// simulated node's files, against the read loop's bare reads of the same
// files in the same process, rounds interleaved (so both see the same JIT
// state of Bun and the same noise of the machine). A quick loop for working
// on a collector's round; bench/idle.ts is the measure that counts (a
// compiled agent, its own process, its default intervals).
//   bun bench/node/rounds.ts [--rounds 60] [--ticks 1] [--gap 0] [--churn] [--each] [--only memory,network]
// --ticks: how many seconds of the node pass between rounds (counters move,
// files are rewritten), as between two polls of the agent. --gap: milliseconds
// of sleep between rounds (the agent's are 5-15 s apart: code and caches go
// cold). --churn: every cgroup's memory.current and cpu.stat change before
// each round, as on a real node (the fake node keeps them still). --each:
// every round's CPU (the first rounds pay for the JIT compiling them).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { MemoryCollector } from "../../src/collectors/memory/index.ts";
import { memoryConfigSchema } from "../../src/collectors/memory/schema.ts";
import { NetworkCollector } from "../../src/collectors/network/index.ts";
import { networkConfigSchema } from "../../src/collectors/network/schema.ts";
import type { Collector } from "../../src/orchestrator/collector.ts";
import { makeTempDir, removeTempDir } from "../../test/helpers/cleanup.ts";
import { recordingContext } from "../../test/helpers/collector-context.ts";
import { NodeFiles } from "./files.ts";
import { makePods } from "./pods.ts";

const { values: flags } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    rounds: { type: "string", default: "60" },
    ticks: { type: "string", default: "1" },
    gap: { type: "string", default: "0" },
    churn: { type: "boolean", default: false },
    each: { type: "boolean", default: false },
    only: { type: "string", default: "memory,network" },
  },
});
const ROUNDS = Number(flags.rounds);

const read = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

/** The read loop's rounds (bench/node/read-loop.ts), as functions of the node's roots. */
function bareRounds(procRoot: string, cgroupRoot: string): Record<string, () => void> {
  const cgroup = (dir: string) => {
    for (const f of ["memory.current", "memory.max", "memory.events", "cpu.stat"]) read(join(dir, f));
  };
  const walk = (dir: string, depth: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const sub = join(dir, e.name);
      if (e.name.includes("-pod")) {
        cgroup(sub);
        for (const c of readdirSync(sub, { withFileTypes: true })) if (c.isDirectory()) cgroup(join(sub, c.name));
      } else if (depth === 0) walk(sub, 1);
    }
  };
  return {
    memory: () => {
      for (const r of ["memory", "cpu", "io"]) read(join(procRoot, "pressure", r));
      read(join(procRoot, "meminfo"));
      walk(join(cgroupRoot, "kubepods.slice"), 0);
    },
    network: () => {
      for (const f of ["snmp", "netstat", "dev", "sockstat"]) read(join(procRoot, "net", f));
      for (const f of ["nf_conntrack_count", "nf_conntrack_max"]) read(join(procRoot, "sys/net/netfilter", f));
    },
  };
}

/** Runs a collector round by round: its run() in a loop whose interval sleep is replaced by `next`. */
function stepper(collector: Collector): { round(): Promise<void>; events(): number; errors(): number } {
  const rec = recordingContext({ once: true });
  return {
    round: () => collector.run(rec.ctx),
    events: () => rec.events.length,
    errors: () => rec.parseErrors.length + rec.degraded.length,
  };
}

const dir = makeTempDir("rounds");
try {
  const pods = makePods();
  const files = new NodeFiles({ dir, pods, rxErrorEverySeconds: 20 });
  const cgroups = pods.flatMap((p) => [p.cgroup, p.sandbox.cgroup, ...p.containers.map((c) => c.cgroup)]).map((c) => join(files.cgroupRoot, c));
  let churned = 0;
  const churn = () => {
    churned++;
    for (const [i, dir] of cgroups.entries()) {
      writeFileSync(join(dir, "memory.current"), `${20_000_000 + ((i * 7919 + churned * 104_729) % 1_000_000)}\n`);
      writeFileSync(
        join(dir, "cpu.stat"),
        `usage_usec ${i * 1_000_000 + churned * 1000}\nuser_usec ${churned * 600}\nsystem_usec ${churned * 400}\nnr_periods ${churned * 10}\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n`,
      );
    }
  };
  const bare = bareRounds(files.procRoot, files.cgroupRoot);
  const collectors: Record<string, Collector> = {
    memory: new MemoryCollector(v.parse(memoryConfigSchema, { proc_root: files.procRoot, sys_root: files.sysRoot, node_name: "bench-node-1" })),
    network: new NetworkCollector(v.parse(networkConfigSchema, { proc_root: files.procRoot })),
  };
  for (const name of flags.only.split(",")) {
    const agent = stepper(collectors[name]!);
    let agentUs = 0;
    let bareUs = 0;
    const cpu = () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    };
    for (let i = 0; i < ROUNDS; i++) {
      for (let t = 0; t < Number(flags.ticks); t++) files.tick();
      if (flags.churn) churn();
      // the first round of each takes the baselines and warms up: not counted
      let t0 = cpu();
      await agent.round();
      const used = cpu() - t0;
      if (i > 0) agentUs += used;
      t0 = cpu();
      bare[name]!();
      const bareUsed = cpu() - t0;
      if (i > 0) bareUs += bareUsed;
      if (flags.each) console.log(`${name} round ${i}: collector ${(used / 1000).toFixed(2)} ms, read loop ${(bareUsed / 1000).toFixed(2)} ms`);
      if (Number(flags.gap) > 0) await Bun.sleep(Number(flags.gap));
    }
    const n = ROUNDS - 1;
    console.log(
      `${name}: collector ${(agentUs / n / 1000).toFixed(2)} ms per round, read loop ${(bareUs / n / 1000).toFixed(2)} ms, ratio ${(agentUs / bareUs).toFixed(2)}x (${n} rounds, ${agent.events()} events, ${agent.errors()} errors)`,
    );
  }
} finally {
  removeTempDir(dir);
}
