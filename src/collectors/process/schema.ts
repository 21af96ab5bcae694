import * as v from "valibot";
import { bool, duration, integer, nonEmptyString, strictObject, text } from "../../config/kit.ts";

/** A JavaScript regular expression, checked here so a typo fails at config load, not at the first poll. */
export function regexText(): ReturnType<typeof text> {
  return text("a regular expression", (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  });
}

export const processConfigSchema = v.optional(
  strictObject({
    /** where the host's procfs is mounted (/host/proc in a container) */
    proc_root: v.optional(nonEmptyString(), "/proc"),
    /** how often /proc is listed when polling; a process that lives shorter than this may be missed */
    interval: v.optional(duration({ positive: true }), "5s"),
    /** follow the kernel's process events connector where it is allowed (CAP_NET_ADMIN, hostNetwork, hostPID); false: always poll */
    proc_connector: v.optional(bool(), true),
    /** with the connector: how often /proc is listed anyway, for what the events cannot tell (forks that never exec) */
    resync_interval: v.optional(duration({ positive: true }), "60s"),
    /** only processes whose /proc/<pid>/cgroup matches cgroup_pattern */
    containers_only: v.optional(bool(), false),
    /** what marks a container's cgroup (kubelet puts pods under kubepods) */
    cgroup_pattern: v.optional(regexText(), "kubepods"),
    /** kernel threads (kworker, ksoftirqd, ...) come and go on their own; off by default */
    kernel_threads: v.optional(bool(), false),
    /** events per poll; the rest of a fork storm is counted in one kernel.process.skipped event */
    max_events_per_poll: v.optional(integer(1, 1_000_000), 500),
  }),
  {},
);

export type ProcessConfig = v.InferOutput<typeof processConfigSchema>;
