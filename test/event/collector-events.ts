// Every event type of every collector, from real collector runs against the
// fixtures in test/collectors/*/testdata, encoded as the agent sends them.
// EMITS lists, per collector, the types its source can emit: a collector run
// below must produce each of them.
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { dnsFactory } from "../../src/collectors/dns/index.ts";
import { execFactory } from "../../src/collectors/exec/index.ts";
import { KernelCollector } from "../../src/collectors/kernel/index.ts";
import { KubeapiCollector } from "../../src/collectors/kubeapi/index.ts";
import { kubeapiConfigSchema } from "../../src/collectors/kubeapi/schema.ts";
import { KubeletCollector } from "../../src/collectors/kubelet/index.ts";
import { kubeletConfigSchema } from "../../src/collectors/kubelet/schema.ts";
import { MemoryCollector } from "../../src/collectors/memory/index.ts";
import { networkFactory } from "../../src/collectors/network/index.ts";
import { processFactory } from "../../src/collectors/process/index.ts";
import { syntheticFactory } from "../../src/collectors/synthetic/index.ts";
import { ingestFactory } from "../../src/collectors/ingest/index.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { freePort } from "../helpers/nats-server.ts";
import type { CollectorEvent } from "../../src/event/event.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { recordingContext, runInBackground, runOnce, type Recording } from "../helpers/collector-context.ts";
import { testPki } from "../helpers/tls.ts";
import { startResponder } from "../collectors/dns/responder.ts";
import { kernelConfig, OOM_6_18, TESTDATA as KERNEL_TESTDATA } from "../collectors/kernel/helpers.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { listOf, startFakeApiServer, WATCH_LINES, watchObject } from "../collectors/kubeapi/fake-apiserver.ts";
import { PODS_JSON, startFakeKubelet, tokenFile } from "../collectors/kubelet/fake-kubelet.ts";
import { program as execProgram } from "../collectors/exec/helpers.ts";
import { cgroupV2, CONTAINER_A, fakeProc as memoryProc, memoryConfig } from "../collectors/memory/helpers.ts";

export type CollectorName = "kernel" | "memory" | "kubelet" | "kubeapi" | "process" | "network" | "dns" | "synthetic" | "exec" | "ingest";

const registry = builtinRegistry();
/** What a collector declares it emits (its events.ts): the declarations are what these runs are checked against. */
const declared = (type: CollectorName): readonly string[] => Object.keys(registry.get(type)?.events?.types ?? {});

/**
 * The event types each collector emits: what it declares, and for exec and
 * ingest, whose types are their programs' and senders', those of the
 * samples run below.
 */
export const EMITS: Record<CollectorName, readonly string[]> = {
  kernel: declared("kernel"),
  memory: declared("memory"),
  kubelet: declared("kubelet"),
  kubeapi: declared("kubeapi"),
  process: declared("process"),
  network: declared("network"),
  dns: declared("dns"),
  synthetic: declared("synthetic"),
  // the sample node check's lines
  exec: ["node.check_failed", "node.check_ok", "container.check_failed"],
  // the ones sent below
  ingest: ["node.check_failed", "cni.setup"],
};

/** Waits until `rec` holds an event of each of `types` (a busy machine gets 15 s). */
const untilSeen = (rec: Recording, types: readonly string[]) =>
  waitFor(() => types.every((t) => rec.events.some((e) => e.type === t)), `events of types ${types.join(", ")}`, 15_000);

