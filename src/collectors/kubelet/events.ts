// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, struct } from "../../event/declare.ts";

const container = "namespace pod container status reason? message? exit_code? restart_count last_exit_code? last_reason? timestamp";
const threshold = (more: string) => struct(`threshold_percent ${more}`, { state: is("above", "resolved") });
const nodeMetrics = struct("node_name cpu_usage_nano cpu_usage_milli memory_usage? memory_available? memory_working_set? timestamp");

export const kubeletEvents = declareEvents("kubelet", {
  "kubelet.container.waiting": {
    description: "A container's waiting reason changed to one not ignored (ImagePullBackOff, CreateContainerConfigError, ...).",
    severities: ["warning"],
    event_data: { kubelet: struct({ event_type: is("container_waiting"), pod_lifecycle: struct(container, { status: is("waiting") }) }) },
  },
  "kubelet.container.terminated": {
    description: "A run of a container ended with a non-zero exit code or OOMKilled; timestamp is its finishedAt.",
    severities: ["warning", "high"],
    event_data: { kubelet: struct({ event_type: is("container_terminated"), pod_lifecycle: struct(container, { status: is("terminated") }) }) },
  },
  "kubelet.container.restarted": {
    description: "A container's restart count grew and the run before ended cleanly or was already reported.",
    severities: ["low"],
    event_data: { kubelet: struct({ event_type: is("container_restarted"), pod_lifecycle: struct(container) }) },
  },
  "kubelet.container.crash_loop": {
    description: "A container's restart count is above crash_loop_restarts: when first seen so, and whenever it grows.",
    severities: ["error"],
    event_data: { kubelet: struct({ event_type: is("crash_loop"), pod_lifecycle: struct(container) }) },
  },
  "kubelet.pod.not_ready": {
    description: "A Running pod has been not Ready for not_ready_after; timestamp is the condition's lastTransitionTime.",
    severities: ["warning"],
    event_data: {
      kubelet: struct({ event_type: is("pod_not_ready"), pod_lifecycle: struct("namespace pod status? reason? message? timestamp", { condition: is("Ready") }) }),
    },
  },
  "kubelet.node.cpu": {
    description: "The node's CPU usage crossed node_cpu_percent of node_cpu_cores (state above), or fell back below 95% of it (resolved).",
    severities: ["warning", "info"],
    event_data: { kubelet: struct({ event_type: is("node_cpu"), node_metrics: nodeMetrics }), custom: threshold("usage_percent") },
  },
  "kubelet.node.memory": {
    description: "The node's memory working set crossed node_memory_percent (state above), or fell back below 95% of it (resolved).",
    severities: ["warning", "info"],
    event_data: { kubelet: struct({ event_type: is("node_memory"), node_metrics: nodeMetrics }), custom: threshold("usage_percent") },
  },
  "kubelet.ephemeral.storage": {
    description: "A pod's ephemeral storage use crossed ephemeral_storage_percent of its room (state above), or fell back below 95% of it (resolved).",
    severities: ["warning", "info"],
    event_data: {
      kubelet: struct({ event_type: is("ephemeral_storage"), storage_event: struct("namespace pod used_bytes available_bytes usage_percent timestamp") }),
      custom: threshold("limit_bytes?"),
    },
  },
});
