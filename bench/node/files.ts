// The file side of the simulated node: a proc_root with 400 processes and
// the node-wide files the memory, network and kernel collectors read, a
// sys_root cgroup v2 tree (systemd driver) for the pods, and a kmsg file.
// Files are written whole and renamed into place, and process directories
// are built aside and renamed in, so a reader never sees half of one (as
// with procfs). The shapes come from recorded files in test/collectors/*/testdata.
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prng } from "../../test/collectors/kubeapi/fake-apiserver.ts";
import type { FakeContainer, FakePod } from "./pods.ts";

const TESTDATA = join(import.meta.dir, "../../test/collectors");
const recorded = (path: string) => readFileSync(join(TESTDATA, path), "utf8");

/** a worker lives workers / (exits per second) seconds: at 2 a second, 10 s, two polls of the process collector */
const MIN_WORKERS = 10;
/** USER_HZ: stat's times are in these ticks */
const HZ = 100;
/** PF_KTHREAD | PF_NOFREEZE | ... as a kworker shows them; PF_KTHREAD is what marks a kernel thread */
const KTHREAD_FLAGS = 69238880;
/** pods whose first container runs at 95% of its memory limit */
const NEAR_LIMIT_PODS = [5, 45, 85];
const USER_FLAGS = 4194560;

export interface FakeProcess {
  pid: number;
  ppid: number;
  comm: string;
  args: string[];
  /** the cgroup v2 path (0::<path>) */
  cgroup: string;
  kernel: boolean;
  /** clock ticks after boot */
  startTicks: number;
  /** a worker of a container: these start and exit (churn) and are the OOM victims */
  worker?: FakeContainer;
}

