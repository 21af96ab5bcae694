// What the collector lists and watches: this node's Pods and the Events about
// this node and its pods. Each set remembers just enough (uid and
// resourceVersion) to tell a re-list's news from what was already reported.
import type { EventInput, EventMetadata } from "../../event/event.ts";
import { list, num, obj, omitUndefined, str, type Json } from "../common/json.ts";

export type Change = "ADDED" | "MODIFIED" | "DELETED";

export interface ResourceSet {
  /** for health and parse errors: "pods", "events" */
  readonly name: string;
  /** the list and watch path, with its selector */
  readonly path: string;
  /** A full list: append events for what is new, changed or gone since the last one. */
  replace(items: readonly unknown[], out: EventInput[], bad: (detail: string) => void): void;
  /** One watch event. */
  apply(change: Change, object: Json, out: EventInput[], bad: (detail: string) => void): void;
}

/** Kubernetes resourceVersion of an object; "" for none (e.g. a static pod as the kubelet sees it). */
export function resourceVersion(object: Json): string {
  return str(obj(object.metadata)?.resourceVersion) ?? "";
}

interface KnownPod {
  readonly rv: string;
  /** the event_data.k8s_resource last reported, to report the pod's deletion after a re-list */
  readonly resource: Record<string, unknown>;
  readonly metadata: EventMetadata;
}

export class PodSet implements ResourceSet {
  readonly name = "pods";
  readonly path: string;
  readonly #known = new Map<string, KnownPod>();

  constructor(node: string) {
    this.path = `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`;
  }

  has(uid: string | undefined): boolean {
    return uid !== undefined && this.#known.has(uid);
  }

  replace(items: readonly unknown[], out: EventInput[], bad: (detail: string) => void): void {
    const listed = new Set<string>();
    for (let i = 0; i < items.length; i++) {
      const pod = podRecord(obj(items[i]));
      if (!pod) {
        bad(`item ${i} of the pod list is not a pod with metadata.uid`);
        continue;
      }
      const uid = pod.metadata.pod_uid!;
      listed.add(uid);
      const known = this.#known.get(uid);
      if (known?.rv === pod.rv) continue;
      this.#known.set(uid, pod);
      out.push(podEvent(known ? "MODIFIED" : "ADDED", pod));
    }
    // Gone while the watch was down (410 Gone means its DELETED was missed).
    for (const [uid, known] of this.#known) {
      if (listed.has(uid)) continue;
      this.#known.delete(uid);
      out.push(podEvent("DELETED", known));
    }
  }

  apply(change: Change, object: Json, out: EventInput[], bad: (detail: string) => void): void {
    const pod = podRecord(object);
    if (!pod) {
      bad(`${change} pod without metadata.uid`);
      return;
    }
    const uid = pod.metadata.pod_uid!;
    if (change === "DELETED") this.#known.delete(uid);
    else this.#known.set(uid, pod);
    out.push(podEvent(change, pod));
  }
}

function podRecord(pod: Json | undefined): KnownPod | undefined {
  const meta = obj(pod?.metadata);
  const uid = str(meta?.uid);
  if (!pod || !meta || !uid) return undefined;
  const status = obj(pod.status);
  const conditions: string[] = [];
  for (const c of list(status?.conditions)) {
    const condition = obj(c);
    const type = str(condition?.type);
    if (type) conditions.push(`${type}=${str(condition?.status) ?? "Unknown"}`);
  }
  let owner: Json | undefined;
  for (const ref of list(meta.ownerReferences)) {
    const o = obj(ref);
    if (o && (owner === undefined || o.controller === true)) owner = o;
  }
  const rv = resourceVersion(pod);
  const name = str(meta.name) ?? "";
  const namespace = str(meta.namespace);
  return {
    rv,
    resource: omitUndefined({
      api_version: "v1",
      kind: "Pod",
      name,
      namespace,
      uid,
      resource_version: rv,
      phase: str(status?.phase),
      conditions: conditions.length > 0 ? conditions : undefined,
      reason: str(status?.reason),
      message: str(status?.message),
      labels: stringMap(meta.labels),
      owner_kind: str(owner?.kind),
      owner_name: str(owner?.name),
    }),
    metadata: omitUndefined({ pod_name: name, pod_namespace: namespace, pod_uid: uid, node_name: str(obj(pod.spec)?.nodeName) }),
  };
}

function podEvent(change: Change, pod: KnownPod): EventInput {
  return {
    type: "k8s.pod",
    severity: change !== "DELETED" && pod.resource.phase === "Failed" ? "warning" : "info",
    // uid, version and change name one change of one pod: a replay (restart, re-list) deduplicates.
    event_id: `pod:${pod.metadata.pod_uid}:${pod.rv}:${change}`,
    event_data: { k8s_resource: { ...pod.resource, operation: change } },
    metadata: pod.metadata,
  };
}

/** Only string values: labels come from the API as JSON, which could hold anything. */
function stringMap(x: unknown): Record<string, string> | undefined {
  const o = obj(x);
  if (!o) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, value] of Object.entries(o)) {
    if (typeof value !== "string") continue;
    out[k] = value;
    any = true;
  }
  return any ? out : undefined;
}

