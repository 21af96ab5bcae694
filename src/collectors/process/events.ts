// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, optional, struct } from "../../event/declare.ts";

export const processEvents = declareEvents("process", {
  "kernel.process": {
    description:
      "A process started (exec) or exited, told by the kernel's process events connector or seen by polling /proc. command is the kernel's comm; arguments the argv (at most 4 KiB); start_time from btime and the start ticks. From the connector, an exit has custom.exit_code or custom.signal, and a start whose process was gone before /proc could be read has custom.gone.",
    severities: ["info"],
    event_data: {
      kernel: struct("pid ppid command", { event_type: is("start", "exit") }),
      process: struct("pid ppid command executable? arguments? start_time? cgroup_path? container_id?"),
      custom: optional(struct("exit_code? signal? gone?")),
    },
  },
  "kernel.process.skipped": {
    description: "A poll found more starts and exits than max_events_per_poll: the rest are counted here.",
    severities: ["warning"],
    event_data: { custom: struct("starts exits skipped skipped_total max_events_per_poll") },
  },
});
