// What the agent costs when little happens (issue 13), against bare Bun in
// the same run. Every case is a separate process, all running side by side
// over the same window (so the machine's noise hits each alike); CPU is
// the process's CPU clock over the window (after a warm-up, to the ns),
// RSS is VmRSS at its end and VmHWM (the peak).
//
//   bun bench/idle.ts                         every case, 60 s window after 10 s warm-up
//   bun bench/idle.ts --only bare,none,busy   some cases
//   bun bench/idle.ts --seconds 30 --binary dist/tapio-collectors
//   bun bench/idle.ts --base OLD_BINARY       each agent case also with OLD_BINARY (as <case>@base): before/after in one run
//   bun bench/idle.ts --env K=V[,K=V]         environment for the measured agent cases (not @base): runtime settings
//   bun bench/idle.ts --extra 'YAML'          merged into the measured agent cases' configs (not @base)
//   bun bench/idle.ts --source                run the agent from src/ (bun src/main.ts) instead of a binary
//   bun bench/idle.ts --prof DIR              with --source: bun --cpu-prof, <case>.cpuprofile written to DIR
//   bun bench/idle.ts --summarize FILE        a .cpuprofile's samples by function (self and total), and by
//                                             file, from --from seconds on (default 5: start-up left out)
//
// The simulated node (a temporary folder): a proc_root with 400 processes,
// 290 of them in 110 pods (cgroup v2 paths), 2 starting and 2 exiting each
// second; the node files the memory and network collectors read (copied
// from this machine's /proc, rewritten every second); a sys_root cgroup v2
// tree with the 110 pods and their containers; a kmsg file appended at 5
// records/s with an OOM kill every 30 s.
//
// "natsloop" is the baseline of the synthetic collector at 10 events/s: a
// bare Bun process with nats.js publishing the same ~600-byte JSON events to
// JetStream (js.publish, awaiting each ack) at the same pace (8 events every
// 0.8 s, the synthetic collector's tick at that rate).
//
// "readloop" is the baseline of the /proc collectors: a bare Bun process
// doing the minimum reads of their polls on the same node at the same
// intervals (readdir of proc_root, then stat + cgroup of each pid, every 5 s;
// meminfo, pressure and each pod cgroup's memory and cpu files every 10 s;
// the net files every 15 s), timing each poll with process.cpuUsage().
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startNatsServer, stopAllNatsServers } from "../test/helpers/nats-server.ts";
import { buildAgent } from "./lib/build.ts";
import { freePort, REPO } from "./lib/procs.ts";
import { cpuByThread, cpuSeconds, memoryOf, THREAD_NAMES, threadCpu } from "./node/measure.ts";

const { values: flags } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seconds: { type: "string", default: "60" },
    warmup: { type: "string", default: "10" },
    only: { type: "string" },
    binary: { type: "string" },
    base: { type: "string" },
    env: { type: "string" },
    extra: { type: "string" },
    source: { type: "boolean", default: false },
    prof: { type: "string" },
    keep: { type: "boolean", default: false },
    summarize: { type: "string" },
    from: { type: "string", default: "5" },
  },
});
const SECONDS = Number(flags.seconds);
const WARMUP = Number(flags.warmup);

const PROCESSES = 400;
const PODS = 110;
const CONTAINER_PROCESSES = 290;
const CHURN_PER_SECOND = 2;

const work = mkdtempSync(join(tmpdir(), "tapio-idle-"));
const node = join(work, "node");
const proc = join(node, "proc");
const sys = join(node, "sys");
const kmsg = join(node, "kmsg");

// ---------------------------------------------------------------- the node

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");
const podUid = (i: number) => `${hex(i, 8)}-0000-4000-8000-${hex(i, 12)}`;
const containerId = (pod: number, c: number) => hex(pod * 16 + c + 1, 64);
const podSlice = (i: number) => `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${podUid(i).replaceAll("-", "_")}.slice`;

let nextPid = 1000;
let clockTicks = 100_000;
/** the pids of processes in pods, oldest first */
const podPids: number[] = [];

