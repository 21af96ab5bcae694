// A simulated busy Kubernetes node in a temporary folder, for `npm run
// bench:node` and its smoke test: the files (files.ts), a kubelet over HTTPS
// and an API server with live watches (the test fakes, fed the grown
// fixtures of pods.ts), a DNS server, and what a busy node does: its
// counters move every second, its kernel logs 5 records a second, and, once
// `startActivity` is called, processes start and exit, an OOM kill now and
// then, pod changes and Events on the API server's watches. Every event the
// agent should publish for that activity is recorded in `expected`.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startFakeKubelet, type FakeKubelet } from "../../test/collectors/kubelet/fake-kubelet.ts";
import { startFakeApiServer, type FakeApiServer, type Json } from "../../test/collectors/kubeapi/fake-apiserver.ts";
import { startResponder, type Responder } from "../../test/collectors/dns/responder.ts";
import { testPki } from "../../test/helpers/tls.ts";
import { NodeFiles, type FakeProcess } from "./files.ts";
import { makePods, NODE_NAME, podListJson, statsSummaryJson, type FakePod } from "./pods.ts";

export { NODE_NAME };
export const DNS_NAME = "kubernetes.default.svc.cluster.local";
const TOKEN = "bench-node-token";

export interface Activity {
  /** process starts and as many exits per second */
  processChurnPerSecond: number;
  /** an OOM kill every this many seconds ... */
  oomEverySeconds: number;
  /** ... the first this long after the start */
  firstOomAfterSeconds: number;
  /** a pod change or an Event (alternately) on the API server's watches every this many seconds */
  watchChangeEverySeconds: number;
}

export const BUSY: Activity = { processChurnPerSecond: 2, oomEverySeconds: 30, firstOomAfterSeconds: 15, watchChangeEverySeconds: 3 };

/** What the agent must publish for the activity so far, by what identifies each event. */
export interface Expected {
  /** container.oom (kernel log), kernel.oom_kill (vmstat) and container.memory_pressure oom_kill (memory.events): one each per kill */
  oomKills: number[];
  processStarts: Set<number>;
  processExits: Set<number>;
  /** event_id of the k8s.pod events: pod:<uid>:<rv>:MODIFIED */
  podChanges: Set<string>;
  /** event_id of the k8s.event events: event:<uid>:<rv> */
  k8sEvents: Set<string>;
}

export interface FakeNode {
  readonly dir: string;
  readonly files: NodeFiles;
  readonly pods: readonly FakePod[];
  readonly kubelet: FakeKubelet;
  readonly apiServer: FakeApiServer;
  readonly dns: Responder;
  readonly tokenFile: string;
  readonly caFile: string;
  readonly expected: Expected;
  /** starts the activity that makes expected events */
  startActivity(activity?: Activity): void;
  stopActivity(): void;
  stop(): void;
}

/** Watch events in resourceVersion order; a watch gets those after its resourceVersion, then each new one as it comes. */
class WatchFeed {
  readonly #changes: Array<{ rv: number; line: string }> = [];
  #wake = Promise.withResolvers<void>();

