// The kubelet's /pods turned into events on change: it remembers what each
// container and pod looked like at the previous poll and reports only
// transitions, so a steady node produces no events at all.
import type { EventInput, EventMetadata, Severity } from "../../event/event.ts";
import { list, num, obj, omitUndefined, str, type Json } from "../common/json.ts";

export const POD_EVENT_TYPES = {
  waiting: "kubelet.container.waiting",
  terminated: "kubelet.container.terminated",
  restarted: "kubelet.container.restarted",
  crashLoop: "kubelet.container.crash_loop",
  notReady: "kubelet.pod.not_ready",
} as const;

export interface PodRules {
  /** a restart count above this is a crash loop */
  readonly crashLoopRestarts: number;
  readonly ignoreWaitingReasons: ReadonlySet<string>;
  readonly notReadyAfterMs: number;
}

// Init containers too: a failing init container keeps the whole pod from starting.
const STATUS_LISTS = ["initContainerStatuses", "containerStatuses"] as const;

interface ContainerTrack {
  /** the poll that last saw this container; older ones are forgotten */
  seen: number;
  waiting: string | undefined;
  restarts: number;
  /** ids of the terminations in lastState and state at the previous poll: each is reported once */
  lastTermination: string | undefined;
  currentTermination: string | undefined;
}

interface PodTrack {
  seen: number;
  notReadyReported: boolean;
  /** the sum of the containers' ephemeral-storage limits, as the kubelet's eviction counts it */
  readonly storageLimit: number | undefined;
  readonly containers: Map<string, ContainerTrack>;
}

interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string | undefined;
}

export class PodTracker {
  readonly #rules: PodRules;
  readonly #pods = new Map<string, PodTrack>();
  #poll = 0;

  constructor(rules: PodRules) {
    this.#rules = rules;
  }

  /** The pod's ephemeral-storage limit in bytes, if its containers set one. */
  storageLimit(podUid: string): number | undefined {
    return this.#pods.get(podUid)?.storageLimit;
  }