const KERNEL_THREADS = [
  "kthreadd", "pool_workqueue_release", "kworker/R-rcu_g", "kworker/R-rcu_p", "kworker/R-slub_", "kworker/R-netns", "kworker/0:0H-events_highpri",
  "kworker/u4:0-events_unbound", "kworker/R-mm_pe", "rcu_tasks_kthread", "rcu_tasks_rude_kthread", "rcu_tasks_trace_kthread", "ksoftirqd/0",
  "rcu_preempt", "migration/0", "idle_inject/0", "cpuhp/0", "cpuhp/1", "idle_inject/1", "migration/1", "ksoftirqd/1", "kworker/1:0H-events_highpri",
  "kdevtmpfs", "kworker/R-inet_", "kauditd", "khungtaskd", "oom_reaper", "kworker/R-write", "kcompactd0", "ksmd", "khugepaged", "kworker/R-kinte",
  "kworker/R-kbloc", "kworker/R-blkcg", "irq/9-acpi", "kworker/R-tpm_d", "kworker/R-md", "kworker/R-edac-", "watchdogd", "kworker/0:1H-kblockd",
  "kswapd0", "ecryptfs-kthread", "kworker/R-kthro", "kworker/R-acpi_", "scsi_eh_0", "kworker/R-scsi_", "jbd2/vda1-8", "kworker/R-ext4-", "kworker/1:1H-kblockd",
];
/** 30 kernel threads, 19 host daemons and systemd, then per pod a shim, a pause process and each container's main process (330 for 110 pods): 20 workers make 400 */
const KERNEL_THREAD_COUNT = 30;
const HOST_DAEMONS: Array<[string, string[], string]> = [
  ["systemd-journal", ["/usr/lib/systemd/systemd-journald"], "/system.slice/systemd-journald.service"],
  ["systemd-udevd", ["/usr/lib/systemd/systemd-udevd"], "/system.slice/systemd-udevd.service"],
  ["systemd-network", ["/usr/lib/systemd/systemd-networkd"], "/system.slice/systemd-networkd.service"],
  ["systemd-resolve", ["/usr/lib/systemd/systemd-resolved"], "/system.slice/systemd-resolved.service"],
  ["systemd-timesyn", ["/usr/lib/systemd/systemd-timesyncd"], "/system.slice/systemd-timesyncd.service"],
  ["dbus-daemon", ["@dbus-daemon", "--system", "--address=systemd:", "--nofork", "--nopidfile", "--systemd-activation", "--syslog-only"], "/system.slice/dbus.service"],
  ["systemd-logind", ["/usr/lib/systemd/systemd-logind"], "/system.slice/systemd-logind.service"],
  ["rsyslogd", ["/usr/sbin/rsyslogd", "-n", "-iNONE"], "/system.slice/rsyslog.service"],
  ["chronyd", ["/usr/sbin/chronyd", "-F", "1"], "/system.slice/chrony.service"],
  ["sshd", ["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"], "/system.slice/ssh.service"],
  ["agetty", ["/sbin/agetty", "-o", "-p -- \\u", "--noclear", "-", "linux"], "/system.slice/system-getty.slice/getty@tty1.service"],
  ["containerd", ["/usr/bin/containerd"], "/system.slice/containerd.service"],
  ["kubelet", ["/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml", "--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--node-ip=10.0.12.7"], "/system.slice/kubelet.service"],
  ["multipathd", ["/sbin/multipathd", "-d", "-s"], "/system.slice/multipathd.service"],
  ["polkitd", ["/usr/lib/polkit-1/polkitd", "--no-debug"], "/system.slice/polkit.service"],
  ["unattended-upgr", ["/usr/bin/python3", "/usr/share/unattended-upgrades/unattended-upgrade-shutdown", "--wait-for-signal"], "/system.slice/unattended-upgrades.service"],
  ["cron", ["/usr/sbin/cron", "-f", "-P"], "/system.slice/cron.service"],
  ["atd", ["/usr/sbin/atd", "-f"], "/system.slice/atd.service"],
  ["node_exporter", ["/usr/local/bin/node_exporter", "--path.rootfs=/host"], "/system.slice/node-exporter.service"],
];
/** what the containers' workers run: command lines of the sort exec probes and worker pools leave */
const WORKERS: string[][] = [
  ["/bin/sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/healthz"],
  ["php-fpm: pool www"],
  ["/usr/local/bin/python", "-m", "celery", "worker", "--concurrency=1"],
  ["nginx: worker process"],
  ["/bin/grpc_health_probe", "-addr=:9090"],
];
/** Non-pid entries of a real /proc: listed by readdir like the pids, and skipped by the collectors. */
const PROC_ENTRIES = [
  "acpi", "bootconfig", "buddyinfo", "bus", "cgroups", "cmdline", "consoles", "cpuinfo", "crypto", "devices", "diskstats", "dma", "driver",
  "dynamic_debug", "execdomains", "fb", "filesystems", "fs", "interrupts", "iomem", "ioports", "irq", "kallsyms", "kcore", "key-users", "keys",
  "kmsg", "kpagecgroup", "kpagecount", "kpageflags", "loadavg", "locks", "mdstat", "misc", "modules", "mounts", "mtrr", "pagetypeinfo",
  "partitions", "schedstat", "scsi", "self", "slabinfo", "softirqs", "swaps", "sysrq-trigger", "sysvipc", "thread-self", "timer_list", "tty",
  "version", "vmallocinfo", "zoneinfo",
];
/** The files of a cgroup v2 directory (kernel 6.x, all controllers enabled); the collectors read four of them. */
const CGROUP_FILES = [
  "cgroup.controllers", "cgroup.events", "cgroup.freeze", "cgroup.kill", "cgroup.max.depth", "cgroup.max.descendants", "cgroup.pressure",
  "cgroup.procs", "cgroup.stat", "cgroup.subtree_control", "cgroup.threads", "cgroup.type", "cpu.idle", "cpu.max", "cpu.max.burst",
  "cpu.pressure", "cpu.stat.local", "cpu.uclamp.max", "cpu.uclamp.min", "cpu.weight", "cpu.weight.nice", "cpuset.cpus",
  "cpuset.cpus.effective", "cpuset.cpus.exclusive", "cpuset.cpus.exclusive.effective", "cpuset.cpus.partition", "cpuset.mems",
  "cpuset.mems.effective", "hugetlb.2MB.current", "hugetlb.2MB.events", "hugetlb.2MB.events.local", "hugetlb.2MB.max", "hugetlb.2MB.numa_stat",
  "hugetlb.2MB.rsvd.current", "hugetlb.2MB.rsvd.max", "io.max", "io.pressure", "io.prio.class", "io.stat", "io.weight", "memory.events.local",
  "memory.high", "memory.low", "memory.min", "memory.numa_stat", "memory.oom.group", "memory.peak", "memory.pressure", "memory.reclaim",
  "memory.stat", "memory.swap.current", "memory.swap.events", "memory.swap.high", "memory.swap.max", "memory.swap.peak", "memory.zswap.current",
  "memory.zswap.max", "memory.zswap.writeback", "misc.current", "misc.events", "misc.max", "pids.current", "pids.events", "pids.max", "pids.peak",
  "rdma.current", "rdma.max",
];