function writeProcess(pid: number, inPod: boolean): void {
  const dir = join(proc, String(pid));
  mkdirSync(dir, { recursive: true });
  const pod = pid % PODS;
  const cgroup = inPod ? `0::/${podSlice(pod)}/cri-containerd-${containerId(pod, pid % 2)}.scope\n` : "0::/system.slice/some.service\n";
  const comm = inPod ? "app" : "daemon";
  // stat: pid (comm) state ppid pgrp session tty tpgid flags ... starttime is field 22
  const fields = ["S", "1", String(pid), String(pid), "0", "-1", "4194560", ...Array(12).fill("0"), "20", "0", "1", "0", String(clockTicks++), "1000000", "100"];
  writeFileSync(join(dir, "stat"), `${pid} (${comm}) ${fields.join(" ")}\n`);
  writeFileSync(join(dir, "cgroup"), cgroup);
  writeFileSync(join(dir, "cmdline"), `/usr/bin/${comm}\0--flag\0value\0`);
  writeFileSync(join(dir, "status"), `Name:\t${comm}\nState:\tS (sleeping)\nPid:\t${pid}\nPPid:\t1\n`);
  if (inPod) podPids.push(pid);
}

function copyProcFile(name: string, fallback = ""): void {
  const to = join(proc, name);
  mkdirSync(join(to, ".."), { recursive: true });
  let text = fallback;
  try {
    text = readFileSync(join("/proc", name), "utf8");
  } catch {}
  writeFileSync(to, text);
}

const NODE_FILES = ["stat", "meminfo", "vmstat", "uptime", "pressure/memory", "pressure/cpu", "pressure/io", "net/snmp", "net/netstat", "net/dev", "net/sockstat"];

function writeNodeFiles(): void {
  for (const name of NODE_FILES) copyProcFile(name, name.startsWith("pressure/") ? "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" : "");
  mkdirSync(join(proc, "sys/net/netfilter"), { recursive: true });
  writeFileSync(join(proc, "sys/net/netfilter/nf_conntrack_count"), `${1000 + (Date.now() % 100)}\n`);
  writeFileSync(join(proc, "sys/net/netfilter/nf_conntrack_max"), "262144\n");
}

function writeCgroup(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "memory.current"), "104857600\n");
  writeFileSync(join(dir, "memory.max"), "536870912\n");
  writeFileSync(join(dir, "memory.events"), "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
  writeFileSync(join(dir, "cpu.stat"), "usage_usec 1000\nuser_usec 500\nsystem_usec 500\nnr_periods 100\nnr_throttled 0\nthrottled_usec 0\n");
}

function buildNode(): void {
  mkdirSync(proc, { recursive: true });
  writeNodeFiles();
  for (let i = 0; i < PROCESSES; i++) writeProcess(nextPid++, i < CONTAINER_PROCESSES);
  const cgroupRoot = join(sys, "fs/cgroup");
  mkdirSync(cgroupRoot, { recursive: true });
  writeFileSync(join(cgroupRoot, "cgroup.controllers"), "cpuset cpu io memory pids\n");
  for (let pod = 0; pod < PODS; pod++) {
    writeCgroup(join(cgroupRoot, podSlice(pod)));
    for (let c = 0; c < 2; c++) writeCgroup(join(cgroupRoot, podSlice(pod), `cri-containerd-${containerId(pod, c)}.scope`));
  }
  writeFileSync(kmsg, "");
}

const OOM_LINES = readFileSync(join(REPO, "test/collectors/kernel/testdata/kmsg/oom-memcg-v1-kernel-6.18.kmsg"), "utf8");
let kmsgSeq = 1;

/** Once a second: processes start and exit, node files change, kmsg grows; an OOM kill every 30 s. */
function churn(second: number): void {
  for (let i = 0; i < CHURN_PER_SECOND; i++) {
    // the oldest process in a pod exits, a new one starts in a pod
    const gone = podPids.shift();
    rmSync(join(proc, String(gone)), { recursive: true, force: true });
    writeProcess(nextPid++, true);
  }
  writeNodeFiles();
  let text = "";
  for (let i = 0; i < 5; i++) text += `6,${kmsgSeq++},${Math.round(performance.now() * 1000)},-;eth0: link is fine ${second}.${i}\n`;
  if (second % 30 === 29) text += OOM_LINES;
  appendFileSync(kmsg, text);
}

// ---------------------------------------------------------------- the processes

