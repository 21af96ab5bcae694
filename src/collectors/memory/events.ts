// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, optional, struct, type FieldDecl } from "../../event/declare.ts";

const psi = (resource: string) => struct("avg10 avg60 avg300 total_us threshold_avg10", { source: is("psi"), resource: is(resource), kind: is("some", "full"), state: is("pressure", "recovered") });
const PSI_DESCRIPTION = "pressure stall (PSI avg10) crossed its threshold (state pressure) or fell back below it (recovered)";
const cgroupCounters = "oom_kill_delta? oom_group_kill_delta? oom_delta? max_delta? failcnt_delta? high_delta? low_delta?";
const psiEvent = (resource: string, custom: FieldDecl = psi(resource)) => ({
  description: `The node's ${resource} ${PSI_DESCRIPTION}.`,
  severities: ["warning", "high", "info"] as const,
  event_data: { custom },
});

export const memoryEvents = declareEvents("memory", {
  "node.memory_pressure": {
    ...psiEvent("memory"),
    description: `The node's memory ${PSI_DESCRIPTION}; or MemAvailable fell to memory_available (source meminfo; estimated when the kernel has no MemAvailable).`,
    // PSI's fields or meminfo's, as custom.source says.
    event_data: {
      custom: struct(
        "avg10? avg60? avg300? total_us? threshold_avg10? kind? mem_total_bytes? mem_available_bytes? available_percent? threshold_percent? threshold_bytes? estimated?",
        { source: is("psi", "meminfo"), resource: optional(is("memory")), state: is("pressure", "recovered") },
      ),
    },
  },
  "node.cpu_pressure": psiEvent("cpu"),
  "node.io_pressure": psiEvent("io"),
  "container.memory_pressure": {
    description:
      "A pod's or container's memory counter grew (action: the worst of them; custom: each counter's delta), its usage crossed cgroup_memory_percent of its limit (usage_high, usage_normal), or it went under OOM (under_oom, oom_resolved). container_id is empty for a pod-level cgroup.",
    severities: ["error", "high", "warning", "medium", "low", "info"],
    event_data: {
      container: struct("container_id runtime?", {
        state: is("running"),
        action: is("oom_kill", "oom_group_kill", "oom", "max", "failcnt", "high", "low", "usage_high", "usage_normal", "under_oom", "oom_resolved"),
      }),
      custom: struct(`cgroup_path ${cgroupCounters} usage_bytes? limit_bytes? usage_percent? threshold_percent?`),
    },
  },
  "container.cpu_throttling": {
    description: "A pod's or container's share of CFS periods with throttling crossed cpu_throttling.percent (state throttled), or fell back below it (recovered).",
    severities: ["warning", "info"],
    event_data: {
      scheduler: struct("throttle_pct throttle_ms container_id?", { event_type: is("cfs_throttle") }),
      custom: struct("cgroup_path throttled_percent periods throttled_periods throttled_time_ns threshold_percent", { state: is("throttled", "recovered") }),
    },
  },
});