/** "Name: values" / "Name: numbers" line pairs (net/snmp, net/netstat), with counters to advance. */
class CounterTable {
  readonly #rows: Array<{ prefix: string; names: string[]; values: number[] }> = [];

  constructor(text: string) {
    const lines = text.trimEnd().split("\n");
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [prefix, ...names] = lines[i]!.split(" ");
      const values = lines[i + 1]!.split(" ").slice(1).map(Number);
      this.#rows.push({ prefix: prefix!, names, values });
    }
  }

  add(prefix: string, name: string, by: number): void {
    const row = this.#rows.find((r) => r.prefix === `${prefix}:`);
    const at = row?.names.indexOf(name) ?? -1;
    if (row && at >= 0) row.values[at]! += by;
  }

  text(): string {
    return this.#rows.map((r) => `${r.prefix} ${r.names.join(" ")}\n${r.prefix} ${r.values.join(" ")}\n`).join("");
  }
}

export interface NodeFilesOptions {
  dir: string;
  pods: readonly FakePod[];
  /** processes in proc_root at all times */
  processes?: number;
  seed?: number;
}

/** Builds the trees under `dir` and keeps them as a node's kernel would. */
export class NodeFiles {
  readonly procRoot: string;
  readonly sysRoot: string;
  readonly cgroupRoot: string;
  readonly kmsgPath: string;
  readonly #dir: string;
  readonly #staging: string;
  readonly #random: () => number;
  readonly #pods: readonly FakePod[];
  readonly #bootSeconds: number;
  readonly processes = new Map<number, FakeProcess>();
  /** workers, oldest first: the next to exit */
  readonly #workers: FakeProcess[] = [];
  /** the containers' main processes, the workers' parents */
  readonly #apps: Array<{ c: FakeContainer; pid: number }> = [];
  #nextPid = 100_000;
  #kmsgSeq = 1000;
  /** seconds ticked */
  #tick = 0;
  /** kernel records of chatter written */
  #chatter = 0;
  readonly #snmp = new CounterTable(recorded("network/testdata/local/proc/net/snmp"));
  readonly #netstat = new CounterTable(recorded("network/testdata/local/proc/net/netstat"));
  readonly #vmstat = new Map(recorded("kernel/testdata/proc/vmstat").trimEnd().split("\n").map((l) => l.split(" ") as [string, string]).map(([k, v]) => [k, Number(v)]));
  readonly #meminfo = recorded("memory/testdata/local/meminfo");
  /** interface -> 16 counters of net/dev */
  readonly #interfaces = new Map<string, number[]>();
  readonly #events = new Map<string, Map<string, number>>();
  readonly #rxErrorsEvery: number;
  #conntrack = 41_000;

