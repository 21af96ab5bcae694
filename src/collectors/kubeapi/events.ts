// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, struct } from "../../event/declare.ts";

export const kubeapiEvents = declareEvents("kubeapi", {
  "k8s.pod": {
    description: "A pod on this node was added, modified or deleted (a watch change); warning for a pod in phase Failed unless deleted. conditions are \"Type=Status\" strings; owner_* name its controller.",
    severities: ["info", "warning"],
    event_data: {
      k8s_resource: struct("name namespace uid resource_version phase? conditions? reason? message? labels? owner_kind? owner_name?", {
        api_version: is("v1"),
        kind: is("Pod"),
        operation: is("ADDED", "MODIFIED", "DELETED"),
      }),
    },
  },
  "k8s.event": {
    description: "A new or updated core/v1 Event about this node, one of its pods, or reported by its kubelet; severity warning for type Warning.",
    severities: ["info", "warning"],
    event_data: {
      k8s_event: struct("reason message type count first_time? last_time?", {
        action: is("ADDED", "MODIFIED"),
        involved_object: struct("kind name namespace? uid"),
        source: struct("component host?"),
      }),
    },
  },
});

