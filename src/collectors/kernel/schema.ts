import * as v from "valibot";
import { bool, duration, nonEmptyString, stringOrList, strictObject } from "../../config/kit.ts";
import { nodeNameSchema } from "../common/node-name.ts";

export const kernelConfigSchema = v.optional(
  strictObject({
    /** the kernel log: /dev/kmsg, or a regular file of kmsg records to tail */
    kmsg_path: v.optional(nonEmptyString(), "/dev/kmsg"),
    /** read the log from its start instead of only what comes after the collector starts (when there is no saved position of this boot to resume from) */
    replay: v.optional(bool(), false),
    /** how often the log is checked for new records when there were none, in poll mode only (a regular file, or where the device cannot be waited on) */
    read_interval: v.optional(duration({ positive: true }), "1s"),
    /** how long to wait before opening the log again after it could not be opened or read */
    retry_interval: v.optional(duration({ positive: true }), "10s"),
    /** where the host's /proc is mounted (vmstat, uptime) */
    proc_root: v.optional(nonEmptyString(), "/proc"),
    /** how often /proc/vmstat oom_kill is read */
    vmstat_interval: v.optional(duration({ positive: true }), "10s"),
    /** apply the built-in node-problem-detector rules (kernel-monitor.json, readonly-monitor.json) */
    builtin_rules: v.optional(bool(), true),
    /** more node-problem-detector kmsg rule files (JSON) */
    rule_files: v.optional(stringOrList(), []),
    /** metadata.node_name of the events (see common/node-name.ts for the default) */
    node_name: nodeNameSchema(),
  }),
  {},
);

export type KernelConfig = v.InferOutput<typeof kernelConfigSchema>;