  /**
   * Compares a /pods response with the previous one and appends the events
   * for what changed to `out`. `bad` gets each part it cannot read; false
   * means the whole body is not a PodList.
   */
  update(body: unknown, nowMs: number, out: EventInput[], bad: (detail: string) => void): boolean {
    const items = obj(body)?.items;
    if (!Array.isArray(items) && items !== null) {
      bad("expected a PodList object with items");
      return false;
    }
    const poll = ++this.#poll;
    const now = new Date(nowMs).toISOString();
    const pods = list(items);
    for (let i = 0; i < pods.length; i++) {
      const pod = obj(pods[i]);
      const meta = obj(pod?.metadata);
      const uid = str(meta?.uid);
      if (!pod || !meta || !uid) {
        bad(`item ${i} is not a pod with metadata.uid`);
        continue;
      }
      const spec = obj(pod.spec);
      const status = obj(pod.status);
      const ref: PodRef = { namespace: str(meta.namespace) ?? "", name: str(meta.name) ?? "", uid, node: str(spec?.nodeName) };
      let track = this.#pods.get(uid);
      if (!track) {
        track = { seen: poll, notReadyReported: false, storageLimit: storageLimit(spec), containers: new Map() };
        this.#pods.set(uid, track);
      }
      track.seen = poll;
      for (const key of STATUS_LISTS) {
        for (const cs of list(status?.[key])) this.#container(ref, obj(cs), track.containers, poll, now, out, bad);
      }
      for (const [name, c] of track.containers) if (c.seen !== poll) track.containers.delete(name);
      this.#readiness(ref, meta, status, track, nowMs, now, out);
    }
    for (const [uid, p] of this.#pods) if (p.seen !== poll) this.#pods.delete(uid);
    return true;
  }

  #container(pod: PodRef, cs: Json | undefined, tracks: Map<string, ContainerTrack>, poll: number, now: string, out: EventInput[], bad: (detail: string) => void): void {
    const name = str(cs?.name);
    if (!cs || !name) {
      bad(`pod ${pod.namespace}/${pod.name} has a container status without a name`);
      return;
    }
    const restarts = num(cs.restartCount) ?? 0;
    let t = tracks.get(name);
    // First sight (agent start, new pod): the restart count is a baseline and
    // lastState is history, but a present condition (waiting, terminated,
    // crash loop) is reported.
    const first = t === undefined;
    if (!t) {
      t = { seen: poll, waiting: undefined, restarts, lastTermination: undefined, currentTermination: undefined };
      tracks.set(name, t);
    }
    t.seen = poll;

    const state = obj(cs.state);
    const waiting = obj(state?.waiting);
    const waitingReason = str(waiting?.reason) || undefined;
    const current = obj(state?.terminated);
    const last = obj(obj(cs.lastState)?.terminated);
    const currentId = current && terminationId(current);
    const lastId = last && terminationId(last);
    const looping = restarts > this.#rules.crashLoopRestarts;
    const grew = restarts > t.restarts;
    // In a crash loop the container cycles through CrashLoopBackOff, running
    // and terminated: one crash_loop event per restart says it all.
    const reportWaiting = waitingReason !== undefined && waitingReason !== t.waiting &&
      !this.#rules.ignoreWaitingReasons.has(waitingReason) && !(looping && waitingReason === "CrashLoopBackOff");
    const reportLoop = looping && (first || grew);
    // A restart between polls: its lastState says how the previous run ended.
    const lastEnded = !looping && grew && last !== undefined && unseen(t, lastId) && abnormal(last);
    const currentEnded = !looping && current !== undefined && unseen(t, currentId) && abnormal(current);
    t.waiting = waitingReason;
    t.restarts = restarts;
    t.lastTermination = lastId;
    t.currentTermination = currentId;
    if (!reportWaiting && !reportLoop && !grew && !currentEnded) return;

    const c: ContainerCase = { pod, cs, name, restarts, now };
    if (reportWaiting) {
      out.push(containerEvent(c, POD_EVENT_TYPES.waiting, "warning", "container_waiting", { status: "waiting", reason: waitingReason, message: str(waiting?.message) }, last));
    }
    if (reportLoop) {
      out.push(containerEvent(c, POD_EVENT_TYPES.crashLoop, "error", "crash_loop", { status: stateName(state), reason: waitingReason }, last ?? current));
    } else if (lastEnded) {
      out.push(terminatedEvent(c, last, undefined));
    } else if (grew) {
      out.push(containerEvent(c, POD_EVENT_TYPES.restarted, "low", "container_restarted", { status: stateName(state) }, last));
    }
    if (currentEnded) out.push(terminatedEvent(c, current, last));
  }

  /** A running pod that stays not ready past `notReadyAfterMs` is reported once, until it is ready again. */
  #readiness(pod: PodRef, meta: Json, status: Json | undefined, track: PodTrack, nowMs: number, now: string, out: EventInput[]): void {
    // Pods that ended or are being deleted are not ready by design.
    if (str(status?.phase) !== "Running" || meta.deletionTimestamp) {
      track.notReadyReported = false;
      return;
    }
    let ready: Json | undefined;
    for (const condition of list(status?.conditions)) {
      const cond = obj(condition);
      if (cond?.type === "Ready") ready = cond;
    }
    if (!ready) return;
    if (ready.status === "True") {
      track.notReadyReported = false;
      return;
    }
    if (track.notReadyReported) return;
    const since = str(ready.lastTransitionTime);
    const sinceMs = since ? Date.parse(since) : NaN;
    if (nowMs - sinceMs < this.#rules.notReadyAfterMs) return;
    track.notReadyReported = true;
    out.push({
      type: POD_EVENT_TYPES.notReady,
      severity: "warning",
      event_data: {
        kubelet: {
          event_type: "pod_not_ready",
          pod_lifecycle: omitUndefined({
            namespace: pod.namespace,
            pod: pod.name,
            condition: "Ready",
            status: str(ready.status),
            reason: str(ready.reason),
            message: str(ready.message),
            timestamp: since ?? now,
          }),
        },
      },
      metadata: podMetadata(pod),
    });
  }
}