  push(rv: number, type: "ADDED" | "MODIFIED", object: Json): void {
    this.#changes.push({ rv, line: JSON.stringify({ type, object }) });
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  async *follow(query: URLSearchParams, signal: AbortSignal): AsyncIterable<string> {
    let after = Number(query.get("resourceVersion") ?? 0);
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    while (!signal.aborted) {
      for (const c of this.#changes) {
        if (c.rv <= after) continue;
        after = c.rv;
        yield c.line;
      }
      await Promise.race([this.#wake.promise, aborted]);
    }
  }
}

/**
 * The node's proc and sys trees go to /dev/shm when there is one: memory,
 * like procfs and cgroupfs (on a disk, writing the 23,000 files of the
 * cgroup tree took seconds on a busy machine); the rest to `dir`.
 */
export async function startFakeNode(dir: string, opts: { rxErrorEverySeconds?: number } = {}): Promise<FakeNode> {
  mkdirSync(dir, { recursive: true });
  const pods = makePods();
  const filesDir = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/tapio-bench-node-") : join(dir, "node");
  // A flaky NIC: an rx error every 20 s (network.interface.errors), unless told otherwise.
  const files = new NodeFiles({ dir: filesDir, pods, rxErrorEverySeconds: opts.rxErrorEverySeconds ?? 20 });
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const caFile = testPki().caFile;

  const kubelet = startFakeKubelet(TOKEN);
  kubelet.answers.set("/pods", podListJson(pods));
  kubelet.answers.set("/stats/summary", statsSummaryJson(pods));

  // One resourceVersion sequence for both resources, as etcd has.
  let rv = 2000;
  const apiServer = startFakeApiServer({ token: TOKEN, tls: true });
  const feeds = { pods: new WatchFeed(), events: new WatchFeed() };
  const podObjects = pods.map((p) => p.object);
  apiServer.lists.pods = [{ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: String(rv) }, items: podObjects }];
  apiServer.lists.events = [{ kind: "EventList", apiVersion: "v1", metadata: { resourceVersion: String(rv) }, items: [] }];
  apiServer.watches.pods = [{ follow: (q, s) => feeds.pods.follow(q, s) }];
  apiServer.watches.events = [{ follow: (q, s) => feeds.events.follow(q, s) }];

  const dns = await startResponder("127.0.0.1", () => ({ addresses: ["10.96.0.1"] }));

  const expected: Expected = { oomKills: [], processStarts: new Set(), processExits: new Set(), podChanges: new Set(), k8sEvents: new Set() };
  const timers = new Set<ReturnType<typeof setInterval>>();
  // Always: the node's counters every second, the kernel's chatter 5 times a second.
  timers.add(setInterval(() => files.tick(), 1000));
  timers.add(setInterval(() => files.chatter(), 200));

  let changes = 0;
  const watchChange = () => {
    const pod = pods[(changes * 37) % pods.length]!;
    const next = ++rv;
    if (changes++ % 2 === 0) {
      // A readiness flap: the pod's Ready condition changes.
      const object = structuredClone(podObjects[pod.index]!);
      object.metadata.resourceVersion = String(next);
      object.metadata.annotations = { ...object.metadata.annotations, "bench/change": String(changes) };
      for (const c of object.status?.conditions ?? []) if (c.type === "Ready") c.status = changes % 4 === 1 ? "False" : "True";
      podObjects[pod.index] = object;
      feeds.pods.push(next, "MODIFIED", object);
      expected.podChanges.add(`pod:${pod.uid}:${next}:MODIFIED`);
    } else {
      const uid = crypto.randomUUID();
      const now = new Date().toISOString().slice(0, 19) + "Z";
      const container = pod.containers[0]!.name;
      feeds.events.push(next, "ADDED", {
        kind: "Event",
        apiVersion: "v1",
        metadata: { name: `${pod.name}.${uid.slice(0, 16)}`, namespace: pod.namespace, uid, resourceVersion: String(next), creationTimestamp: now },
        involvedObject: { kind: "Pod", namespace: pod.namespace, name: pod.name, uid: pod.uid, apiVersion: "v1", fieldPath: `spec.containers{${container}}` },
        reason: "Unhealthy",
        message: "Readiness probe failed: HTTP probe failed with statuscode: 503",
        source: { component: "kubelet", host: NODE_NAME },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        type: "Warning",
        reportingComponent: "kubelet",
        reportingInstance: NODE_NAME,
      });
      expected.k8sEvents.add(`event:${uid}:${next}`);
    }
  };

  const record = (p: FakeProcess, set: Set<number>) => set.add(p.pid);
  const oomKill = () => {
    const victim = files.oomVictim();
    files.oomKill(victim);
    expected.oomKills.push(victim.pid);
    record(victim, expected.processExits);
    // The container restarts.
    record(files.restart(victim), expected.processStarts);
  };

  const activity: Array<ReturnType<typeof setTimeout>> = [];
  const stopActivity = () => {
    for (const t of activity.splice(0)) clearInterval(t);
  };
  return {
    dir,
    files,
    pods,
    kubelet,
    apiServer,
    dns,
    tokenFile,
    caFile,
    expected,
    startActivity(a = BUSY) {
      const every = (seconds: number, fn: () => void) => activity.push(setInterval(fn, seconds * 1000));
      every(1 / a.processChurnPerSecond, () => {
        record(files.exitProcess(), expected.processExits);
        record(files.startProcess(), expected.processStarts);
      });
      activity.push(
        setTimeout(() => {
          oomKill();
          every(a.oomEverySeconds, oomKill);
        }, a.firstOomAfterSeconds * 1000),
      );
      every(a.watchChangeEverySeconds, watchChange);
    },
    stopActivity,
    stop() {
      stopActivity();
      for (const t of timers) clearInterval(t);
      kubelet.stop();
      apiServer.stop();
      dns.close();
      files.remove();
    },
  };
}
