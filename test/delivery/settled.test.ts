// What delivery reports as settled, for collectors' saved positions
// (ctx.state): events acknowledged, spooled, refused by NATS for good, or
// dropped by spool.when_full; never events lost or discarded at the
// shutdown deadline, so a position after those is never written.
import { describe, expect, test } from "bun:test";
import { DeliveryAccounting } from "../../src/delivery/accounting.ts";
import { CircuitBreakers } from "../../src/delivery/circuit.ts";
import { DeliveryLedger } from "../../src/orchestrator/ledger.ts";
import { HealthTracker } from "../../src/orchestrator/health.ts";
import { DELIVERED, outcome } from "../../src/publish/publisher.ts";
import type { QueuedEvent } from "../../src/event/event.ts";

const ev = (id: string): QueuedEvent => ({ id, collector: "kernel", subject: "tapio.events.kernel", bytes: new Uint8Array(1) });

function accounting() {
  const settled: string[] = [];
  const a = new DeliveryAccounting(new DeliveryLedger(new HealthTracker()), new CircuitBreakers({ failureThreshold: 5, openForMs: 1000, probeTimeoutMs: 1000 }), 2000, (events) => {
    for (const e of events) settled.push(e.id);
  });
  return { a, settled };
}

describe("delivery reports settled events", () => {
  test("acknowledged: all of a batch; partly: the acknowledged and the refused, not those to retry", () => {
    const { a, settled } = accounting();
    a.settle([ev("a"), ev("b")], DELIVERED);
    expect(settled).toEqual(["a", "b"]);
    const [c, d, e] = [ev("c"), ev("d"), ev("e")];
    a.settle([c, d, e], outcome([d], [{ event: e, reason: "max_payload" }]));
    expect(settled).toEqual(["a", "b", "c", "e"]);
  });

  test("spooled, and dropped by spool.when_full: settled", () => {
    const { a, settled } = accounting();
    const [f, g] = [ev("f"), ev("g")];
    a.spooled([f, g], new Set([g]));
    expect(settled).toEqual(["f", "g"]);
  });

  test("lost, or discarded at the shutdown deadline: never settled", () => {
    const { a, settled } = accounting();
    a.lost([ev("h")]);
    a.discarded([ev("i")], "spool_full_at_shutdown");
    expect(settled).toEqual([]);
  });
});