interface ContainerCase {
  readonly pod: PodRef;
  readonly cs: Json;
  readonly name: string;
  readonly restarts: number;
  readonly now: string;
}

/**
 * `previous` is the run before (for last_exit_code and last_reason); `run`,
 * when the event is about one ended run, gives the time and container id.
 */
function containerEvent(c: ContainerCase, type: string, severity: Severity, eventType: string, fields: Record<string, unknown>, previous: Json | undefined, run?: Json): EventInput {
  const containerId = str(run?.containerID) ?? str(c.cs.containerID);
  return {
    type,
    severity,
    event_data: {
      kubelet: {
        event_type: eventType,
        pod_lifecycle: omitUndefined({
          namespace: c.pod.namespace,
          pod: c.pod.name,
          container: c.name,
          ...fields,
          restart_count: c.restarts,
          last_exit_code: previous && num(previous.exitCode),
          last_reason: previous && str(previous.reason),
          timestamp: str(run?.finishedAt) ?? c.now,
        }),
      },
    },
    metadata: omitUndefined({
      ...podMetadata(c.pod),
      container_name: c.name,
      container_id: containerId && bareId(containerId),
    }),
  };
}

function terminatedEvent(c: ContainerCase, run: Json, previous: Json | undefined): EventInput {
  const reason = str(run.reason);
  const fields = { status: "terminated", reason, message: str(run.message), exit_code: num(run.exitCode) };
  return containerEvent(c, POD_EVENT_TYPES.terminated, reason === "OOMKilled" ? "high" : "warning", "container_terminated", fields, previous, run);
}

/** "containerd://<id>" as "<id>": other collectors see the bare id (in cgroup paths). */
function bareId(id: string): string | undefined {
  const scheme = id.indexOf("://");
  return (scheme === -1 ? id : id.slice(scheme + 3)) || undefined;
}

function unseen(t: ContainerTrack, id: string | undefined): boolean {
  return id !== undefined && id !== t.lastTermination && id !== t.currentTermination;
}

/** One run of a container: its runtime id, or (without one) its times and exit. */
function terminationId(t: Json): string {
  return str(t.containerID) || `${str(t.startedAt) ?? ""}|${str(t.finishedAt) ?? ""}|${num(t.exitCode) ?? ""}|${str(t.reason) ?? ""}`;
}

function abnormal(t: Json): boolean {
  return t.reason === "OOMKilled" || (num(t.exitCode) ?? 0) !== 0;
}

function stateName(state: Json | undefined): string | undefined {
  if (!state) return undefined;
  if (state.running) return "running";
  if (state.waiting) return "waiting";
  if (state.terminated) return "terminated";
  return undefined;
}

function podMetadata(pod: PodRef): EventMetadata {
  return omitUndefined({ pod_name: pod.name, pod_namespace: pod.namespace, pod_uid: pod.uid, node_name: pod.node });
}

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;
const QUANTITY_SUFFIX: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** A Kubernetes quantity ("1Gi", "500M", "1e9") as a number, or undefined. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, amount = "", suffix] = match;
  return Number(amount) * (suffix ? (QUANTITY_SUFFIX[suffix] ?? 1) : 1);
}

function storageLimit(spec: Json | undefined): number | undefined {
  let total: number | undefined;
  for (const container of list(spec?.containers)) {
    const limit = str(obj(obj(obj(container)?.resources)?.limits)?.["ephemeral-storage"]);
    const quantity = limit === undefined ? undefined : parseQuantity(limit);
    // Whole bytes, rounded up as Kubernetes' Quantity.Value() does: "100m" is 1 byte, not 0.1
    // (available_bytes is a uint64 in Tapio's Go struct, which refuses a fraction).
    if (quantity !== undefined) total = (total ?? 0) + Math.ceil(quantity);
  }
  return total;
}