const READLOOP = `
import { readdirSync, readFileSync } from "node:fs";
const [proc, cgroups] = process.argv.slice(2);
const usage = { process: [0, 0], memory: [0, 0], network: [0, 0] };
const timed = (name, fn) => {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  usage[name][0] += (d.user + d.system) / 1e6;
  usage[name][1]++;
};
const read = (p) => { try { return readFileSync(p, "utf8"); } catch { return ""; } };
const pods = [];
for (const qos of readdirSync(cgroups + "/kubepods.slice", { withFileTypes: true })) {
  if (!qos.isDirectory()) continue;
  for (const pod of readdirSync(cgroups + "/kubepods.slice/" + qos.name, { withFileTypes: true })) {
    if (pod.isDirectory()) pods.push(cgroups + "/kubepods.slice/" + qos.name + "/" + pod.name);
  }
}
const processPoll = () => timed("process", () => {
  for (const name of readdirSync(proc)) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    read(proc + "/" + name + "/stat");
    read(proc + "/" + name + "/cgroup");
  }
});
const memoryPoll = () => timed("memory", () => {
  read(proc + "/meminfo");
  for (const r of ["memory", "cpu", "io"]) read(proc + "/pressure/" + r);
  for (const pod of pods) {
    for (const dir of [pod, ...readdirSync(pod, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => pod + "/" + e.name)]) {
      read(dir + "/memory.current"); read(dir + "/memory.max"); read(dir + "/memory.events"); read(dir + "/cpu.stat");
    }
  }
});
const networkPoll = () => timed("network", () => {
  for (const f of ["snmp", "netstat", "dev", "sockstat"]) read(proc + "/net/" + f);
  read(proc + "/sys/net/netfilter/nf_conntrack_count");
  read(proc + "/sys/net/netfilter/nf_conntrack_max");
});
processPoll(); memoryPoll(); networkPoll();
setInterval(processPoll, 5000);
setInterval(memoryPoll, 10000);
setInterval(networkPoll, 15000);
process.on("SIGUSR1", () => console.log(JSON.stringify(usage)));
process.on("SIGUSR2", () => { for (const k in usage) usage[k] = [0, 0]; });
`;

const NATSLOOP = `
import { connect } from "${REPO}/node_modules/@nats-io/transport-node/index.js";
import { jetstream, jetstreamManager } from "${REPO}/node_modules/@nats-io/jetstream/lib/mod.js";
const nc = await connect({ servers: process.env.NATS_URL });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "IDLE_NATSLOOP", subjects: ["idle.natsloop.>"] }).catch(() => {});
const js = jetstream(nc);
const padding = "x".repeat(300);
let seq = 0;
const t0 = performance.now();
for (;;) {
  const due = Math.floor(((performance.now() - t0) / 1000) * 10);
  const acks = [];
  while (seq < due) {
    const e = { event_id: crypto.randomUUID(), timestamp: new Date().toISOString(), type: "synthetic.event", source: "natsloop", severity: "info", event_data: { custom: { seq: String(seq++), padding } } };
    acks.push(js.publish("idle.natsloop.synthetic", JSON.stringify(e), { msgID: e.event_id }));
  }
  await Promise.all(acks);
  await Bun.sleep(800);
}
`;

function compileScript(name: string, source: string): string {
  const file = join(work, `${name}.js`);
  writeFileSync(file, source);
  const out = join(work, name);
  const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", file, "--outfile", out], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`compiling ${name}: ${r.stderr}`);
  return out;
}

interface Case {
  name: string;
  what: string;
  /** the agent binary, when not the one measured */
  binary?: string;
  /** agent config (collectors and more), or a command */
  config?: string;
  command?: string[];
}

const collectorsYaml = (body: string) => `collectors:\n${body}`;
const NODE_PROC = `proc_root: ${proc}`;

