// One --once round of a collector through a real orchestrator (in-memory
// publisher): how collector tests check that their config snippet loads and
// their events come out as the agent would send them.
import { afterEach } from "bun:test";
import { silentLogger } from "./silent-logger.ts";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { CollectorRegistry } from "../../src/orchestrator/registry.ts";
import type { AnyCollectorFactory } from "../../src/orchestrator/collector.ts";
import { configFrom } from "./config.ts";
import { MemoryPublisher } from "./memory-publisher.ts";

const BASE = `
orchestrator: { workers: 2, shutdown_timeout: 2s }
nats: { mode: core }
`;

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

/** Runs the `collectors:` YAML given (with `factory` registered) for one round and stops. */
export async function onceRound(factory: AnyCollectorFactory, collectors: string) {
  const registry = new CollectorRegistry().register(factory);
  const publisher = new MemoryPublisher();
  const orch = new Orchestrator({ config: configFrom(`${BASE}${collectors}`, registry), registry, publisher, log: silentLogger(), once: true });
  running.push(orch);
  orch.start();
  await orch.roundsDone();
  return { report: await orch.stop(), publisher, orch };
}
