// nats.batch against what NATS accepts: batch messages are packed within the
// server's max_payload (from its INFO) and the stream's max_msg_size, a
// message refused for its size anyway is split down to single events, and
// only an event too large on its own is rejected. Publish errors count events.
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Duration } from "../../src/config/duration.ts";
import type { NatsConfig } from "../../src/config/schema.ts";
import type { QueuedEvent } from "../../src/event/event.ts";
import { BatchingPublisher, pack } from "../../src/publish/batching.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { batchHeaderFits, headerBytes, messageBytes, MsgIdHeader } from "../../src/publish/msg-id-header.ts";
import { DELIVERED, outcome, type Publisher, type PublisherStatus, type PublishOutcome } from "../../src/publish/publisher.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { captureLog, delivered, never, readStream, SUBJECT, subscribeAll, type Received } from "./fixtures.ts";

afterAll(stopAllNatsServers);

const STREAM = "TAPIO_EVENTS";
const CAPPED = /^nats\.batch\.max_bytes \(524288\) is more than NATS accepts/;
const SPLITTING = "batch message larger than NATS accepts; splitting it and sending its events again";
const enc = new TextEncoder();
let eventNo = 0;

/** An event of exactly `size` JSON bytes on `<SUBJECT>.<collector>`. */
function sized(size: number, collector = "synthetic"): QueuedEvent {
  const id = `fit-${process.pid}-${++eventNo}`;
  const head = `{"event_id":"${id}","pad":"`;
  const json = head + "x".repeat(size - head.length - 2) + '"}';
  return { subject: `${SUBJECT}.${collector}`, id, collector, bytes: enc.encode(json) };
}

function batchConfig(url: string, mode: "jetstream" | "core"): NatsConfig {
  return {
    url: [url],
    subject: SUBJECT,
    mode,
    stream: { name: STREAM, max_age: new Duration(3_600_000), max_bytes: -1, replicas: 1, duplicate_window: new Duration(120_000) },
    name: "tapio-collectors-test",
    max_reconnects: -1,
    reconnect_wait: new Duration(100),
    timeout: new Duration(2000),
    max_in_flight: 256,
    batch: { max_events: 100, max_bytes: 512 * 1024, linger: new Duration(0) },
  } as NatsConfig;
}

function started(url: string, mode: "jetstream" | "core") {
  const reported: Array<[string, number]> = [];
  const capture = captureLog();
  const publisher = createPublisher(batchConfig(url, mode), { log: capture.log, onError: (reason, _err, events) => reported.push([reason, events]) });
  const messages = (msg: string | RegExp) => capture.records().filter((r) => (typeof msg === "string" ? r.msg === msg : msg.test(String(r.msg))));
  return { publisher, reported, messages };
}

/** The events a received message holds (a batch message holds NDJSON lines) and what NATS weighed it at. */
function unpack(m: Received & { batch?: string }): { ids: string[]; bytes: number } {
  const lines = m.data.split("\n").filter(Boolean);
  const batchOf = m.batch === undefined ? undefined : Number(m.batch);
  if (batchOf !== undefined) expect(lines.length).toBe(batchOf);
  return { ids: lines.map((l) => JSON.parse(l).event_id as string), bytes: Buffer.byteLength(m.data) + headerBytes(m.msgId, batchOf) };
}

/** Every stored message with its Tapio-Batch header. */
async function storedMessages(url: string): Promise<Array<Received & { batch?: string }>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(STREAM);
    const out: Array<Received & { batch?: string }> = [];
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(STREAM, { seq });
      if (!m) continue;
      const batch = m.header?.get("Tapio-Batch");
      out.push({ subject: m.subject, msgId: m.header?.get("Nats-Msg-Id") ?? "", data: m.string(), ...(batch ? { batch } : {}) });
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function setStreamMaxMsgSize(url: string, bytes: number): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info(STREAM);
    await jsm.streams.update(STREAM, { ...config, max_msg_size: bytes });
  } finally {
    await nc.close();
  }
}