function cases(): Case[] {
  return [
    { name: "bare", what: "bare Bun, setInterval(() => {}, 1000)", command: [compileScript("bare", "setInterval(() => {}, 1000);\n")] },
    { name: "readloop", what: "bare Bun reading the /proc collectors' files at their intervals", command: [compileScript("readloop", READLOOP), proc, join(sys, "fs/cgroup")] },
    { name: "natsloop", what: "bare Bun + nats.js: 10 events/s to JetStream, 8 every 0.8 s, acks awaited", command: [compileScript("natsloop", NATSLOOP)] },
    { name: "none", what: "agent, connected, no collector", config: "collectors: {}\n" },
    { name: "synthetic10", what: "agent, only synthetic at 10 events/s", config: collectorsYaml("  synthetic: { config: { rate: 10, payload_bytes: 512 } }\n") },
    { name: "process-host", what: "agent, only process, this machine's /proc, 5 s", config: collectorsYaml("  process: { config: { interval: 5s, containers_only: true } }\n") },
    { name: "process", what: "agent, only process, the node (400 procs), 5 s", config: collectorsYaml(`  process: { config: { ${NODE_PROC}, interval: 5s, containers_only: true } }\n`) },
    { name: "memory", what: "agent, only memory, the node (110 pods), 10 s", config: collectorsYaml(`  memory: { config: { ${NODE_PROC}, sys_root: ${sys}, interval: 10s } }\n`) },
    { name: "network", what: "agent, only network, the node, 15 s", config: collectorsYaml(`  network: { config: { ${NODE_PROC}, interval: 15s } }\n`) },
    { name: "kernel", what: "agent, only kernel: the node's kmsg file (5 records/s, an OOM kill every 30 s), vmstat", config: collectorsYaml(`  kernel: { config: { ${NODE_PROC}, kmsg_path: ${kmsg} } }\n`) },
    {
      name: "busy",
      what: "agent, process + memory + network + kernel on the node",
      config: collectorsYaml(
        `  process: { config: { ${NODE_PROC}, interval: 5s, containers_only: true } }\n` +
          `  memory: { config: { ${NODE_PROC}, sys_root: ${sys}, interval: 10s } }\n` +
          `  network: { config: { ${NODE_PROC}, interval: 15s } }\n` +
          `  kernel: { config: { ${NODE_PROC}, kmsg_path: ${kmsg} } }\n`,
      ),
    },
    { name: "default", what: "agent, configs/collectors.yaml (this machine)", config: "DEFAULT" },
  ];
}

function agentConfigFile(c: Case, natsUrl: string): string {
  const file = join(work, `${c.name}.yaml`);
  const port = freePort();
  const spool = join(work, `${c.name}-spool.db`);
  let text: string;
  if (c.config === "DEFAULT") {
    text = readFileSync(join(REPO, "configs/collectors.yaml"), "utf8");
  } else {
    text =
      `nats: { url: "${natsUrl}", mode: jetstream, subject: idle.${c.name.replace(/\W/g, "_")}, stream: { name: IDLE_${c.name.replace(/\W/g, "_").toUpperCase()} } }\n` +
      `spool: { path: ${spool} }\n` +
      c.config!;
  }
  text += `\nhttp: { listen: "127.0.0.1:${port}" }\n`;
  if (flags.extra && !c.binary) text = stringifyYaml(merge(parseYaml(text), parseYaml(flags.extra)));
  writeFileSync(file, text);
  return file;
}

function merge(a: any, b: any): any {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
  return out;
}

interface Running {
  c: Case;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  metricsUrl?: string;
  stdout: Promise<string>;
}

function agentCommand(config: string, c: Case): string[] {
  if (c.binary || !flags.source) return [c.binary ?? flags.binary ?? join(work, "tapio-collectors"), "run", "-c", config, "--log-level", "warn"];
  const prof = flags.prof ? ["--cpu-prof", `--cpu-prof-dir=${flags.prof}`, `--cpu-prof-name=${c.name}.cpuprofile`] : [];
  return [process.execPath, ...prof, join(REPO, "src/main.ts"), "run", "-c", config, "--log-level", "warn"];
}

/** collector -> [cpu seconds, rounds, wall seconds] from the agent's poll metrics. */
async function pollMetrics(url: string | undefined): Promise<Map<string, [number, number, number]>> {
  const out = new Map<string, [number, number, number]>();
  if (!url) return out;
  let text = "";
  try {
    text = await (await fetch(`${url}/metrics`)).text();
  } catch {
    return out;
  }
  const take = (re: RegExp, i: number) => {
    for (const m of text.matchAll(re)) {
      const entry = out.get(m[1]!) ?? [0, 0, 0];
      entry[i] = Number(m[2]);
      out.set(m[1]!, entry);
    }
  };
  take(/^orchestrator_collector_poll_cpu_seconds_total\{collector="([^"]+)"\} (\S+)$/gm, 0);
  take(/^orchestrator_collector_poll_seconds_count\{collector="([^"]+)"\} (\S+)$/gm, 1);
  take(/^orchestrator_collector_poll_seconds_sum\{collector="([^"]+)"\} (\S+)$/gm, 2);
  return out;
}

