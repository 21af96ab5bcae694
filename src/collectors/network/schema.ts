import * as v from "valibot";
import { bool, duration, integer, nonEmptyString, number, strictObject } from "../../config/kit.ts";

export const networkConfigSchema = v.optional(
  strictObject({
    /** where the host's procfs is mounted (/host/proc in a container) */
    proc_root: v.optional(nonEmptyString(), "/proc"),
    /**
     * the network files, relative to proc_root. /proc/net shows the reader's
     * network namespace: an agent in a pod without hostNetwork reads the
     * host's with "1/net" (pid 1 of a host-pid procfs).
     */
    net_dir: v.optional(nonEmptyString(), "net"),
    /** how often the counters are read; rates and ratios are per interval */
    interval: v.optional(duration({ positive: true }), "15s"),
    /** a spike: retransmitted / sent segments in an interval at or above this ... */
    retransmit_ratio: v.optional(number(0, 1), 0.05),
    /** ... once at least this many segments were sent (below it one lost segment would be a spike) */
    retransmit_min_segments: v.optional(integer(1), 1000),
    /** or: retransmitted segments per second at or above this; 0 = only the ratio counts */
    retransmit_rate: v.optional(number(0), 0),
    /** per interface and interval: rx + tx errors that make an event (0 = never) */
    interface_errors_min: v.optional(integer(0), 1),
    /** per interface and interval: rx + tx drops that make an event (0 = never); a few drops are normal */
    interface_drops_min: v.optional(integer(0), 100),
    /** read nf_conntrack_count / nf_conntrack_max; off where netfilter conntrack is not loaded */
    conntrack: v.optional(bool(), true),
    /** conntrack entries / max at or above this is near the limit */
    conntrack_ratio: v.optional(number(0, 1), 0.8),
  }),
  {},
);

export type NetworkConfig = v.InferOutput<typeof networkConfigSchema>;
