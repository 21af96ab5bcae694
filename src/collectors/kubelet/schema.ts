import * as v from "valibot";
import { bool, duration, integer, nonEmptyString, number, strictObject, stringOrList, text } from "../../config/kit.ts";
import { isHttpUrl, maxResponseBytesSchema } from "../common/k8s-client.ts";

/** Where Kubernetes mounts a pod's service-account credentials. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A percentage threshold; 0 turns the check off. */
const percent = () => number(0, 100);

export const kubeletConfigSchema = v.optional(
  strictObject({
    /** the kubelet's HTTPS endpoint (hostNetwork pods reach it on 127.0.0.1; otherwise use the node IP) */
    address: v.optional(text("an http(s) URL like https://127.0.0.1:10250", isHttpUrl), "https://127.0.0.1:10250"),
    /** bearer token, re-read on every poll (projected tokens rotate) */
    token_file: v.optional(nonEmptyString(), `${SERVICE_ACCOUNT_DIR}/token`),
    /** CA that signed the kubelet's serving certificate */
    ca_file: v.optional(nonEmptyString(), `${SERVICE_ACCOUNT_DIR}/ca.crt`),
    /** skip TLS verification of the kubelet (logs a warning) */
    insecure: v.optional(bool(), false),
    /** how often /pods is read */
    pods_interval: v.optional(duration({ positive: true }), "10s"),
    /** how often /stats/summary is read */
    stats_interval: v.optional(duration({ positive: true }), "30s"),
    /** how long one request may take */
    timeout: v.optional(duration({ positive: true }), "10s"),
    /** the most one response body (or watch line) may hold; a larger one is refused and counted as a parse error */
    max_response_bytes: maxResponseBytesSchema(),
    /** a restart count above this is a crash loop */
    crash_loop_restarts: v.optional(integer(0, 1_000_000), 3),
    /** waiting reasons that are normal steps of a start, not problems */
    ignore_waiting_reasons: v.optional(stringOrList(), ["ContainerCreating", "PodInitializing"]),
    /** a running pod must be not ready this long before it is reported (readiness probes take a while at start) */
    not_ready_after: v.optional(duration(), "30s"),
    /** a pod's ephemeral storage above this share of its limit (or of the space it can reach) is reported */
    ephemeral_storage_percent: v.optional(percent(), 90),
    /** node working set above this share of its memory */
    node_memory_percent: v.optional(percent(), 90),
    /** node CPU usage above this share of its cores */
    node_cpu_percent: v.optional(percent(), 90),
    /** the node's CPU count; 0 = the CPUs of the machine the agent runs on (a per-node agent runs on the node) */
    node_cpu_cores: v.optional(number(0, 100_000), 0),
  }),
  {},
);

export type KubeletConfig = v.InferOutput<typeof kubeletConfigSchema>;