/** The OOM recording replayed (container.oom, and NPD's OOMKilling as kernel.problem), then /proc/vmstat's oom_kill growing. */
async function kernel(): Promise<CollectorEvent[]> {
  const proc = makeTempDir("go-kernel-proc");
  const vmstat = readFileSync(join(KERNEL_TESTDATA, "proc/vmstat"), "utf8");
  writeFileSync(join(proc, "vmstat"), vmstat);
  const run = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: OOM_6_18, replay: true, proc_root: proc, vmstat_interval: "20ms" })));
  await untilSeen(run.rec, ["container.oom", "kernel.problem"]);
  // The first vmstat round is the baseline: the counter grows only after it (the log's open is one healthy call, that round the second).
  await waitFor(() => run.rec.healthyCalls >= 2, "the first vmstat round", 15_000);
  writeFileSync(join(proc, "vmstat"), vmstat.replace(/^oom_kill (\d+)$/m, (_, n) => `oom_kill ${Number(n) + 2}`));
  await untilSeen(run.rec, ["kernel.oom_kill"]);
  await run.stop();
  return run.rec.events;
}

/** The procfs PSI and meminfo recordings under low thresholds, then a v2 pod cgroup's OOM kill and throttling. */
async function memory(): Promise<CollectorEvent[]> {
  const dir = makeTempDir("go-memory");
  const cg = cgroupV2(dir, [CONTAINER_A]);
  const low = { some_avg10: 0.1, full_avg10: 0.2 };
  const collector = new MemoryCollector(memoryConfig({ proc_root: memoryProc(dir, "procfs"), cgroup_root: cg.root, psi: { memory: low, cpu: low, io: low }, memory_available: { percent: 99 } }));
  const first = await runOnce(collector);
  const container = cg.dir("", CONTAINER_A);
  writeFileSync(join(container, "memory.events"), "low 0\nhigh 4\nmax 10\noom 1\noom_kill 1\noom_group_kill 0\n");
  writeFileSync(join(container, "cpu.stat"), "usage_usec 9\nuser_usec 0\nsystem_usec 0\nnr_periods 100\nnr_throttled 50\nthrottled_usec 2500\nnr_bursts 0\nburst_usec 0\n");
  const second = await runOnce(collector);
  return [...first.events, ...second.events];
}