describe("pack within NATS's limit", () => {
  test("the batch header's size is exact, for any ids and counts", () => {
    for (const [first, last] of [["a1", "a2"], ["01a24066-7dd4-77ce-8b57-b6eb6b1bb54d", "01a24066-7e67-7221-988b-09683993c85a"], ["ünï", "😀😀"], ["x".repeat(300), "y"]]) {
      for (const count of [2, 9, 10, 99, 100, 12345]) {
        const exact = headerBytes(`${first}..${last}`, count);
        const header = new MsgIdHeader();
        header.for({ id: `${first}..${last}`, batchOf: count });
        expect(exact).toBe(header.encode().byteLength);
        expect(batchHeaderFits(first!, last!, count, exact)).toBe(true);
        expect(batchHeaderFits(first!, last!, count, exact - 1)).toBe(false);
      }
    }
  });


  test("every message, header included, is at most the limit, and as full as it allows", () => {
    const events = Array.from({ length: 400 }, (_, i) => sized(300 + (i % 7) * 50, i % 2 ? "a" : "b"));
    const limit = 4000;
    const packed = pack(events, { maxEvents: 100, maxBytes: 1 << 20, maxMessageBytes: limit });
    expect(packed.flatMap((p) => p.events).sort((x, y) => x.id.localeCompare(y.id))).toEqual([...events].sort((x, y) => x.id.localeCompare(y.id)));
    const bySubject = new Map<string, typeof packed>();
    for (const p of packed) bySubject.set(p.message.subject, [...(bySubject.get(p.message.subject) ?? []), p]);
    for (const messages of bySubject.values()) {
      messages.forEach((p, i) => {
        expect(messageBytes(p.message)).toBeLessThanOrEqual(limit);
        const next = messages[i + 1]?.events[0];
        if (!next) return;
        // The next event of the subject would not have fitted: the message is as full as the limit allows.
        const first = p.events[0]!;
        const payload = p.message.bytes.byteLength + (p.events.length === 1 ? 1 : 0) + next.bytes.byteLength + 1;
        expect(payload + headerBytes(`${first.id}..${next.id}`, p.events.length + 1)).toBeGreaterThan(limit);
      });
    }
  });
});

