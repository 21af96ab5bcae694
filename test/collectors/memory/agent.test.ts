// The memory collector in the agent: the config snippet of its README loads,
// and a --once round through the orchestrator delivers its events.
import { afterAll, describe, expect, test } from "bun:test";
import { memoryFactory } from "../../../src/collectors/memory/index.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { cgroupV1, fakeProc } from "./helpers.ts";
import { onceRound } from "../../helpers/once-round.ts";

const dir = makeTempDir("memory-agent");
afterAll(() => removeTempDir(dir));

describe("memory collector in the agent", () => {
  test("the README's config snippet: one --once round on this machine (no kubepods here: degraded, not failed)", async () => {
    const { report } = await onceRound(memoryFactory, `
collectors:
  memory:
    enabled: true
    config:
      proc_root: /proc
      sys_root: /sys
      interval: 10s
`);
    expect(report.failedCollectors).toEqual([]);
  });

  test("--once on the recorded 6.18 /proc: the cpu pressure event on the collector's subject", async () => {
    const { report, publisher, orch } = await onceRound(memoryFactory, `
collectors:
  memory:
    config: { proc_root: ${fakeProc(dir, "local")}, cgroup_root: ${cgroupV1(dir, []).root} }
`);
    expect(report.failedCollectors).toEqual([]);
    expect(publisher.decoded().map((e) => e.type)).toEqual(["node.cpu_pressure"]);
    expect(publisher.events[0]!.subject).toBe("tapio.events.memory");
    expect(orch.health.collector("memory").snapshot().state).not.toBe("degraded");
  });
});