/** The recorded /pods and /stats/summary under low thresholds, then /pods with a crash loop, a pull back-off and a clean restart. */
async function kubelet(): Promise<CollectorEvent[]> {
  const fake = startFakeKubelet("token");
  try {
    const config = v.parse(kubeletConfigSchema, {
      address: fake.url,
      token_file: tokenFile("token").path,
      ca_file: testPki().caFile,
      pods_interval: "50ms",
      stats_interval: "50ms",
      node_cpu_cores: 1,
      node_cpu_percent: 50,
      node_memory_percent: 10,
      ephemeral_storage_percent: 0.001,
    });
    const run = runInBackground(new KubeletCollector(config));
    await untilSeen(run.rec, ["kubelet.pod.not_ready", "kubelet.ephemeral.storage"]);
    const pods = JSON.parse(PODS_JSON);
    const status = (name: string) => pods.items.find((p: { metadata: { name: string } }) => p.metadata.name === name).status.containerStatuses[0];
    const looping = status("e2e-container-creating");
    looping.restartCount = 4;
    looping.lastState = { terminated: { exitCode: 1, reason: "Error", startedAt: "2026-06-26T10:14:00Z", finishedAt: "2026-06-26T10:14:10Z", containerID: "containerd://run4" } };
    looping.state = { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" } };
    status("e2e-statefulset-1").state = { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "nope:1"' } };
    const restarted = status("e2e-hpa-6cd8d99884-tggnr");
    restarted.restartCount = 1;
    restarted.lastState = { terminated: { exitCode: 0, reason: "Completed", startedAt: "2026-06-26T10:13:00Z", finishedAt: "2026-06-26T10:20:00Z", containerID: "containerd://run1" } };
    fake.answers.set("/pods", JSON.stringify(pods));
    await untilSeen(run.rec, EMITS.kubelet);
    await run.stop();
    return run.rec.events;
  } finally {
    fake.stop();
  }
}

/** --once: the recorded pods as a list, and Events about one of them and about the node. */
async function kubeapi(): Promise<CollectorEvent[]> {
  const node = "datagen-1-35";
  const server = startFakeApiServer({ token: "api-token", tls: true });
  try {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const pods = WATCH_LINES.map((_, i) => i).filter((i) => JSON.parse(WATCH_LINES[i]!).type === "ADDED").map(watchObject);
    server.lists.pods.push(listOf("PodList", pods, "900"));
    const event = (name: string, involvedObject: Record<string, string>, fields: Record<string, unknown>) => ({
      metadata: { name, namespace: "scraper", uid: `uid-${name}`, resourceVersion: "901", creationTimestamp: now },
      involvedObject,
      count: 3,
      firstTimestamp: "2026-06-26T10:14:30Z",
      lastTimestamp: now,
      source: { component: "kubelet", host: node },
      ...fields,
    });
    const pod = pods[0]!.metadata;
    server.lists.events.push(
      listOf(
        "EventList",
        [
          event("backoff", { kind: "Pod", namespace: pod.namespace, name: pod.name, uid: pod.uid, fieldPath: "spec.containers{app}" }, { reason: "BackOff", message: "Back-off restarting failed container", type: "Warning" }),
          event("pressure", { kind: "Node", name: node, uid: node }, { reason: "NodeHasDiskPressure", message: "Node has disk pressure", type: "Normal", firstTimestamp: null, eventTime: "2026-06-26T10:14:30.123456Z", count: undefined, series: { count: 2, lastObservedTime: "2026-06-26T10:14:31.654321Z" } }),
        ],
        "902",
      ),
    );
    const config = v.parse(kubeapiConfigSchema, { api_server: server.url, token_file: tokenFile("api-token").path, ca_file: testPki().caFile, node_name: node });
    return (await runOnce(new KubeapiCollector(config))).events;
  } finally {
    server.stop();
  }
}

/** A /proc with the procfs fixture's btime: a baseline, two processes start (one over the cap), they exit. */
async function processes(): Promise<CollectorEvent[]> {
  const fixtures = join(import.meta.dir, "../collectors/process/testdata/procfs/proc");
  const root = makeTempDir("go-proc");
  cpSync(join(fixtures, "stat"), join(root, "stat"));
  const collector = processFactory.create(v.parse(processFactory.configSchema, { proc_root: root, max_events_per_poll: 1 }));
  const rec = recordingContext();
  await collector.run(rec.ctx);
  for (const pid of ["26231", "27079"]) cpSync(join(fixtures, pid), join(root, pid), { recursive: true });
  await collector.run(rec.ctx);
  for (const pid of ["26231", "27079"]) rmSync(join(root, pid), { recursive: true });
  await collector.run(rec.ctx);
  return rec.events;
}

/** The recorded net files: conntrack near its limit at the first poll; then every counter grows and conntrack recovers. */
async function network(): Promise<CollectorEvent[]> {
  const fixtures = join(import.meta.dir, "../collectors/network/testdata/local/proc");
  const root = makeTempDir("go-net");
  cpSync(join(fixtures, "net"), join(root, "net"), { recursive: true });
  cpSync(join(fixtures, "sys/net/netfilter"), join(root, "sys/net/netfilter"), { recursive: true });
  const count = join(root, "sys/net/netfilter/nf_conntrack_count");
  writeFileSync(count, "250000\n");
  const collector = networkFactory.create(v.parse(networkFactory.configSchema, { proc_root: root }));
  const rec = recordingContext();
  await collector.run(rec.ctx);
  grow(join(root, "net/snmp"), "Tcp", { RetransSegs: 100, OutSegs: 1000 });
  grow(join(root, "net/netstat"), "TcpExt", { ListenOverflows: 7, ListenDrops: 7 });
  const dev = join(root, "net/dev");
  // eth0's rx_errs, the third number after the colon
  writeFileSync(dev, readFileSync(dev, "utf8").replace(/^(\s*eth0:\s*\d+\s+\d+\s+)(\d+)/m, (_, head, errs) => `${head}${Number(errs) + 50}`));
  writeFileSync(count, "1000\n");
  await collector.run(rec.ctx);
  return rec.events;
}

/** Adds to counters of a snmp/netstat section (a header line of names, then one of values). */
function grow(path: string, section: string, add: Record<string, number>): void {
  const lines = readFileSync(path, "utf8").split("\n");
  const at = lines.findIndex((l) => l.startsWith(`${section}: `));
  const names = lines[at]!.split(" ");
  const values = lines[at + 1]!.split(" ");
  for (const [name, n] of Object.entries(add)) values[names.indexOf(name)] = String(Number(values[names.indexOf(name)]) + n);
  lines[at + 1] = values.join(" ");
  writeFileSync(path, lines.join("\n"));
}

/** Probes against a loopback responder: an answer (emit_ok), NXDOMAIN, and silence. */
async function dns(): Promise<CollectorEvent[]> {
  const responder = await startResponder("127.0.0.1", (q) => {
    const label = q.name.split(".")[0];
    if (label === "ok") return { addresses: ["10.96.0.1", "10.96.0.2"] };
    if (label === "silent") return { silent: true };
    return { rcode: 3 };
  });
  try {
    const names = ["ok.probe.test", "nx.probe.test", "silent.probe.test"];
    const collector = dnsFactory.create(v.parse(dnsFactory.configSchema, { names, servers: [`127.0.0.1:${responder.port}`], emit_ok: true, timeout: "300ms" }));
    const rec = recordingContext();
    await collector.run(rec.ctx);
    return rec.events;
  } finally {
    responder.close();
  }
}

async function synthetic(): Promise<CollectorEvent[]> {
  return (await runOnce(syntheticFactory.create(v.parse(syntheticFactory.configSchema, { count: 2, rate: 0 })))).events;
}

/** A sample node check (test/collectors/exec/testdata/nodecheck.ndjson) run once by the test program. */
async function exec(): Promise<CollectorEvent[]> {
  const sample = join(import.meta.dir, "../collectors/exec/testdata/nodecheck.ndjson");
  const rec = await runOnce(execFactory.create(v.parse(execFactory.configSchema, { command: execProgram("cat", sample) })));
  if (rec.parseErrors.length > 0) throw new Error(`the sample's lines were refused: ${JSON.stringify(rec.parseErrors)}`);
  return rec.events;
}

/** Two events POSTed to the API, with every kind of member a sender may set. */
async function ingest(): Promise<CollectorEvent[]> {
  const listen = `127.0.0.1:${await freePort()}`;
  const run = runInBackground(ingestFactory.create(v.parse(ingestFactory.configSchema, { listen })));
  try {
    const body = [
      {
        source: "node-check",
        type: "node.check_failed",
        severity: "warning",
        timestamp: "2026-11-25T12:00:00.123456789Z",
        event_data: { custom: { check: "disk", detail: "92% used" } },
        metadata: { node_name: "n1", pid: 42, priority: "high", tags: ["disk"], labels: { team: "infra" }, attributes: { script: "check.sh" } },
        k8s_context: { node_name: "n1", namespace: "kube-system", labels: { app: "x" } },
        correlation_hints: { node_name: "n1" },
      },
      { source: "cni.calico", type: "cni.setup", event_data: { network: { protocol: "tcp", src_ip: "10.0.0.1", dst_ip: "10.0.0.2", src_port: 1, dst_port: 2 } } },
    ];
    // (a refused connection sent nothing: trying again until it listens sends each event once)
    let response: Response | undefined;
    await waitFor(async () => (response = await fetch(`http://${listen}/v1/events`, { method: "POST", body: JSON.stringify(body) }).catch(() => undefined)) !== undefined, "the ingest API answering");
    if (response!.status !== 202) throw new Error(`ingest answered ${response!.status} ${await response!.text()}`);
  } finally {
    await run.stop();
  }
  return run.rec.events;
}

export const PRODUCE: Record<CollectorName, () => Promise<CollectorEvent[]>> = { kernel, memory, kubelet, kubeapi, process: processes, network, dns, synthetic, exec, ingest };