describe("batches fit the server", () => {
  for (const mode of ["jetstream", "core"] as const) {
    test(`${mode}: max_bytes above the server's max_payload: capped to it, logged once, all 3000 events delivered, no publish error`, async () => {
      const server = await startNatsServer({ config: "max_payload: 64KB\n" });
      const { publisher, reported, messages } = started(server.url, mode);
      const sub = mode === "core" ? await subscribeAll(server.url) : undefined;
      try {
        await publisher.start();
        const events = Array.from({ length: 3000 }, () => sized(2000));
        for (let i = 0; i < events.length; i += 500) {
          expect(await publisher.publish(events.slice(i, i + 500), never())).toBe(DELIVERED);
        }
        expect(reported).toEqual([]);
        expect(messages(CAPPED).length).toBe(1);
        expect(messages(CAPPED)[0]).toMatchObject({ limit: 65536, source: "the server's max_payload" });

        let received: Array<Received & { batch?: string }>;
        if (sub) {
          // core: the flush confirmed the server got them; the subscriber sees them soon after
          const eventsIn = (r: Received) => r.data.split("\n").filter(Boolean).length;
          await waitFor(() => sub.received.reduce((n, r) => n + eventsIn(r), 0) >= events.length, "every event at the subscriber");
          received = sub.received.map((r) => {
            const batch = r.data.split("\n").filter(Boolean).length;
            return batch > 1 ? { ...r, batch: String(batch) } : r;
          });
        } else {
          received = await storedMessages(server.url);
        }
        const unpacked = received.map(unpack);
        for (const m of unpacked) expect(m.bytes).toBeLessThanOrEqual(65536);
        expect(unpacked.flatMap((m) => m.ids).sort()).toEqual(events.map((e) => e.id).sort());
        // 2001 bytes an event: 32 fit under 64 KiB, so 6 batches of 500 make 6 x 16 messages, not 3000
        expect(received.length).toBe(6 * Math.ceil(500 / 32));
      } finally {
        await sub?.nc.close();
        await publisher.close();
      }
    });
  }

  test("jetstream: the stream's max_msg_size is read at start and caps batch messages", async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`${SUBJECT}.>`], max_msg_size: 10_000 });
    await nc.close();
    const { publisher, reported, messages } = started(server.url, "jetstream");
    try {
      await publisher.start();
      const events = Array.from({ length: 300 }, () => sized(700));
      expect(await publisher.publish(events, never())).toBe(DELIVERED);
      expect(reported).toEqual([]);
      expect(messages(CAPPED)[0]).toMatchObject({ limit: 10_000, source: "the stream's max_msg_size" });
      const stored = (await storedMessages(server.url)).map(unpack);
      for (const m of stored) expect(m.bytes).toBeLessThanOrEqual(10_000);
      expect(stored.flatMap((m) => m.ids).sort()).toEqual(events.map((e) => e.id).sort());
    } finally {
      await publisher.close();
    }
  });

  test("a message of exactly the limit, header included, is packed whole and accepted (server max_payload, stream max_msg_size)", async () => {
    const events = Array.from({ length: 10 }, () => sized(500));
    const [whole] = pack(events, { maxEvents: 10, maxBytes: 1 << 20 });
    const exact = messageBytes(whole!.message);
    const core = await startNatsServer({ jetstream: false, config: `max_payload: ${exact}\n` });
    const js = await startNatsServer();
    const nc = await connect({ servers: js.url });
    await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`${SUBJECT}.>`], max_msg_size: exact });
    await nc.close();
    for (const [mode, server] of [["core", core], ["jetstream", js]] as const) {
      const { publisher, reported } = started(server.url, mode);
      try {
        await publisher.start();
        expect(await publisher.publish(events, never())).toBe(DELIVERED);
        expect(reported).toEqual([]);
      } finally {
        await publisher.close();
      }
    }
    expect((await storedMessages(js.url)).map((m) => unpack(m).bytes)).toEqual([exact]);
  });

  test("jetstream: a stream's max_msg_size lowered while running: refused batches are split in halves and delivered, the limit re-read", async () => {
    const server = await startNatsServer();
    const { publisher, reported, messages } = started(server.url, "jetstream");
    try {
      await publisher.start();
      await setStreamMaxMsgSize(server.url, 8192);
      const first = Array.from({ length: 200 }, () => sized(500));
      expect(await publisher.publish(first, never())).toBe(DELIVERED);
      // 2 messages of 100 events refused (counted in events); the stream's limit re-read, their halves are packed within it.
      expect(reported).toEqual([["max_payload", 200]]);
      expect(messages(SPLITTING).length).toBe(1);
      expect(messages("the JetStream stream's max_msg_size changed")[0]).toMatchObject({ max_msg_size: 8192 });

      // The limit is known now: the next batches are packed within it, nothing refused.
      const second = Array.from({ length: 200 }, () => sized(500));
      expect(await publisher.publish(second, never())).toBe(DELIVERED);
      expect(reported.length).toBe(1);
      expect(messages(CAPPED)[0]).toMatchObject({ limit: 8192, source: "the stream's max_msg_size" });

      const stored = (await storedMessages(server.url)).map(unpack);
      for (const m of stored) expect(m.bytes).toBeLessThanOrEqual(8192);
      expect(stored.flatMap((m) => m.ids).sort()).toEqual([...first, ...second].map((e) => e.id).sort());
    } finally {
      await publisher.close();
    }
  });

  test("an event too large on its own is rejected; its neighbours are delivered (server max_payload, and a lowered max_msg_size)", async () => {
    // The server's max_payload, known from INFO: the large event goes alone and is refused alone.
    const server = await startNatsServer({ config: "max_payload: 64KB\n" });
    for (const mode of ["jetstream", "core"] as const) {
      const { publisher, reported } = started(server.url, mode);
      try {
        await publisher.start();
        const events = [...Array.from({ length: 100 }, () => sized(1000)), sized(70_000), ...Array.from({ length: 100 }, () => sized(1000))];
        const result = await publisher.publish(events, never());
        expect(delivered(events, result)).toBe(200);
        expect(result.rejected).toEqual([{ event: events[100]!, reason: "max_payload" }]);
        expect(reported).toEqual([["max_payload", 1]]);
      } finally {
        await publisher.close();
      }
    }

    // A stream limit lowered after start: halving finds the one event that never fits.
    const jsServer = await startNatsServer();
    const { publisher, reported, messages } = started(jsServer.url, "jetstream");
    try {
      await publisher.start();
      await setStreamMaxMsgSize(jsServer.url, 8192);
      const events = [...Array.from({ length: 60 }, () => sized(500)), sized(9000), ...Array.from({ length: 39 }, () => sized(500))];
      const result = await publisher.publish(events, never());
      expect(delivered(events, result)).toBe(99);
      expect(result.rejected).toEqual([{ event: events[60]!, reason: "max_payload" }]);
      expect(messages("dropping events NATS can never accept").map((r) => r.events)).toEqual([1]);
      // Publish errors are counted in events: the refused 100-event message, then the lone event its halves left.
      expect(reported).toEqual([["max_payload", 100], ["max_payload", 1]]);
      const stored = (await readStream(jsServer.url, STREAM)).flatMap((m) => m.data.split("\n").filter(Boolean).map((l) => JSON.parse(l).event_id));
      expect(stored.sort()).toEqual(events.filter((_, i) => i !== 60).map((e) => e.id).sort());
    } finally {
      await publisher.close();
    }
  });
});

