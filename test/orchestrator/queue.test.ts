import { describe, expect, test } from "bun:test";
import { EventQueue, QueueClosedError } from "../../src/orchestrator/queue.ts";
import type { QueuedEvent } from "../../src/event/event.ts";

const ev = (id: string, size = 10): QueuedEvent => ({ subject: "s", id, bytes: new Uint8Array(size), collector: "c" });

describe("EventQueue", () => {
  test("bounds by event count and keeps FIFO order", async () => {
    const q = new EventQueue(3, 1_000_000);
    expect(q.tryPush(ev("a"))).toBe(true);
    expect(q.tryPush(ev("b"))).toBe(true);
    expect(q.tryPush(ev("c"))).toBe(true);
    expect(q.tryPush(ev("d"))).toBe(false);
    expect(q.utilization).toBe(1);
    const got = await q.take(2);
    expect(got.map((e) => e.id)).toEqual(["a", "b"]);
    expect(q.length).toBe(1);
  });

  test("tryPushAll takes a whole batch or none of it, by count and by bytes", async () => {
    const q = new EventQueue(5, 100);
    expect(q.tryPushAll([ev("a"), ev("b"), ev("c")])).toBe(true);
    expect(q.tryPushAll([ev("d"), ev("e"), ev("f")])).toBe(false);
    expect(q.length).toBe(3);
    expect(q.tryPushAll([ev("d", 40), ev("e", 40)])).toBe(false);
    expect(q.tryPushAll([ev("d", 30), ev("e", 30)])).toBe(true);
    expect((await q.take(10)).map((e) => e.id)).toEqual(["a", "b", "c", "d", "e"]);
    // into an empty queue a batch over the byte bound passes, as one large event does
    expect(q.tryPushAll([ev("big", 80), ev("big2", 80)])).toBe(true);
    q.close();
    expect(() => q.tryPushAll([ev("late")])).toThrow(QueueClosedError);
  });

  test("an event's subject suffix comes out of the queue with it", async () => {
    const q = new EventQueue(10, 1000);
    q.tryPush({ ...ev("a"), subject: "s.app", subjectSuffix: "app" });
    q.tryPush(ev("b"));
    expect((await q.take(2)).map((e) => [e.subject, e.subjectSuffix])).toEqual([["s.app", "app"], ["s", undefined]]);
  });

  test("bounds by bytes, but an oversized event passes alone", async () => {
    const q = new EventQueue(100, 25);
    expect(q.tryPush(ev("a", 10))).toBe(true);
    expect(q.tryPush(ev("b", 10))).toBe(true);
    expect(q.tryPush(ev("c", 10))).toBe(false);
    expect(q.bytes).toBe(20);
    await q.take(10);
    expect(q.tryPush(ev("big", 100))).toBe(true);
    expect(q.tryPush(ev("small", 1))).toBe(false);
  });

  test("waiting producers are admitted in arrival order as space frees", async () => {
    const q = new EventQueue(1, 1_000_000);
    q.tryPush(ev("a"));
    const order: string[] = [];
    const pb = q.push(ev("b")).then(() => order.push("b"));
    const pc = q.push(ev("c")).then(() => order.push("c"));
    // Nobody may jump the line while others wait, even when space appears.
    expect(q.waiting).toBe(2);
    expect((await q.take(1)).map((e) => e.id)).toEqual(["a"]);
    expect((await q.take(1)).map((e) => e.id)).toEqual(["b"]);
    expect((await q.take(1)).map((e) => e.id)).toEqual(["c"]);
    await Promise.all([pb, pc]);
    expect(order).toEqual(["b", "c"]);
  });

  test("take waits for an event and wraps around the ring", async () => {
    const q = new EventQueue(4, 1_000_000);
    const taking = q.take(10);
    q.tryPush(ev("x"));
    expect((await taking).map((e) => e.id)).toEqual(["x"]);
    const ids: string[] = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 3; i++) expect(q.tryPush(ev(`${round}-${i}`))).toBe(true);
      ids.push(...(await q.take(3)).map((e) => e.id));
    }
    expect(ids.length).toBe(30);
    expect(ids[29]).toBe("9-2");
  });

  test("close queues the waiting producers' events, drains, then ends takers", async () => {
    const q = new EventQueue(1, 1_000_000);
    q.tryPush(ev("a"));
    const waiting = q.push(ev("b"));
    const idle = new EventQueue(1, 10);
    const idleTake = idle.take(5);
    q.close();
    idle.close();
    await waiting;
    expect(await idleTake).toEqual([]);
    expect((await q.take(10)).map((e) => e.id)).toEqual(["a", "b"]);
    expect(await q.take(10)).toEqual([]);
    expect(() => q.tryPush(ev("late"))).toThrow(QueueClosedError);
  });
});

describe("EventQueue storage", () => {
  const enc = new TextEncoder();
  const json = (id: string, pad = 0) => enc.encode(`{"event_id":"${id}","x":"${"y".repeat(pad)}"}`);

  test("keeps the bytes by reference, without a copy (event bytes are never modified once made)", async () => {
    const q = new EventQueue(10, 1 << 20);
    const bytes = json("01936b2e-0000-7000-8000-000000000001");
    q.tryPush({ subject: "s.a", id: "01936b2e-0000-7000-8000-000000000001", bytes, collector: "a", emittedAt: 5 });
    const [e] = await q.take(1);
    expect(e!.bytes.buffer).toBe(bytes.buffer);
    expect([e!.bytes.byteOffset, e!.bytes.byteLength]).toEqual([bytes.byteOffset, bytes.byteLength]);
    expect(e).toMatchObject({ subject: "s.a", collector: "a", emittedAt: 5 });
    expect(e!.id).toBe("01936b2e-0000-7000-8000-000000000001");
  });

  test("ids written in the bytes are read back; others are kept; sources and large events round-trip", async () => {
    const q = new EventQueue(100, 1 << 24);
    const events = [
      { subject: "s.a", id: "plain-id", bytes: json("plain-id"), collector: "a" },
      { subject: "s.b", id: 'custom "quoted"', bytes: json('custom \\"quoted\\"'), collector: "b" },
      { subject: "s.a", id: "big", bytes: json("big", 600_000), collector: "a" },
      { subject: "s.c", id: "no-json", bytes: new Uint8Array([1, 2, 3]), collector: "c" },
    ];
    for (const e of events) expect(q.tryPush(e)).toBe(true);
    const out = await q.take(10);
    expect(out.map((e) => [e.subject, e.collector, e.id, e.bytes.byteLength])).toEqual(events.map((e) => [e.subject, e.collector, e.id, e.bytes.byteLength]));
    expect(out.every((e, i) => Buffer.compare(Buffer.from(e.bytes), Buffer.from(events[i]!.bytes)) === 0)).toBe(true);
    expect(out[0]!.emittedAt).toBeUndefined();
    expect(q.bytes).toBe(0);
  });

  test("the metadata ring grows past max_events for events admitted at close", async () => {
    const q = new EventQueue(2, 1 << 20);
    q.tryPush({ subject: "s", id: "1", bytes: json("1"), collector: "c" });
    q.tryPush({ subject: "s", id: "2", bytes: json("2"), collector: "c" });
    const waiting = Array.from({ length: 40 }, (_, i) => q.push({ subject: "s", id: String(i + 3), bytes: json(String(i + 3)), collector: "c" }));
    q.close();
    await Promise.all(waiting);
    expect((await q.take(100)).map((e) => e.id)).toEqual(Array.from({ length: 42 }, (_, i) => String(i + 1)));
  });
});
