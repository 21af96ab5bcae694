// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, optional, struct } from "../../event/declare.ts";

export const kernelEvents = declareEvents("kernel", {
  "container.oom": {
    description: "The kernel killed a process for lack of memory (its OOM report in the kernel log). container_id is empty for a process outside any container.",
    severities: ["error"],
    event_data: {
      container: struct("container_id runtime? pid", { state: is("oom_killed"), action: is("oom_kill") }),
      kernel: struct("pid command uid?", { event_type: is("oom_kill") }),
      custom: struct(
        "total_vm_bytes anon_rss_bytes file_rss_bytes shmem_rss_bytes? memory_cgroup? oom_cgroup? constraint? syslog_level uid?",
        { scope: optional(is("memcg", "global")) },
      ),
    },
  },
  "kernel.problem": {
    description: "A node-problem-detector rule matched kernel log lines: warning for a temporary rule, error for a permanent one (which sets a node condition).",
    severities: ["warning", "error"],
    event_data: { custom: struct("reason monitor message syslog_level condition? condition_status?", { rule_type: is("temporary", "permanent") }) },
  },
  "kernel.oom_kill": {
    description: "/proc/vmstat oom_kill grew since the last poll: every OOM kill the kernel counted, even those whose log lines were lost.",
    severities: ["warning"],
    event_data: { custom: struct("oom_kill_delta oom_kill_total", { source: is("vmstat") }) },
  },
});