/**
 * core/v1 Events about this node, its pods (by uid, or reported by this
 * node's kubelet), newer than the agent's start. The API cannot select Events
 * by node, so all are watched and filtered here.
 */
export class EventSet implements ResourceSet {
  readonly name = "events";
  readonly path = "/api/v1/events";
  readonly #node: string;
  readonly #pods: PodSet;
  /** Events carry second-precision times: compare at the agent's start second. */
  readonly #sinceMs: number;
  /** this node's Events by uid, with the resourceVersion last seen */
  #known = new Map<string, string>();

  constructor(node: string, pods: PodSet, sinceMs: number) {
    this.#node = node;
    this.#pods = pods;
    this.#sinceMs = Math.floor(sinceMs / 1000) * 1000;
  }

  replace(items: readonly unknown[], out: EventInput[], bad: (detail: string) => void): void {
    const known = new Map<string, string>();
    for (let i = 0; i < items.length; i++) {
      const ev = obj(items[i]);
      const uid = str(obj(ev?.metadata)?.uid);
      if (!ev || !uid) {
        bad(`item ${i} of the event list is not an Event with metadata.uid`);
        continue;
      }
      if (!this.#about(ev)) continue;
      const rv = resourceVersion(ev);
      known.set(uid, rv);
      const before = this.#known.get(uid);
      if (before !== rv && this.#recent(ev)) out.push(k8sEvent(before === undefined ? "ADDED" : "MODIFIED", ev, uid, rv, this.#node));
    }
    this.#known = known;
  }

  apply(change: Change, ev: Json, out: EventInput[], bad: (detail: string) => void): void {
    const uid = str(obj(ev.metadata)?.uid);
    if (!uid) {
      bad(`${change} Event without metadata.uid`);
      return;
    }
    // An Event's deletion is its expiry (TTL), not news.
    if (change === "DELETED") {
      this.#known.delete(uid);
      return;
    }
    if (!this.#about(ev)) return;
    const rv = resourceVersion(ev);
    if (this.#known.get(uid) === rv) return;
    this.#known.set(uid, rv);
    if (this.#recent(ev)) out.push(k8sEvent(change, ev, uid, rv, this.#node));
  }

  #about(ev: Json): boolean {
    const involved = obj(ev.involvedObject);
    const kind = str(involved?.kind);
    if (kind === "Node") return str(involved?.name) === this.#node;
    if (kind === "Pod" && this.#pods.has(str(involved?.uid))) return true;
    return str(obj(ev.source)?.host) === this.#node || str(ev.reportingInstance) === this.#node;
  }

  /** Happened (last) at or after the agent's start; an Event without any time counts as recent. */
  #recent(ev: Json): boolean {
    const last = Date.parse(eventTimes(ev).last ?? "");
    return Number.isNaN(last) || last >= this.#sinceMs;
  }
}

function eventTimes(ev: Json): { first: string | undefined; last: string | undefined } {
  const first = str(ev.firstTimestamp) ?? str(ev.eventTime) ?? str(obj(ev.metadata)?.creationTimestamp);
  const last = str(ev.lastTimestamp) ?? str(obj(ev.series)?.lastObservedTime) ?? str(ev.eventTime) ?? first;
  return { first, last };
}

// "spec.containers{app}": the container an Event is about.
const FIELD_PATH_CONTAINER = /^spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}$/;

function k8sEvent(change: Change, ev: Json, uid: string, rv: string, node: string): EventInput {
  const involved = obj(ev.involvedObject);
  const source = obj(ev.source);
  const { first, last } = eventTimes(ev);
  const aboutPod = involved?.kind === "Pod";
  const type = str(ev.type) ?? "Normal";
  return {
    type: "k8s.event",
    severity: type === "Warning" ? "warning" : "info",
    event_id: `event:${uid}:${rv}`,
    event_data: {
      k8s_event: omitUndefined({
        action: change,
        reason: str(ev.reason) ?? "",
        message: str(ev.message) ?? "",
        type,
        count: num(ev.count) ?? num(obj(ev.series)?.count) ?? 1,
        first_time: first,
        last_time: last,
        involved_object: omitUndefined({
          kind: str(involved?.kind) ?? "",
          name: str(involved?.name) ?? "",
          namespace: str(involved?.namespace),
          uid: str(involved?.uid) ?? "",
        }),
        source: omitUndefined({ component: str(source?.component) ?? str(ev.reportingComponent) ?? "", host: str(source?.host) }),
      }),
    },
    metadata: omitUndefined({
      pod_name: aboutPod ? str(involved?.name) : undefined,
      pod_namespace: aboutPod ? str(involved?.namespace) : undefined,
      pod_uid: aboutPod ? str(involved?.uid) : undefined,
      container_name: FIELD_PATH_CONTAINER.exec(str(involved?.fieldPath) ?? "")?.[1],
      node_name: node,
    }),
  };
}
