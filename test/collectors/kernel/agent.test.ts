// The kernel collector in the agent: the config snippet of its README loads,
// and a --once round through the orchestrator delivers its events.
import { describe, expect, test } from "bun:test";
import { kernelFactory } from "../../../src/collectors/kernel/index.ts";
import { OOM_6_18 } from "./helpers.ts";
import { onceRound } from "../../helpers/once-round.ts";

describe("kernel collector in the agent", () => {
  test("the README's config snippet: one --once round on this machine, whatever its /dev/kmsg allows", async () => {
    const { report } = await onceRound(kernelFactory, `
collectors:
  kernel:
    enabled: true
    config:
      kmsg_path: /dev/kmsg
      proc_root: /proc
      replay: false
`);
    expect(report.failedCollectors).toEqual([]);
  });

  test("--once with replay of a recorded log: its events on the collector's subject", async () => {
    const { report, publisher } = await onceRound(kernelFactory, `
collectors:
  kernel:
    config: { kmsg_path: ${OOM_6_18}, replay: true }
`);
    expect(report.failedCollectors).toEqual([]);
    expect(publisher.decoded().map((e) => e.type)).toEqual(["container.oom", "kernel.problem"]);
    expect(publisher.events.every((e) => e.subject === "tapio.events.kernel")).toBe(true);
  });
});
