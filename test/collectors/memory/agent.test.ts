// The memory collector in the agent: the config snippet of its README loads,
// and a --once round through the orchestrator delivers its events.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { memoryFactory } from "../../../src/collectors/memory/index.ts";
import { silentLogger } from "../../../src/log.ts";
import { Orchestrator } from "../../../src/orchestrator/orchestrator.ts";
import { CollectorRegistry } from "../../../src/orchestrator/registry.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { configFrom } from "../../helpers/config.ts";
import { MemoryPublisher } from "../../helpers/memory-publisher.ts";
import { cgroupV1, fakeProc } from "./helpers.ts";

const BASE = `
orchestrator: { workers: 2, shutdown_timeout: 2s }
nats: { mode: core }
`;

const dir = makeTempDir("memory-agent");
afterAll(() => removeTempDir(dir));
const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

async function onceRound(collectors: string) {
  const registry = new CollectorRegistry().register(memoryFactory);
  const publisher = new MemoryPublisher();
  const orch = new Orchestrator({ config: configFrom(`${BASE}${collectors}`, registry), registry, publisher, log: silentLogger(), once: true });
  running.push(orch);
  orch.start();
  await orch.roundsDone();
  return { report: await orch.stop(), publisher, orch };
}

describe("memory collector in the agent", () => {
  test("the README's config snippet: one --once round on this machine (no kubepods here: degraded, not failed)", async () => {
    const { report } = await onceRound(`
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
    const { report, publisher, orch } = await onceRound(`
collectors:
  memory:
    config: { proc_root: ${fakeProc(dir, "local")}, cgroup_root: ${cgroupV1(dir, []).root} }
`);
    expect(report.failedCollectors).toEqual([]);
    expect(publisher.decoded().map((e) => e.type)).toEqual(["kubelet.cpu.pressure"]);
    expect(publisher.events[0]!.subject).toBe("tapio.events.memory");
    expect(orch.health.collector("memory").snapshot().state).not.toBe("degraded");
  });
});
