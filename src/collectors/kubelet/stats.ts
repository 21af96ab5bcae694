// The kubelet's /stats/summary turned into threshold events: node CPU, node
// memory and each pod's ephemeral storage are reported when they cross above
// their threshold and again when they fall back, never while they stay put.
import type { EventInput } from "../../event/event.ts";
import { list, num, obj, omitUndefined, str, type Json } from "../common/json.ts";

export const STATS_EVENT_TYPES = {
  nodeCpu: "kubelet.node.cpu",
  nodeMemory: "kubelet.node.memory",
  ephemeralStorage: "kubelet.ephemeral.storage",
} as const;

export interface StatsRules {
  /** percentages; 0 turns a check off */
  readonly nodeCpuPercent: number;
  readonly nodeMemoryPercent: number;
  readonly ephemeralStoragePercent: number;
  readonly nodeCpuCores: number;
}

/**
 * A value above its threshold clears only below this share of it, so a value
 * hovering at the threshold does not report on every poll.
 */
const CLEAR_AT = 0.95;

/** Whether a value is above its threshold now, given whether it was: the state with hysteresis. */
function above(was: boolean, percent: number, threshold: number): boolean {
  if (threshold === 0) return false;
  return was ? percent >= threshold * CLEAR_AT : percent >= threshold;
}

/** Four significant digits: enough to compare with a threshold, and small ones do not round to 0. */
function short(x: number): number {
  return Number(x.toPrecision(4));
}

export class StatsTracker {
  readonly #rules: StatsRules;
  #cpuHigh = false;
  #memoryHigh = false;
  /** pods whose ephemeral storage is above the threshold, by uid, with the poll that last saw them */
  readonly #storageHigh = new Map<string, number>();
  #poll = 0;

  constructor(rules: StatsRules) {
    this.#rules = rules;
  }

  /**
   * Appends the events for thresholds crossed since the previous summary.
   * Every field of a summary may be missing on some kubelet version: a
   * missing one skips its check. False means the body is not a summary.
   */
  update(body: unknown, storageLimit: (podUid: string) => number | undefined, nowMs: number, out: EventInput[], bad: (detail: string) => void): boolean {
    const node = obj(obj(body)?.node);
    if (!node) {
      bad("expected a stats summary object with a node");
      return false;
    }
    const now = new Date(nowMs).toISOString();
    this.#node(node, now, out);
    const poll = ++this.#poll;
    const pods = list(obj(body)?.pods);
    for (let i = 0; i < pods.length; i++) {
      const pod = obj(pods[i]);
      const ref = obj(pod?.podRef);
      const uid = str(ref?.uid);
      if (!pod || !ref || !uid) {
        bad(`pod ${i} of the summary has no podRef.uid`);
        continue;
      }
      this.#storage(ref, uid, obj(pod["ephemeral-storage"]), storageLimit(uid), poll, str(node.nodeName), now, out);
    }
    for (const [uid, seen] of this.#storageHigh) if (seen !== poll) this.#storageHigh.delete(uid);
    return true;
  }

  #node(node: Json, now: string, out: EventInput[]): void {
    const rules = this.#rules;
    const cpu = obj(node.cpu);
    const memory = obj(node.memory);
    const nanoCores = num(cpu?.usageNanoCores);
    const workingSet = num(memory?.workingSetBytes);
    const available = num(memory?.availableBytes);

    if (nanoCores !== undefined && rules.nodeCpuCores > 0) {
      const percent = (nanoCores / (rules.nodeCpuCores * 1e9)) * 100;
      const high = above(this.#cpuHigh, percent, rules.nodeCpuPercent);
      if (high !== this.#cpuHigh) {
        this.#cpuHigh = high;
        out.push(nodeEvent(STATS_EVENT_TYPES.nodeCpu, "node_cpu", high, percent, rules.nodeCpuPercent, node, str(cpu?.time) ?? now));
      }
    }
    // The kubelet's own measure: memory.available = capacity - working set.
    if (workingSet !== undefined && available !== undefined && workingSet + available > 0) {
      const percent = (workingSet / (workingSet + available)) * 100;
      const high = above(this.#memoryHigh, percent, rules.nodeMemoryPercent);
      if (high !== this.#memoryHigh) {
        this.#memoryHigh = high;
        out.push(nodeEvent(STATS_EVENT_TYPES.nodeMemory, "node_memory", high, percent, rules.nodeMemoryPercent, node, str(memory?.time) ?? now));
      }
    }
  }

  #storage(ref: Json, uid: string, fs: Json | undefined, limit: number | undefined, poll: number, nodeName: string | undefined, now: string, out: EventInput[]): void {
    const used = num(fs?.usedBytes);
    const fsAvailable = num(fs?.availableBytes);
    if (used === undefined || fsAvailable === undefined) return;
    // Room left: up to the pod's limit (where the kubelet evicts it), or on
    // the filesystem when it has none.
    const available = limit === undefined ? fsAvailable : Math.max(0, Math.min(limit - used, fsAvailable));
    if (used + available === 0) return;
    const percent = (used / (used + available)) * 100;
    const was = this.#storageHigh.has(uid);
    const high = above(was, percent, this.#rules.ephemeralStoragePercent);
    if (high) this.#storageHigh.set(uid, poll);
    else if (was) this.#storageHigh.delete(uid);
    if (high === was) return;
    const namespace = str(ref.namespace) ?? "";
    const pod = str(ref.name) ?? "";
    out.push({
      type: STATS_EVENT_TYPES.ephemeralStorage,
      severity: high ? "warning" : "info",
      event_data: {
        kubelet: {
          event_type: "ephemeral_storage",
          storage_event: omitUndefined({
            namespace,
            pod,
            used_bytes: used,
            available_bytes: available,
            usage_percent: short(percent),
            timestamp: str(fs?.time) ?? now,
          }),
        },
        custom: omitUndefined({
          state: high ? "above" : "resolved",
          threshold_percent: String(this.#rules.ephemeralStoragePercent),
          limit_bytes: limit === undefined ? undefined : String(limit),
        }),
      },
      metadata: omitUndefined({ pod_name: pod, pod_namespace: namespace, pod_uid: uid, node_name: nodeName }),
    });
  }
}

function nodeEvent(type: string, eventType: string, high: boolean, percent: number, threshold: number, node: Json, time: string): EventInput {
  const cpu = obj(node.cpu);
  const memory = obj(node.memory);
  const nanoCores = num(cpu?.usageNanoCores) ?? 0;
  const nodeName = str(node.nodeName);
  return {
    type,
    severity: high ? "warning" : "info",
    event_data: {
      kubelet: {
        event_type: eventType,
        node_metrics: omitUndefined({
          node_name: nodeName ?? "",
          cpu_usage_nano: nanoCores,
          cpu_usage_milli: Math.round(nanoCores / 1e6),
          memory_usage: num(memory?.usageBytes),
          memory_available: num(memory?.availableBytes),
          memory_working_set: num(memory?.workingSetBytes),
          timestamp: time,
        }),
      },
      custom: { state: high ? "above" : "resolved", usage_percent: String(short(percent)), threshold_percent: String(threshold) },
    },
    metadata: omitUndefined({ node_name: nodeName }),
  };
}