async function main(): Promise<void> {
  const only = flags.only?.split(",");
  const chosen = cases().filter((c) => !only || only.includes(c.name));
  if (flags.base) {
    // A copy written now, like the binary built now: the file-backed part of RSS depends on how
    // much of the executable the page cache holds (fault-around maps only cached pages).
    const base = join(work, "base-binary");
    copyFileSync(flags.base, base);
    chmodSync(base, 0o755);
    for (const c of [...chosen]) if (!c.command) chosen.push({ ...c, name: `${c.name}@base`, binary: base, config: c.config });
  }
  buildNode();
  if (!flags.source && !flags.binary) buildAgent(join(work, "tapio-collectors"));
  if (flags.prof) mkdirSync(flags.prof, { recursive: true });
  const nats = await startNatsServer();
  let second = 0;
  const churner = setInterval(() => churn(second++), 1000);
  const running: Running[] = [];
  try {
    for (const c of chosen) {
      const command = c.command ?? agentCommand(agentConfigFile(c, nats.url), c);
      const extra = !c.command && !c.binary && flags.env ? Object.fromEntries(flags.env.split(",").map((kv) => kv.split("=") as [string, string])) : {};
      const env = { ...process.env, NATS_URL: nats.url, TAPIO_SPOOL_PATH: join(work, `${c.name}-spool.db`), ...extra };
      const p = Bun.spawn(command, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env, cwd: work });
      const r: Running = { c, proc: p, stdout: new Response(p.stdout).text() };
      running.push(r);
      if (!c.command) {
        const port = /127\.0\.0\.1:(\d+)/.exec(readFileSync(join(work, `${c.name}.yaml`), "utf8").split("http:")[1]!)![1];
        r.metricsUrl = `http://127.0.0.1:${port}`;
      }
      void new Response(p.stderr).text().then((t) => t && process.stderr.write(`[${c.name} stderr] ${t.slice(0, 2000)}\n`));
    }
    await Bun.sleep(WARMUP * 1000);
    for (const r of running) {
      if (r.proc.exitCode === null) continue;
      throw new Error(`${r.c.name} exited ${r.proc.exitCode}:\n${(await r.stdout).slice(-3000)}`);
    }
    const start = new Map(running.map((r) => [r.c.name, cpuSeconds(r.proc.pid)]));
    const threads0 = new Map(running.map((r) => [r.c.name, threadCpu(r.proc.pid)]));
    running.find((r) => r.c.name === "readloop")?.proc.kill("SIGUSR2");
    const polls0 = new Map(await Promise.all(running.map(async (r) => [r.c.name, await pollMetrics(r.metricsUrl)] as const)));
    await Bun.sleep(SECONDS * 1000);
    const end = new Map(running.map((r) => [r.c.name, cpuSeconds(r.proc.pid)]));
    const threads1 = new Map(running.map((r) => [r.c.name, threadCpu(r.proc.pid)]));
    const polls1 = new Map(await Promise.all(running.map(async (r) => [r.c.name, await pollMetrics(r.metricsUrl)] as const)));
    const MiB = 1024 * 1024;
    const mem = new Map(running.map((r) => {
      const { rss, hwm } = memoryOf(r.proc.pid);
      return [r.c.name, { rss: rss / MiB, hwm: hwm / MiB }];
    }));
    // the readloop prints its per-poll usage on SIGUSR1
    const rl = running.find((r) => r.c.name === "readloop");
    rl?.proc.kill("SIGUSR1");
    await Bun.sleep(300);
    for (const r of running) r.proc.kill("SIGTERM");
    await Promise.all(running.map((r) => r.proc.exited));
    const readloop = rl && (JSON.parse((await rl.stdout).trim().split("\n").pop()!) as Record<string, [number, number]>);
    for (const r of running) {
      if (r === rl) continue;
      const out = await r.stdout;
      if (out.trim()) process.stderr.write(`[${r.c.name}] ${out.slice(0, 1500)}\n`);
    }

    const bare = running.find((r) => r.c.name === "bare");
    const bareCpu = bare ? end.get("bare")! - start.get("bare")! : undefined;
    const bareRss = bare ? mem.get("bare")!.rss : undefined;
    console.log(`\n${SECONDS} s window after ${WARMUP} s warm-up, ${flags.source ? "from source" : "compiled binary"}, ${new Date().toISOString()}\n`);
    console.log("| case | CPU s | % of a core | CPU s/hour | x bare | RSS MiB | peak MiB | RSS - bare | polls: CPU ms per poll (rounds) |");
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (const r of running) {
      const name = r.c.name;
      const cpu = end.get(name)! - start.get(name)!;
      const { rss, hwm } = mem.get(name)!;
      const polls: string[] = [];
      const p0 = polls0.get(name)!;
      for (const [collector, [cpu1, n1, wall1]] of polls1.get(name)!) {
        const [cpu0, n0, wall0] = p0.get(collector) ?? [0, 0, 0];
        const n = n1 - n0;
        if (n > 0) polls.push(`${collector} ${(((cpu1 - cpu0) / n) * 1000).toFixed(2)} (${n}, wall ${(((wall1 - wall0) / n) * 1000).toFixed(1)} ms)`);
      }
      if (name === "readloop" && readloop) {
        for (const [collector, [s, n]] of Object.entries(readloop)) if (n > 0) polls.push(`${collector} ${((s / n) * 1000).toFixed(2)} (${n})`);
      }
      console.log(
        `| ${name} | ${cpu.toFixed(2)} | ${((cpu / SECONDS) * 100).toFixed(3)}% | ${((cpu / SECONDS) * 3600).toFixed(1)} | ${bareCpu ? (cpu / bareCpu).toFixed(1) : ""} | ${rss.toFixed(1)} | ${hwm.toFixed(1)} | ${bareRss !== undefined ? (rss - bareRss).toFixed(1) : ""} | ${polls.join("; ")} |`,
      );
    }
    // Where each case's CPU went, by thread: the JavaScript thread, JSC's compiler and GC threads,
    // mimalloc's scavenger, and threads that started or ended within the window.
    const columns = [...THREAD_NAMES, "other", "ended"];
    console.log(`\nCPU s/hour by thread`);
    console.log(`| case | ${columns.join(" | ")} |`);
    console.log(`|---|${columns.map(() => "---:|").join("")}`);
    for (const r of running) {
      const name = r.c.name;
      const by = cpuByThread(threads0.get(name)!, threads1.get(name)!, end.get(name)! - start.get(name)!);
      console.log(`| ${name} | ${columns.map((c) => ((by[c]! / SECONDS) * 3600).toFixed(2)).join(" | ")} |`);
    }
    console.log("\ncases:");
    for (const r of running) console.log(`  ${r.c.name}: ${r.c.what}`);
  } finally {
    clearInterval(churner);
    for (const r of running) r.proc.kill("SIGKILL");
    await stopAllNatsServers();
    if (!flags.keep) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Samples, not the profile's time deltas: the sampler only samples while JS
 * runs, so in an idle process the gap before a sample is mostly sleep.
 */
function summarize(file: string): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const fromUs = Number(flags.from) * 1e6;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(REPO + "/", "")}${n.callFrame.lineNumber >= 0 ? `:${n.callFrame.lineNumber + 1}` : ""}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let counted = 0;
  let at = 0;
  for (const [i, id] of profile.samples.entries()) {
    at += profile.timeDeltas[i]!;
    if (at < fromUs) continue;
    const leaf = byId.get(id)!;
    if (/^\((idle|program|root|garbage collector)\)$/.test(leaf.callFrame.functionName)) continue;
    counted++;
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
    const seen = new Set<string>();
    const seenFiles = new Set<string>();
    for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const key = name(n);
      if (!seen.has(key)) total.set(key, (total.get(key) ?? 0) + 1);
      seen.add(key);
      const f = n.callFrame.url.replace(REPO + "/", "") || "(native)";
      if (!seenFiles.has(f)) files.set(f, (files.get(f) ?? 0) + 1);
      seenFiles.add(f);
    }
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  console.log(`${file}: ${counted} samples from ${flags.from} s on (of ${profile.samples.length}), ${(at / 1e6).toFixed(1)} s profiled`);
  console.log("\nself:");
  for (const [k, v] of top(self, 25)) console.log(`  ${String(v).padStart(6)}  ${k}`);
  console.log("\ntotal (inclusive):");
  for (const [k, v] of top(total, 40)) console.log(`  ${String(v).padStart(6)}  ${k}`);
  console.log("\nfiles on the stack:");
  for (const [k, v] of top(files, 25)) console.log(`  ${String(v).padStart(6)}  ${k}`);
}

if (flags.summarize) summarize(flags.summarize);
else await main();
