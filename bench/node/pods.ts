// The pods of the simulated node: 110 identities (uid, QoS, container ids,
// cgroup paths) shared by every fake, and the kubelet's /pods and
// /stats/summary grown from the recorded fixtures (24 and 17 pods of a real
// node, test/collectors/kubelet/testdata) to that many pods.
import { prng, type Json } from "../../test/collectors/kubeapi/fake-apiserver.ts";
import { PODS_JSON, STATS_JSON } from "../../test/collectors/kubelet/fake-kubelet.ts";

export const NODE_NAME = "bench-node-1";
export const POD_COUNT = 110;

export type Qos = "Guaranteed" | "Burstable" | "BestEffort";

export interface FakeContainer {
  name: string;
  /** 64 hex digits, as containerd names it */
  id: string;
  /** the container's cgroup below the cgroup root, v2 systemd driver: .../cri-containerd-<id>.scope */
  cgroup: string;
  /** the memory limit in bytes, or undefined for none ("max") */
  memoryLimit: number | undefined;
}

export interface FakePod {
  index: number;
  name: string;
  namespace: string;
  uid: string;
  qos: Qos;
  /** the pod's cgroup below the cgroup root */
  cgroup: string;
  /** the pause container */
  sandbox: FakeContainer;
  containers: FakeContainer[];
  /** the kubelet's Pod object (also what the fake API server lists) */
  object: Json;
}

const hex = (random: () => number, n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("");

function uuid(random: () => number): string {
  const h = hex(random, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** kubelet's systemd cgroup driver: kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid with _>.slice */
function podCgroup(uid: string, qos: Qos): string {
  const u = uid.replaceAll("-", "_");
  if (qos === "Guaranteed") return `/kubepods.slice/kubepods-pod${u}.slice`;
  const q = qos.toLowerCase();
  return `/kubepods.slice/kubepods-${q}.slice/kubepods-${q}-pod${u}.slice`;
}

const MEMORY_UNITS: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 };
function bytesOf(quantity: unknown): number | undefined {
  if (typeof quantity !== "string") return undefined;
  const m = /^(\d+)([KMG]i?)?$/.exec(quantity);
  return m ? Number(m[1]) * (m[2] ? MEMORY_UNITS[m[2]]! : 1) : undefined;
}

/**
 * 110 pods: the 24 recorded ones once each (their failed jobs, completed
 * cron jobs and the pod stuck in ContainerCreating included), the rest
 * copies of the recorded running pods. Deterministic (seeded).
 */
export function makePods(seed = 13): FakePod[] {
  const random = prng(seed);
  const recorded = (JSON.parse(PODS_JSON) as Json).items as Json[];
  const running = recorded.filter((p) => p.status?.phase === "Running" && p.status?.containerStatuses?.every((c: Json) => c.state?.running));
  const pods: FakePod[] = [];
  for (let i = 0; i < POD_COUNT; i++) {
    const copies = POD_COUNT - recorded.length;
    const template = i < copies ? running[i % running.length]! : recorded[i - copies]!;
    const object = structuredClone(template);
    const uid = uuid(random);
    const qos: Qos = object.status?.qosClass ?? "BestEffort";
    const cgroup = podCgroup(uid, qos);
    const base = String(object.metadata.generateName ?? `${object.metadata.name}-`);
    object.metadata.name = `${base}b${String(i).padStart(3, "0")}`;
    object.metadata.uid = uid;
    object.metadata.resourceVersion = String(1000 + i);
    object.spec.nodeName = NODE_NAME;
    const container = (name: string, limit: number | undefined): FakeContainer => {
      const id = hex(random, 64);
      return { name, id, cgroup: `${cgroup}/cri-containerd-${id}.scope`, memoryLimit: limit };
    };
    const containers = (object.spec.containers as Json[]).map((c) => container(String(c.name), bytesOf(c.resources?.limits?.memory)));
    for (const list of ["initContainerStatuses", "containerStatuses"]) {
      for (const status of (object.status?.[list] ?? []) as Json[]) {
        const match = containers.find((c) => c.name === status.name);
        if (match && status.containerID) status.containerID = `containerd://${match.id}`;
      }
    }
    pods.push({ index: i, name: object.metadata.name, namespace: object.metadata.namespace, uid, qos, cgroup, sandbox: container("pause", undefined), containers, object });
  }
  return pods;
}

/** The kubelet's /pods for these pods. */
export function podListJson(pods: readonly FakePod[]): string {
  const list = JSON.parse(PODS_JSON) as Json;
  list.items = pods.map((p) => p.object);
  return JSON.stringify(list);
}

/** The kubelet's /stats/summary for these pods: the recorded pods' stats, one per pod, cycled. */
export function statsSummaryJson(pods: readonly FakePod[]): string {
  const summary = JSON.parse(STATS_JSON) as Json;
  const recorded = summary.pods as Json[];
  summary.node.nodeName = NODE_NAME;
  summary.pods = pods.map((p, i) => {
    const stats = structuredClone(recorded[i % recorded.length]!);
    stats.podRef = { name: p.name, namespace: p.namespace, uid: p.uid };
    return stats;
  });
  return JSON.stringify(summary);
}
