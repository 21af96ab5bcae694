// The agent's side of bench:node: its config pointed at the fake node, and
// a JetStream subscriber that counts what it published, by collector and
// against the events the fake node's activity must produce.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { DNS_NAME, NODE_NAME, type Expected, type FakeNode } from "./fake-node.ts";

export const NODE_COLLECTORS = ["kubelet", "kubeapi", "kernel", "memory", "process", "network", "dns"] as const;
export type NodeCollector = (typeof NODE_COLLECTORS)[number];
/** the collectors that poll files under proc_root / sys_root, with a read-loop baseline each */
export const PROC_COLLECTORS = ["process", "memory", "network"] as const satisfies readonly NodeCollector[];

/** Every interval of a collector at 1 s: many rounds in a short run, for CPU per round. */
const ONE_SECOND: Record<NodeCollector, Record<string, string>> = {
  kubelet: { pods_interval: "1s", stats_interval: "1s" },
  kubeapi: {},
  kernel: { read_interval: "1s", vmstat_interval: "1s" },
  memory: { interval: "1s" },
  process: { interval: "1s" },
  network: { interval: "1s" },
  dns: { interval: "1s" },
};

export interface NodeAgentConfig {
  node: FakeNode;
  natsUrl: string;
  subject: string;
  stream: string;
  dir: string;
  collectors: readonly NodeCollector[];
  /** the synthetic collector at this many events/s */
  synthetic?: number;
  /** every interval of the collectors at 1 s */
  oneSecond?: boolean;
  /** more keys per collector (the smoke test: emit_ok for dns) */
  extra?: Partial<Record<NodeCollector, Record<string, unknown>>>;
}

/**
 * The config file: JetStream, spool and HTTP on (as deployed), every
 * collector asked for pointed at the fake node and otherwise at its
 * defaults, as configs/collectors.yaml sets them (process: containers_only).
 * JSON is YAML.
 */
export function writeNodeConfig(c: NodeAgentConfig): string {
  const { node } = c;
  const f = node.files;
  const sections: Record<NodeCollector, Record<string, unknown>> = {
    kubelet: { address: node.kubelet.url, token_file: node.tokenFile, ca_file: node.caFile },
    kubeapi: { api_server: node.apiServer.url, token_file: node.tokenFile, ca_file: node.caFile, node_name: NODE_NAME },
    kernel: { kmsg_path: f.kmsgPath, proc_root: f.procRoot, node_name: NODE_NAME },
    memory: { proc_root: f.procRoot, sys_root: f.sysRoot, node_name: NODE_NAME },
    process: { proc_root: f.procRoot, containers_only: true },
    network: { proc_root: f.procRoot },
    dns: { names: [DNS_NAME], servers: [`127.0.0.1:${node.dns.port}`] },
  };
  const collectors: Record<string, unknown> = {};
  for (const name of c.collectors) {
    collectors[name] = { enabled: true, config: { ...sections[name], ...(c.oneSecond ? ONE_SECOND[name] : {}), ...c.extra?.[name] } };
  }
  if (c.synthetic !== undefined) collectors.synthetic = { enabled: true, config: { rate: c.synthetic } };
  const config = {
    orchestrator: { log_level: "info" },
    nats: { url: c.natsUrl, mode: "jetstream", subject: c.subject, stream: { name: c.stream } },
    spool: { path: join(c.dir, "spool.db") },
    http: { enabled: true, listen: "127.0.0.1:0" },
    collectors,
  };
  const file = join(c.dir, "agent.yaml");
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** How many of each kind of expected event arrived. */
export interface Found {
  oomKills: number;
  vmstatOomKills: number;
  cgroupOomKills: number;
  processStarts: number;
  processExits: number;
  podChanges: number;
  k8sEvents: number;
}

export interface EventCounter {
  /** events per collector (the last token of the subject) */
  readonly byCollector: Map<string, number>;
  /** how many of the expected events arrived, by kind */
  found(expected: Expected): Found;
  /** stops reading and deletes the stream */
  stop(): Promise<void>;
}

type Json = Record<string, any>;

/**
 * Creates the stream (the agent then finds it and publishes to it) and reads
 * it with an ordered consumer from its first message, as it fills.
 */
export async function startEventCounter(url: string, stream: string, subject: string): Promise<EventCounter> {
  const nc: NatsConnection = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const byCollector = new Map<string, number>();
  const oomPids: number[] = [];
  const pids = { start: new Set<number>(), exit: new Set<number>() };
  const ids = new Set<string>();
  let vmstatOomKills = 0;
  let cgroupOomKills = 0;
  const consumer = await jetstream(nc).consumers.get(stream);
  const messages: ConsumerMessages = await consumer.consume({
    callback: (m) => {
      const collector = m.subject.slice(m.subject.lastIndexOf(".") + 1);
      byCollector.set(collector, (byCollector.get(collector) ?? 0) + 1);
      const e = m.json<Json>();
      switch (e.type) {
        case "container.oom":
          oomPids.push(e.event_data?.kernel?.pid);
          break;
        case "kernel.oom_kill":
          vmstatOomKills += Number(e.event_data?.custom?.oom_kill_delta ?? 0);
          break;
        case "container.memory_pressure":
          if (e.event_data?.container?.action === "oom_kill") cgroupOomKills++;
          break;
        case "kernel.process": {
          const kind = e.event_data?.kernel?.event_type as "start" | "exit";
          pids[kind]?.add(e.event_data?.kernel?.pid);
          break;
        }
        case "k8s.pod":
        case "k8s.event":
          ids.add(e.event_id);
          break;
      }
    },
  });
  const count = <T>(have: Set<T> | T[], want: Iterable<T>) => {
    const set = have instanceof Set ? have : new Set(have);
    let n = 0;
    for (const x of want) if (set.has(x)) n++;
    return n;
  };
  return {
    byCollector,
    found: (x) => ({
      oomKills: count(oomPids, x.oomKills),
      vmstatOomKills,
      cgroupOomKills,
      processStarts: count(pids.start, x.processStarts),
      processExits: count(pids.exit, x.processExits),
      podChanges: count(ids, x.podChanges),
      k8sEvents: count(ids, x.k8sEvents),
    }),
    async stop() {
      messages.stop();
      await jsm.streams.delete(stream).catch(() => {});
      await nc.close();
    },
  };
}

/** The expected count of each kind in `Found`. */
export function expectedCounts(x: Expected): Found {
  const kills = x.oomKills.length;
  return {
    oomKills: kills,
    vmstatOomKills: kills,
    cgroupOomKills: kills,
    processStarts: x.processStarts.size,
    processExits: x.processExits.size,
    podChanges: x.podChanges.size,
    k8sEvents: x.k8sEvents.size,
  };
}

/** What is missing: expected minus found, per kind (only the kinds with something missing). */
export function missing(expected: Found, found: Found): Partial<Found> {
  const out: Partial<Found> = {};
  for (const k of Object.keys(expected) as Array<keyof Found>) if (found[k] < expected[k]) out[k] = expected[k] - found[k];
  return out;
}
