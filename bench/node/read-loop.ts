// The read-loop baseline: a bare Bun script that does the minimum reads of
// the agent's polls on the same fake node at the same intervals, and nothing
// else (no parsing, no state, no events). Each loop is one round, then a
// sleep of its interval, as the agent's poll loop is.
//   process: readdir of proc_root, then stat and cgroup of each pid
//   memory:  pressure/{memory,cpu,io}, meminfo, and the kubepods cgroup tree:
//            readdir of each level, memory.current, memory.max, memory.events
//            and cpu.stat of each pod and container
//   network: net/{snmp,netstat,dev,sockstat}, nf_conntrack_{count,max}
//   kernel:  what was appended to the kmsg file since the last read (every
//            read interval), vmstat (every vmstat interval)
// Sync reads: the cheapest way Bun has.
//   bun bench/node/read-loop.ts '<json of ReadLoopOptions>'
// SIGUSR2 writes the rounds so far to `roundsFile` ({"seq": n, "rounds": {...},
// "cpu_us": {...}}: rounds per loop, and the CPU time spent inside them,
// process.cpuUsage() around each round); with `once`, each loop runs one
// round and the script prints the rounds and exits.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ReadLoopOptions {
  procRoot: string;
  cgroupRoot: string;
  kmsgPath: string;
  /** interval in ms of each loop to run */
  loops: Partial<Record<"process" | "memory" | "network" | "kernel" | "vmstat", number>>;
  roundsFile?: string;
  once?: boolean;
}

const opts = JSON.parse(process.argv[2]!) as ReadLoopOptions;
const read = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    // a process that exited between the readdir and the read
    return "";
  }
};

function processRound(): void {
  for (const name of readdirSync(opts.procRoot)) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    read(join(opts.procRoot, name, "stat"));
    read(join(opts.procRoot, name, "cgroup"));
  }
}

function memoryRound(): void {
  for (const r of ["memory", "cpu", "io"]) read(join(opts.procRoot, "pressure", r));
  read(join(opts.procRoot, "meminfo"));
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const sub = join(dir, e.name);
      if (e.name.includes("-pod")) {
        cgroup(sub);
        for (const c of readdirSync(sub, { withFileTypes: true })) if (c.isDirectory()) cgroup(join(sub, c.name));
      } else if (depth === 0) walk(sub, 1);
    }
  };
  const cgroup = (dir: string) => {
    for (const f of ["memory.current", "memory.max", "memory.events", "cpu.stat"]) read(join(dir, f));
  };
  walk(join(opts.cgroupRoot, "kubepods.slice"), 0);
}

function networkRound(): void {
  for (const f of ["snmp", "netstat", "dev", "sockstat"]) read(join(opts.procRoot, "net", f));
  for (const f of ["nf_conntrack_count", "nf_conntrack_max"]) read(join(opts.procRoot, "sys/net/netfilter", f));
}

const kmsg = openSync(opts.kmsgPath, "r");
let kmsgAt = fstatSync(kmsg).size;
const kmsgBuffer = Buffer.alloc(16 * 1024);
function kernelRound(): void {
  for (;;) {
    const n = readSync(kmsg, kmsgBuffer, 0, kmsgBuffer.length, kmsgAt);
    if (n === 0) break;
    kmsgAt += n;
    kmsgBuffer.toString("utf8", 0, n);
  }
}

function vmstatRound(): void {
  read(join(opts.procRoot, "vmstat"));
}

const ROUNDS = { process: processRound, memory: memoryRound, network: networkRound, kernel: kernelRound, vmstat: vmstatRound };
const rounds: Record<string, number> = {};
const cpuUs: Record<string, number> = {};
let seq = 0;

process.on("SIGUSR2", () => {
  if (opts.roundsFile) writeFileSync(opts.roundsFile, JSON.stringify({ seq: ++seq, rounds, cpu_us: cpuUs }));
});
process.on("SIGTERM", () => {
  closeSync(kmsg);
  process.exit(0);
});

await Promise.all(
  Object.entries(opts.loops).map(async ([name, ms]) => {
    const round = ROUNDS[name as keyof typeof ROUNDS];
    rounds[name] = 0;
    cpuUs[name] = 0;
    for (;;) {
      const before = process.cpuUsage();
      round();
      const used = process.cpuUsage(before);
      cpuUs[name] += used.user + used.system;
      rounds[name]++;
      if (opts.once) return;
      await Bun.sleep(ms!);
    }
  }),
);
process.stdout.write(`${JSON.stringify({ rounds })}\n`);
