import * as v from "valibot";
import { bool, byteSize, duration, integer, nonEmptyString, number, strictObject } from "../../config/kit.ts";
import { nodeNameSchema } from "../common/node-name.ts";

/** PSI `avg10` thresholds in percent of wall time; 0 turns one off. */
function psiThresholds(some: number, full: number) {
  return v.optional(
    strictObject({
      some_avg10: v.optional(number(0, 100), some),
      full_avg10: v.optional(number(0, 100), full),
    }),
    {},
  );
}

export const memoryConfigSchema = v.optional(
  strictObject({
    /** where the host's /proc is mounted */
    proc_root: v.optional(nonEmptyString(), "/proc"),
    /** where the host's /sys is mounted; the cgroup root defaults to <sys_root>/fs/cgroup */
    sys_root: v.optional(nonEmptyString(), "/sys"),
    /** the cgroup mount, when it is not at <sys_root>/fs/cgroup */
    cgroup_root: v.optional(nonEmptyString()),
    /** how often PSI, meminfo and the pod cgroups are read */
    interval: v.optional(duration({ positive: true }), "10s"),
    /** PSI and the cgroups' memory events from the kernel's notifications where they work (see the README); false polls them every interval */
    notify: v.optional(bool(), true),
    /** metadata.node_name of the events (see common/node-name.ts for the default) */
    node_name: nodeNameSchema(),
    psi: v.optional(
      strictObject({
        memory: psiThresholds(10, 5),
        // At the root, cpu "full" is always 0 (something always runs): off by default.
        cpu: psiThresholds(80, 0),
        io: psiThresholds(40, 20),
      }),
      {},
    ),
    /** node memory pressure: MemAvailable at or below either threshold (0 turns one off) */
    memory_available: v.optional(
      strictObject({
        percent: v.optional(number(0, 100), 10),
        bytes: v.optional(byteSize(), "100MiB"),
      }),
      {},
    ),
    /** a container's memory usage in percent of its limit; 0 turns it off */
    cgroup_memory_percent: v.optional(number(0, 100), 90),
    cpu_throttling: v.optional(
      strictObject({
        /** share of the CFS periods in one interval in which the cgroup was throttled; 0 turns it off */
        percent: v.optional(number(0, 100), 25),
        /** fewer periods than this in an interval say too little to judge */
        min_periods: v.optional(integer(1), 10),
      }),
      {},
    ),
  }),
  {},
);

export type MemoryConfig = v.InferOutput<typeof memoryConfigSchema>;
