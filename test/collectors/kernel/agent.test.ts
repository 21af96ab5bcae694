// The kernel collector in the agent: the config snippet of its README loads,
// and a --once round through the orchestrator delivers its events.
import { afterEach, describe, expect, test } from "bun:test";
import { kernelFactory } from "../../../src/collectors/kernel/index.ts";
import { silentLogger } from "../../../src/log.ts";
import { Orchestrator } from "../../../src/orchestrator/orchestrator.ts";
import { CollectorRegistry } from "../../../src/orchestrator/registry.ts";
import { configFrom } from "../../helpers/config.ts";
import { MemoryPublisher } from "../../helpers/memory-publisher.ts";
import { OOM_6_18 } from "./helpers.ts";

const BASE = `
orchestrator: { workers: 2, shutdown_timeout: 2s }
nats: { mode: core }
`;

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

async function onceRound(collectors: string) {
  const registry = new CollectorRegistry().register(kernelFactory);
  const publisher = new MemoryPublisher();
  const orch = new Orchestrator({ config: configFrom(`${BASE}${collectors}`, registry), registry, publisher, log: silentLogger(), once: true });
  running.push(orch);
  orch.start();
  await orch.roundsDone();
  return { report: await orch.stop(), publisher, orch };
}

describe("kernel collector in the agent", () => {
  test("the README's config snippet: one --once round on this machine, whatever its /dev/kmsg allows", async () => {
    const { report } = await onceRound(`
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
    const { report, publisher } = await onceRound(`
collectors:
  kernel:
    config: { kmsg_path: ${OOM_6_18}, replay: true }
`);
    expect(report.failedCollectors).toEqual([]);
    expect(publisher.decoded().map((e) => e.type)).toEqual(["container.oom", "kernel.problem"]);
    expect(publisher.events.every((e) => e.subject === "tapio.events.kernel")).toBe(true);
  });
});
