// A publisher swapped out on reload stops telling delivery about its health:
// only the publisher in use now wakes the health monitor.
import { expect, test } from "bun:test";
import { Delivery } from "../../src/delivery/delivery.ts";
import { CircuitBreakers } from "../../src/delivery/circuit.ts";
import { DeliveryLedger } from "../../src/orchestrator/ledger.ts";
import { HealthTracker } from "../../src/orchestrator/health.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { silentLogger } from "../helpers/silent-logger.ts";

test("after swapPublisher, the old publisher's status changes no longer reach healthChanged; the new one's do", async () => {
  const changes: string[] = [];
  const first = new MemoryPublisher();
  const delivery = new Delivery({
    publisher: first,
    spool: undefined,
    spoolPath: "(none)",
    bufferType: "memory",
    spillAfterMs: 1000,
    breakers: new CircuitBreakers({ failureThreshold: 5, openForMs: 1000, probeTimeoutMs: 1000 }),
    ledger: new DeliveryLedger(new HealthTracker()),
    log: silentLogger(),
    deadline: new AbortController().signal,
    drainBatch: 100,
    subjectPrefix: () => "tapio.events",
    onFatal: () => {},
    healthChanged: (when) => changes.push(when),
  });

  first.connected = false;
  expect(changes).toEqual(["now"]);

  const second = new MemoryPublisher();
  const old = await delivery.swapPublisher(second);
  expect(old).toBe(first);
  changes.length = 0;

  first.connected = true;
  first.closed = true;
  expect(changes).toEqual([]);

  second.connected = false;
  expect(changes).toEqual(["now"]);
});
