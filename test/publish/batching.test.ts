// nats.batch: events packed into NDJSON messages with the Tapio-Batch header,
// per subject and within the limits; the outcome still comes back per event.
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Duration } from "../../src/config/duration.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { BatchingPublisher, pack } from "../../src/publish/batching.ts";
import type { QueuedEvent } from "../../src/event/event.ts";
import { DELIVERED } from "../../src/publish/publisher.ts";
import { EventEncoder } from "../../src/event/encode.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { captureLog, makeEvents, natsConfig } from "./fixtures.ts";

afterAll(stopAllNatsServers);
const enc = new TextEncoder();
const ev = (id: string, subject: string, size = 10): QueuedEvent => ({ subject, id, collector: subject.split(".").pop()!, bytes: enc.encode(`{"event_id":"${id}","x":"${"y".repeat(size)}"}`) });

describe("batching", () => {
  test("pack: by subject, in order, within max_events and max_bytes; a lone event stays as it is", () => {
    const events = [ev("a1", "s.a"), ev("b1", "s.b"), ev("a2", "s.a"), ev("a3", "s.a"), ev("b2", "s.b"), ev("c1", "s.c")];
    const packed = pack(events, { maxEvents: 2, maxBytes: 1 << 20 });
    expect(packed.map((p) => [p.message.subject, p.events.map((e) => e.id), p.message.batchOf ?? 1])).toEqual([
      ["s.a", ["a1", "a2"], 2],
      ["s.a", ["a3"], 1],
      ["s.b", ["b1", "b2"], 2],
      ["s.c", ["c1"], 1],
    ]);
    expect(packed[0]!.message.id).toBe("a1..a2");
    expect(new TextDecoder().decode(packed[0]!.message.bytes).split("\n").filter(Boolean).map((l) => JSON.parse(l).event_id)).toEqual(["a1", "a2"]);
    expect(packed[3]!.message).toBe(events[5]!);
    const bySize = pack([ev("1", "s", 100), ev("2", "s", 100), ev("3", "s", 100)], { maxEvents: 100, maxBytes: 250 });
    expect(bySize.map((p) => p.events.length)).toEqual([2, 1]);
  });

  test("pack: events side by side in the encoder's chunk go out as a view of it, no copy; a message ends where the chunk does", () => {
    const encoder = new EventEncoder("a", "s.a", 1 << 20, 4096);
    const events = Array.from({ length: 30 }, (_, i) => encoder.encode({ type: "t", severity: "info", event_data: { i, pad: "p".repeat(300) } }));
    const packed = pack(events, { maxEvents: 100, maxBytes: 1 << 20 });
    expect(packed.length).toBeGreaterThan(1);
    expect(packed.flatMap((p) => p.events)).toEqual(events);
    for (const p of packed) {
      if (p.events.length === 1) continue;
      expect(p.message.bytes.buffer).toBe(p.events[0]!.bytes.buffer);
      expect(p.message.bytes.byteOffset).toBe(p.events[0]!.bytes.byteOffset);
      const lines = new TextDecoder().decode(p.message.bytes).split("\n");
      expect(lines.pop()).toBe("");
      expect(lines).toEqual(p.events.map((e) => new TextDecoder().decode(e.bytes)));
      expect(p.message.batchOf).toBe(p.events.length);
    }
    // Within a chunk the limits still cut.
    expect(pack(events.slice(0, 3), { maxEvents: 2, maxBytes: 1 << 20 }).map((p) => p.events.length)).toEqual([2, 1]);
  });

  test("pack: events from separate buffers (read back from the spool) and interleaved subjects are copied together in order", () => {
    const a = new EventEncoder("a", "s.a", 1 << 20);
    const b = new EventEncoder("b", "s.b", 1 << 20);
    const input = { type: "t", severity: "info" as const, event_data: {} };
    const fromSpool = [ev("x1", "s.a"), ev("x2", "s.a")];
    const live = [a.encode(input), b.encode(input), a.encode(input), b.encode(input)];
    const packed = pack([...fromSpool, ...live], { maxEvents: 10, maxBytes: 1 << 20 });
    expect(packed.map((p) => p.events.length)).toEqual([4, 2]);
    const [sa, sb] = packed;
    expect(sa!.events).toEqual([...fromSpool, live[0]!, live[2]!]);
    expect(new TextDecoder().decode(sa!.message.bytes).split("\n").filter(Boolean).map((l) => JSON.parse(l).event_id)).toEqual(sa!.events.map((e) => e.id));
    // b's two events lie side by side in b's own chunk, whatever came between them in the queue.
    expect(sb!.message.bytes.buffer).toBe(live[1]!.bytes.buffer);
  });

  test("pack: events that share a buffer without the arena's trailing newline are copied, never sent with what follows them", () => {
    const text = '{"event_id":"a1"}\n{"event_id":"a2"}SECRET';
    const buffer = enc.encode(text);
    const a1 = { subject: "s.a", id: "a1", collector: "a", bytes: buffer.subarray(0, 17) };
    const a2 = { subject: "s.a", id: "a2", collector: "a", bytes: buffer.subarray(18, 35) };
    const [p] = pack([a1, a2], { maxEvents: 10, maxBytes: 1 << 20 });
    expect(new TextDecoder().decode(p!.message.bytes)).toBe('{"event_id":"a1"}\n{"event_id":"a2"}\n');
    expect(p!.message.bytes.buffer).not.toBe(buffer.buffer);
  });

  test("outcome per event: undelivered and rejected messages map back to their events", async () => {
    const inner = new MemoryPublisher();
    const events = [ev("a1", "s.a"), ev("a2", "s.a"), ev("b1", "s.b"), ev("b2", "s.b")];
    inner.failing = (m) => m.subject === "s.b";
    const publisher = new BatchingPublisher(inner, { maxEvents: 10, maxBytes: 1 << 20 }, captureLog().log);
    const result = await publisher.publish(events, AbortSignal.timeout(1000));
    expect(result.undelivered.map((e) => e.id)).toEqual(["b1", "b2"]);
    inner.failing = undefined;
    expect(await publisher.publish(events, AbortSignal.timeout(1000))).toBe(DELIVERED);
  });

  test("JetStream: N events in ceil(N / max_events) messages with the header, every event exactly once", async () => {
    const server = await startNatsServer();
    const publisher = createPublisher(natsConfig(server.url, { batch: { max_events: 50, max_bytes: 512 * 1024, linger: new Duration(0) } }), { log: captureLog().log });
    try {
      await publisher.start();
      const events = makeEvents(1000);
      expect(await publisher.publish(events, AbortSignal.timeout(10_000))).toBe(DELIVERED);
      const nc = await connect({ servers: server.url });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info("TAPIO_EVENTS");
      expect(info.state.messages).toBe(20);
      const ids: string[] = [];
      for (let seq = 1; seq <= 20; seq++) {
        const m = (await jsm.streams.getMessage("TAPIO_EVENTS", { seq }))!;
        const lines = m.string().split("\n").filter(Boolean);
        expect(m.header.get("Tapio-Batch")).toBe(String(lines.length));
        expect(m.header.get("Nats-Msg-Id")).toBe(`${JSON.parse(lines[0]!).event_id}..${JSON.parse(lines.at(-1)!).event_id}`);
        ids.push(...lines.map((l) => JSON.parse(l).event_id));
      }
      await nc.close();
      expect(ids.sort()).toEqual(events.map((e) => e.id).sort());
    } finally {
      await publisher.close();
    }
  });
});