/** Refuses any message over `limit` bytes as max_payload without saying its limit, as a NATS whose limit changed would. */
class SizeLimitedPublisher implements Publisher {
  readonly sent: QueuedEvent[] = [];
  calls = 0;
  constructor(readonly limit: number) {}
  async start(): Promise<void> {}
  async publish(batch: readonly QueuedEvent[]): Promise<PublishOutcome> {
    this.calls++;
    const rejected = batch.filter((m) => messageBytes(m) > this.limit).map((event) => ({ event, reason: "max_payload" as const }));
    this.sent.push(...batch.filter((m) => messageBytes(m) <= this.limit));
    return outcome([], rejected);
  }
  status(): PublisherStatus {
    return { mode: "memory", connected: true, closed: false, reconnects: 0 };
  }
  async close(): Promise<void> {}
}

test("splitting: halves down to single events, in log2(max_events) rounds; an abort stops it with the rest undelivered", async () => {
  const inner = new SizeLimitedPublisher(3000);
  const publisher = new BatchingPublisher(inner, { maxEvents: 64, maxBytes: 1 << 20 }, captureLog().log);
  const events = Array.from({ length: 64 }, () => sized(400));
  events[17] = sized(5000);
  const result = await publisher.publish(events, never());
  expect(result.rejected).toEqual([{ event: events[17]!, reason: "max_payload" }]);
  expect(result.undelivered).toEqual([]);
  expect(inner.calls).toBe(7); // 64, 32, 16, 8, 4, 2, 1
  const sentIds = inner.sent.flatMap((m) => new TextDecoder().decode(m.bytes).split("\n").filter(Boolean).map((l) => JSON.parse(l).event_id));
  expect(sentIds.sort()).toEqual(events.filter((_, i) => i !== 17).map((e) => e.id).sort());

  const aborted = new AbortController();
  aborted.abort();
  const cut = await new BatchingPublisher(new SizeLimitedPublisher(3000), { maxEvents: 64, maxBytes: 1 << 20 }, captureLog().log).publish(events, aborted.signal);
  expect(cut.undelivered.length + cut.rejected.length).toBe(64);
});