  constructor(opts: NodeFilesOptions & { rxErrorEverySeconds?: number }) {
    this.#dir = opts.dir;
    this.#pods = opts.pods;
    this.#random = prng(opts.seed ?? 7);
    this.procRoot = join(opts.dir, "proc");
    this.sysRoot = join(opts.dir, "sys");
    this.cgroupRoot = join(this.sysRoot, "fs/cgroup");
    this.kmsgPath = join(opts.dir, "kmsg");
    this.#staging = join(opts.dir, "staging");
    this.#rxErrorsEvery = opts.rxErrorEverySeconds ?? 0;
    // Up three days: the processes started at various times since.
    this.#bootSeconds = Math.floor(Date.now() / 1000) - 3 * 86_400;
    for (const d of [this.procRoot, this.cgroupRoot, this.#staging, join(this.procRoot, "pressure"), join(this.procRoot, "net"), join(this.procRoot, "sys/net/netfilter")]) {
      mkdirSync(d, { recursive: true });
    }
    this.#buildCgroups();
    this.#buildProcesses(opts.processes ?? 400);
    for (const name of PROC_ENTRIES) writeFileSync(join(this.procRoot, name), "");
    const dev = ["lo", "eth0", "cni0", "flannel.1", ...opts.pods.map((p) => `veth${p.uid.slice(0, 8)}`)];
    for (const name of dev) this.#interfaces.set(name, Array.from({ length: 16 }, (_, i) => (i % 8 < 2 ? Math.floor(this.#random() * 1e9) : 0)));
    writeFileSync(join(this.procRoot, "stat"), recorded("process/testdata/local/proc/stat").replace(/^btime \d+$/m, `btime ${this.#bootSeconds}`));
    writeFileSync(join(this.procRoot, "net/sockstat"), recorded("network/testdata/local/proc/net/sockstat"));
    writeFileSync(join(this.procRoot, "sys/net/netfilter/nf_conntrack_max"), "262144\n");
    writeFileSync(this.kmsgPath, "");
    this.tick();
  }

  /** Seconds since the fake boot, as /proc/uptime says. */
  uptime(): number {
    return Date.now() / 1000 - this.#bootSeconds;
  }

  #write(path: string, text: string): void {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }

  // ------------------------------------------------------------- cgroups

  #buildCgroups(): void {
    const root = this.cgroupRoot;
    writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
    for (const name of ["cgroup.procs", "cgroup.stat", "cgroup.subtree_control", "cpu.stat", "memory.stat", "io.stat", "cpu.pressure", "memory.pressure", "io.pressure"]) writeFileSync(join(root, name), "");
    for (const slice of ["system.slice", "user.slice", "init.scope", "kubepods.slice", "kubepods.slice/kubepods-burstable.slice", "kubepods.slice/kubepods-besteffort.slice"]) {
      this.#cgroupDir(slice, undefined, 0);
    }
    for (const pod of this.#pods) {
      const containers = [pod.sandbox, ...pod.containers];
      // A few containers run close to their limit, as on any busy node (a usage_high event each at the first poll).
      const nearLimit = NEAR_LIMIT_PODS.includes(pod.index);
      if (nearLimit) pod.containers[0]!.memoryLimit ??= 256 * 1048576;
      let podUsage = 0;
      for (const c of containers) {
        const limit = c.memoryLimit;
        let usage = c === pod.sandbox ? 450_560 : Math.floor((20 + this.#random() * 200) * 1048576);
        if (limit !== undefined) usage = nearLimit && c === pod.containers[0] ? Math.floor(limit * 0.95) : Math.min(usage, Math.floor(limit * 0.5));
        podUsage += usage;
        this.#cgroupDir(c.cgroup, limit, usage);
      }
      const podLimit = pod.qos === "Guaranteed" ? containers.reduce((n, c) => n + (c.memoryLimit ?? 0), 0) || undefined : undefined;
      this.#cgroupDir(pod.cgroup, podLimit, podUsage);
    }
  }

  #cgroupDir(path: string, limit: number | undefined, usage: number): void {
    const dir = join(this.cgroupRoot, path);
    mkdirSync(dir, { recursive: true });
    for (const name of CGROUP_FILES) writeFileSync(join(dir, name), "");
    writeFileSync(join(dir, "memory.current"), `${usage}\n`);
    writeFileSync(join(dir, "memory.max"), limit === undefined ? "max\n" : `${limit}\n`);
    const periods = Math.floor(this.#random() * 100_000);
    // Without the core_sched.force_idle_usec line of CONFIG_SCHED_CORE kernels: the memory collector cannot parse it (yet).
    writeFileSync(
      join(dir, "cpu.stat"),
      `usage_usec ${Math.floor(this.#random() * 1e10)}\nuser_usec ${Math.floor(this.#random() * 5e9)}\nsystem_usec ${Math.floor(this.#random() * 5e9)}\n` +
        `nr_periods ${periods}\nnr_throttled ${Math.floor(periods / 50)}\nthrottled_usec ${periods * 40}\nnr_bursts 0\nburst_usec 0\n`,
    );
    const events = new Map([["low", 0], ["high", 0], ["max", 0], ["oom", 0], ["oom_kill", 0], ["oom_group_kill", 0]]);
    this.#events.set(path, events);
    this.#writeEvents(path);
  }

  #writeEvents(path: string): void {
    const text = [...this.#events.get(path)!].map(([k, v]) => `${k} ${v}\n`).join("");
    this.#write(join(this.cgroupRoot, path, "memory.events"), text);
  }

  // ----------------------------------------------------------- processes

  #buildProcesses(total: number): void {
    const now = Math.floor(this.uptime() * HZ);
    const early = () => 300 + Math.floor(this.#random() * 2000);
    const some = () => Math.floor(this.#random() * now * 0.9);
    this.#add({ pid: 1, ppid: 0, comm: "systemd", args: ["/sbin/init"], cgroup: "/init.scope", kernel: false, startTicks: 2 });
    KERNEL_THREADS.slice(0, KERNEL_THREAD_COUNT).forEach((comm, i) => this.#add({ pid: i + 2, ppid: i === 0 ? 0 : 2, comm: comm.slice(0, 15), args: [], cgroup: "/", kernel: true, startTicks: early() }));
    let pid = 400;
    for (const [comm, args, cgroup] of HOST_DAEMONS) this.#add({ pid: (pid += 1 + Math.floor(this.#random() * 30)), ppid: 1, comm, args, cgroup, kernel: false, startTicks: early() + 500 });
    const apps = this.#apps;
    for (const pod of this.#pods) {
      const started = some();
      const shim = (pid += 1 + Math.floor(this.#random() * 40));
      this.#add({ pid: shim, ppid: 1, comm: "containerd-shim", args: ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", pod.sandbox.id, "-address", "/run/containerd/containerd.sock"], cgroup: "/system.slice/containerd.service", kernel: false, startTicks: started });
      this.#add({ pid: (pid += 1), ppid: shim, comm: "pause", args: ["/pause"], cgroup: pod.sandbox.cgroup, kernel: false, startTicks: started + 20 });
      for (const c of pod.containers) {
        const main = (pid += 1 + Math.floor(this.#random() * 5));
        this.#add({ pid: main, ppid: shim, comm: c.name.slice(0, 15), args: [`/usr/local/bin/${c.name}`, "--config=/etc/app/config.yaml"], cgroup: c.cgroup, kernel: false, startTicks: started + 80 });
        apps.push({ c, pid: main });
      }
    }
    // The rest are workers in the containers: these start and exit.
    const workers = total - this.processes.size;
    if (workers < MIN_WORKERS) throw new Error(`fake node: ${this.processes.size} processes before the workers leave room for ${workers} of ${total}, fewer than ${MIN_WORKERS}`);
    for (let i = 0; i < workers; i++) this.#startWorker(apps[Math.floor(this.#random() * apps.length)]!, some());
  }

  #add(p: FakeProcess): void {
    this.processes.set(p.pid, p);
    const dir = join(this.#staging, String(p.pid));
    mkdirSync(dir);
    const stat = recorded("process/testdata/local/proc/pid-stat.txt").trimEnd().split(" ");
    const close = stat.findIndex((f) => f.endsWith(")"));
    const rest = stat.slice(close + 1);
    rest[0] = "S";
    rest[1] = String(p.ppid);
    rest[2] = String(p.pid);
    rest[3] = String(p.pid);
    rest[6] = String(p.kernel ? KTHREAD_FLAGS : USER_FLAGS);
    rest[19] = String(p.startTicks);
    writeFileSync(join(dir, "stat"), `${p.pid} (${p.comm}) ${rest.join(" ")}\n`);
    writeFileSync(join(dir, "status"), statusText(p));
    writeFileSync(join(dir, "cmdline"), p.args.map((a) => `${a}\0`).join(""));
    writeFileSync(join(dir, "cgroup"), `0::${p.cgroup}\n`);
    if (!p.kernel) symlinkSync(p.args[0]?.startsWith("/") ? p.args[0] : "/usr/bin/true", join(dir, "exe"));
    renameSync(dir, join(this.procRoot, String(p.pid)));
  }

  #startWorker(app: { c: FakeContainer; pid: number }, startTicks: number): FakeProcess {
    const args = WORKERS[Math.floor(this.#random() * WORKERS.length)]!;
    const comm = (args[0]!.includes(" ") ? args[0]!.split(":")[0]! : args[0]!.split("/").at(-1)!).slice(0, 15);
    const p: FakeProcess = { pid: (this.#nextPid += 1 + Math.floor(this.#random() * 20)), ppid: app.pid, comm, args, cgroup: app.c.cgroup, kernel: false, startTicks, worker: app.c };
    this.#add(p);
    this.#workers.push(p);
    return p;
  }

  /** A new worker in a random container; returns it. */
  startProcess(): FakeProcess {
    const app = this.#apps[Math.floor(this.#random() * this.#apps.length)]!;
    return this.#startWorker(app, Math.floor(this.uptime() * HZ));
  }

  /** The oldest worker exits (or `victim`); returns it. */
  exitProcess(victim = this.#workers[0]): FakeProcess {
    if (!victim) throw new Error("fake node: no worker left to exit");
    const worker = this.#workers.indexOf(victim);
    if (worker >= 0) this.#workers.splice(worker, 1);
    this.processes.delete(victim.pid);
    const gone = join(this.#staging, `gone-${victim.pid}`);
    renameSync(join(this.procRoot, String(victim.pid)), gone);
    rmSync(gone, { recursive: true, force: true });
    return victim;
  }

  // ---------------------------------------------------------- the kernel

  /** Appends kmsg records (`level,seq,usec,-;message`). */
  kmsg(messages: Array<[level: number, text: string]>): void {
    const usec = Math.floor(this.uptime() * 1e6);
    appendFileSync(this.kmsgPath, messages.map(([level, text], i) => `${level},${this.#kmsgSeq++},${usec + i},-;${text}\n`).join(""));
  }

  /** One kernel log line of the kind a busy node writes all day (veths come and go, bridges learn ports). */
  chatter(): void {
    const pod = this.#pods[Math.floor(this.#random() * this.#pods.length)]!;
    const veth = `veth${pod.uid.slice(0, 8)}`;
    const port = 1 + (pod.index % 120);
    const lines = [
      `cni0: port ${port}(${veth}) entered blocking state`,
      `cni0: port ${port}(${veth}) entered disabled state`,
      `${veth}: entered allmulticast mode`,
      `${veth}: entered promiscuous mode`,
      `cni0: port ${port}(${veth}) entered forwarding state`,
      `IPv6: ADDRCONF(NETDEV_CHANGE): ${veth}: link becomes ready`,
    ];
    this.kmsg([[6, lines[this.#chatter++ % lines.length]!]]);
  }

  /**
   * An OOM kill of `victim` by its container's memory limit: the recorded
   * report of a real kill (test/collectors/kernel/testdata, Linux 6.18) with
   * the victim's pid, command and memory cgroup; the counters move as the
   * kernel moves them (vmstat oom_kill, memory.events of the container and
   * the pod), and the process is gone.
   */
  oomKill(victim: FakeProcess): void {
    const report = recorded("kernel/testdata/kmsg/oom-memcg-v1-kernel-6.18.kmsg").trimEnd().split("\n");
    this.kmsg(
      report.map((line) => {
        const m = /^(\d+),\d+,\d+,[^;]*;(.*)$/.exec(line)!;
        const text = m[2]!.replaceAll("/oomtest", victim.cgroup).replaceAll("6854", String(victim.pid)).replaceAll("python3", victim.comm);
        return [Number(m[1]) & 7, text];
      }),
    );
    this.#vmstat.set("oom_kill", (this.#vmstat.get("oom_kill") ?? 0) + 1);
    const container = victim.cgroup;
    const pod = container.slice(0, container.lastIndexOf("/"));
    for (const path of [container, pod]) {
      const events = this.#events.get(path);
      if (!events) continue;
      for (const key of ["max", "oom", "oom_kill"]) events.set(key, events.get(key)! + 1);
      this.#writeEvents(path);
    }
    this.exitProcess(victim);
    this.#write(join(this.procRoot, "vmstat"), this.#vmstatText());
  }

  /** The container of a killed main process starts again: a new main process; returns it. */
  restart(killed: FakeProcess): FakeProcess {
    const app = this.#apps.find((a) => a.pid === killed.pid)!;
    const p: FakeProcess = { ...killed, pid: (this.#nextPid += 1 + Math.floor(this.#random() * 20)), startTicks: Math.floor(this.uptime() * HZ) };
    this.#add(p);
    app.pid = p.pid;
    return p;
  }

  /** A container's main process to kill: it has run long enough for every poll to know it (a young worker may not have been seen yet). */
  oomVictim(): FakeProcess {
    const app = this.#apps[Math.floor(this.#random() * this.#apps.length)]!;
    return this.processes.get(app.pid)!;
  }

  #vmstatText(): string {
    return [...this.#vmstat].map(([k, v]) => `${k} ${v}\n`).join("");
  }

  /** One second of a busy node: counters advance, memory and pressure move a little. */
  tick(): void {
    const r = this.#random;
    this.#tick++;
    this.#snmp.add("Ip", "InReceives", 2000 + Math.floor(r() * 400));
    this.#snmp.add("Ip", "InDelivers", 2000 + Math.floor(r() * 400));
    this.#snmp.add("Ip", "OutRequests", 1900 + Math.floor(r() * 400));
    this.#snmp.add("Tcp", "InSegs", 1800 + Math.floor(r() * 300));
    this.#snmp.add("Tcp", "OutSegs", 1800 + Math.floor(r() * 300));
    this.#snmp.add("Tcp", "ActiveOpens", 10 + Math.floor(r() * 5));
    this.#snmp.add("Tcp", "PassiveOpens", 10 + Math.floor(r() * 5));
    if (r() < 0.3) this.#snmp.add("Tcp", "RetransSegs", 1);
    this.#snmp.add("Udp", "InDatagrams", 50 + Math.floor(r() * 20));
    this.#snmp.add("Udp", "OutDatagrams", 50 + Math.floor(r() * 20));
    this.#netstat.add("TcpExt", "DelayedACKs", 20 + Math.floor(r() * 10));
    this.#netstat.add("TcpExt", "TCPHPHits", 400 + Math.floor(r() * 100));
    this.#netstat.add("IpExt", "InOctets", 2_000_000 + Math.floor(r() * 400_000));
    this.#netstat.add("IpExt", "OutOctets", 1_800_000 + Math.floor(r() * 400_000));
    for (const [name, c] of this.#interfaces) {
      const busy = name === "lo" ? 0.2 : name.startsWith("veth") ? 0.02 : 1;
      c[0]! += Math.floor(busy * (2e6 + r() * 4e5));
      c[1]! += Math.floor(busy * (1500 + r() * 300));
      c[8]! += Math.floor(busy * (1.8e6 + r() * 4e5));
      c[9]! += Math.floor(busy * (1400 + r() * 300));
    }
    // A flaky NIC: an rx error now and then (a network.interface.errors event at the next poll).
    if (this.#rxErrorsEvery > 0 && this.#tick % this.#rxErrorsEvery === 0) this.#interfaces.get("eth0")![2]! += 1;
    for (const [k, by] of [["pgfault", 20_000], ["pgalloc_normal", 15_000], ["pgfree", 15_000], ["pgpgin", 40], ["pgpgout", 400], ["numa_hit", 15_000], ["numa_local", 15_000]] as const) {
      this.#vmstat.set(k, (this.#vmstat.get(k) ?? 0) + Math.floor(by * (0.8 + r() * 0.4)));
    }
    this.#conntrack = Math.max(30_000, Math.min(60_000, this.#conntrack + Math.floor(r() * 600) - 300));

    const available = Math.floor(24015576 * (0.55 + r() * 0.02));
    const meminfo = this.#meminfo
      .replace(/^MemFree:\s+\d+/m, `MemFree:        ${Math.floor(available * 0.4)}`)
      .replace(/^MemAvailable:\s+\d+/m, `MemAvailable:   ${available}`);
    const psi = (some: number, full: number | undefined, total: number) => {
      const line = (kind: string, avg: number) => `${kind} avg10=${avg.toFixed(2)} avg60=${(avg * 0.9).toFixed(2)} avg300=${(avg * 0.8).toFixed(2)} total=${total + this.#tick * 1000}\n`;
      return line("some", some) + (full === undefined ? "" : line("full", full));
    };
    this.#write(join(this.procRoot, "meminfo"), meminfo);
    this.#write(join(this.procRoot, "pressure/memory"), psi(r() * 2, r() * 0.5, 5_056_028));
    this.#write(join(this.procRoot, "pressure/cpu"), psi(5 + r() * 10, 0, 142_278_255));
    this.#write(join(this.procRoot, "pressure/io"), psi(r() * 3, r(), 24_192));
    this.#write(join(this.procRoot, "vmstat"), this.#vmstatText());
    this.#write(join(this.procRoot, "uptime"), `${this.uptime().toFixed(2)} ${(this.uptime() * 1.6).toFixed(2)}\n`);
    this.#write(join(this.procRoot, "net/snmp"), this.#snmp.text());
    this.#write(join(this.procRoot, "net/netstat"), this.#netstat.text());
    this.#write(join(this.procRoot, "net/dev"), this.#netDevText());
    this.#write(join(this.procRoot, "sys/net/netfilter/nf_conntrack_count"), `${this.#conntrack}\n`);
  }

  #netDevText(): string {
    const head =
      "Inter-|   Receive                                                |  Transmit\n" +
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
    return head + [...this.#interfaces].map(([name, c]) => `${name.padStart(6)}: ${c.join(" ")}\n`).join("");
  }

  /** Removes everything under the node's directory. */
  remove(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

function statusText(p: FakeProcess): string {
  const vm = p.kernel ? "" : "VmPeak:\t   58472 kB\nVmSize:\t   58440 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t    8028 kB\nVmRSS:\t    6716 kB\nRssAnon:\t    2092 kB\nRssFile:\t    4624 kB\nRssShmem:\t       0 kB\nVmData:\t    2580 kB\nVmStk:\t     136 kB\nVmExe:\t     948 kB\nVmLib:\t    6816 kB\nVmPTE:\t     128 kB\nVmSwap:\t       0 kB\n";
  return (
    `Name:\t${p.comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t${p.pid}\nNgid:\t0\nPid:\t${p.pid}\nPPid:\t${p.ppid}\nTracerPid:\t0\n` +
    `Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\nNStgid:\t${p.pid}\nNSpid:\t${p.pid}\nNSpgid:\t${p.pid}\nNSsid:\t${p.pid}\nKthread:\t${p.kernel ? 1 : 0}\n` +
    vm +
    `HugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\nThreads:\t1\nSigQ:\t0/95705\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n` +
    `SigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180004002\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n` +
    `CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n` +
    `Speculation_Store_Bypass:\tthread vulnerable\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\n` +
    `voluntary_ctxt_switches:\t${1000 + (p.pid % 997)}\nnonvoluntary_ctxt_switches:\t${p.pid % 113}\n`
  );
}
