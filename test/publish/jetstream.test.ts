// JetStream publisher against a real nats-server: stream creation and
// checks, delivery of every event exactly once, deduplication by msg id.
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { createPublisher, PublisherError } from "../../src/publish/index.ts";
import { DELIVERED } from "../../src/publish/publisher.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { captureLog, delivered, ids, makeEvents, natsConfig, never, readStream, SUBJECT, expectExactlyOnce } from "./fixtures.ts";

afterAll(stopAllNatsServers);

async function withManager<T>(url: string, fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

test("jetstream: creates the missing stream with subjects <subject>.> and the configured limits", async () => {
  const server = await startNatsServer();
  const config = natsConfig(server.url);
  const publisher = createPublisher(config, { log: captureLog().log });
  try {
    await publisher.start();
    const info = await withManager(server.url, (jsm) => jsm.streams.info("TAPIO_EVENTS"));
    expect(info.config.subjects).toEqual([`${SUBJECT}.>`]);
    expect(info.config.max_age).toBe(config.stream.max_age.nanos);
    expect(info.config.duplicate_window).toBe(config.stream.duplicate_window.nanos);
    expect(info.config.max_bytes).toBe(-1);
    expect(info.config.num_replicas).toBe(1);
  } finally {
    await publisher.close();
  }
});

test("jetstream: 2000 events stored exactly once, each with Nats-Msg-Id = event id", async () => {
  const server = await startNatsServer();
  const publisher = createPublisher(natsConfig(server.url, { max_in_flight: 64 }), { log: captureLog().log });
  try {
    await publisher.start();
    const events = makeEvents(2000);
    const batches = [events.slice(0, 500), events.slice(500, 1000), events.slice(1000, 1500), events.slice(1500)];
    // concurrent calls share the max_in_flight permits
    const outcomes = await Promise.all(batches.map((b) => publisher.publish(b, never())));
    expect(outcomes.map((o, i) => delivered(batches[i]!, o))).toEqual([500, 500, 500, 500]);
    for (const o of outcomes) expect(o).toBe(DELIVERED);
    expectExactlyOnce(events, await readStream(server.url, "TAPIO_EVENTS"));
  } finally {
    await publisher.close();
  }
});

test("jetstream: events with the same msg id are stored once", async () => {
  const server = await startNatsServer();
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log });
  try {
    await publisher.start();
    const events = makeEvents(50);
    expect(delivered(events, await publisher.publish(events, never()))).toBe(50);
    // a retry of the same events (same ids) counts as delivered, but is not stored again
    expect(delivered(events, await publisher.publish(events, never()))).toBe(50);
    const doubled = [...events.slice(0, 10), ...events.slice(0, 10)];
    expect(delivered(doubled, await publisher.publish(doubled, never()))).toBe(20);
    const stored = await readStream(server.url, "TAPIO_EVENTS");
    expect(stored.map((r) => r.msgId).sort()).toEqual(events.map((e) => e.id).sort());
  } finally {
    await publisher.close();
  }
});

test("jetstream: a pre-existing covering stream is used as is", async () => {
  const server = await startNatsServer();
  await withManager(server.url, (jsm) =>
    jsm.streams.add({ name: "TAPIO_EVENTS", subjects: ["tapio.>"], max_msgs: 100_000, duplicate_window: 30_000_000_000 }),
  );
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log });
  try {
    await publisher.start();
    const events = makeEvents(10);
    expect(delivered(events, await publisher.publish(events, never()))).toBe(10);
    const info = await withManager(server.url, (jsm) => jsm.streams.info("TAPIO_EVENTS"));
    // our configured limits did not replace the operator's
    expect(info.config.subjects).toEqual(["tapio.>"]);
    expect(info.config.max_msgs).toBe(100_000);
    expect(info.config.duplicate_window).toBe(30_000_000_000);
    expect(info.state.messages).toBe(10);
  } finally {
    await publisher.close();
  }
});

test("jetstream: a pre-existing stream that does not cover <subject>.> makes start() reject clearly", async () => {
  const server = await startNatsServer();
  await withManager(server.url, (jsm) => jsm.streams.add({ name: "TAPIO_EVENTS", subjects: ["tapio.events.kubelet", "other.>"] }));
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log });
  try {
    const err = await publisher.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PublisherError);
    const message = (err as Error).message;
    expect(message).toContain('"TAPIO_EVENTS"');
    expect(message).toContain('"tapio.events.kubelet", "other.>"');
    expect(message).toContain('"tapio.events.>"');
  } finally {
    await publisher.close();
  }
});

test("jetstream: a stream deleted while running is created again and publishing resumes", async () => {
  const server = await startNatsServer();
  const reasons: string[] = [];
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log, onError: (reason) => reasons.push(reason) });
  try {
    await publisher.start();
    const first = makeEvents(10);
    expect(delivered(first, await publisher.publish(first, never()))).toBe(10);
    await withManager(server.url, (jsm) => jsm.streams.delete("TAPIO_EVENTS"));
    const events = makeEvents(10);
    expect(delivered(events, await publisher.publish(events, never()))).toBe(10);
    expect(reasons).toContain("no_responders");
    const stored = await readStream(server.url, "TAPIO_EVENTS");
    expect(stored.map((r) => r.msgId).sort()).toEqual(events.map((e) => e.id).sort());
  } finally {
    await publisher.close();
  }
});

test("jetstream: a full stream (discard new) is retried with backoff, reported as stream_full, logged rarely", async () => {
  const server = await startNatsServer();
  await withManager(server.url, (jsm) =>
    jsm.streams.add({ name: "TAPIO_EVENTS", subjects: [`${SUBJECT}.>`], max_msgs: 5, discard: DiscardPolicy.New }),
  );
  const reported: Array<[string, number]> = [];
  const { log, records } = captureLog();
  const publisher = createPublisher(natsConfig(server.url), { log, onError: (reason, _err, events) => reported.push([reason, events]) });
  try {
    await publisher.start();
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 1000);
    const events = makeEvents(8);
    const result = await publisher.publish(events, abort.signal);
    expect(delivered(events, result)).toBe(5);
    // what the full stream refused comes back undelivered (retryable), not rejected
    expect(result.rejected).toEqual([]);
    const stored = await readStream(server.url, "TAPIO_EVENTS");
    expect(ids(result.undelivered)).toEqual(ids(events.filter((e) => !stored.some((r) => r.msgId === e.id))));
    // one report per round, for all three events together
    expect(reported[0]).toEqual(["stream_full", 3]);
    // backoff from 50 ms: a handful of rounds in a second, not hundreds
    expect(reported.length).toBeGreaterThan(2);
    expect(reported.length).toBeLessThan(12);
    expect(publisher.status().lastError).toMatch(/^stream_full: maximum messages exceeded/);
    const warnings = records().filter((r) => r.msg === "publish failed; retrying");
    expect(warnings.length).toBe(1);
  } finally {
    await publisher.close();
  }
});

test("jetstream and core: an event larger than max_payload is rejected as max_payload and reported, the rest delivered", async () => {
  const server = await startNatsServer({ config: "max_payload: 2048" });
  for (const mode of ["jetstream", "core"] as const) {
    const reported: Array<[string, number]> = [];
    const publisher = createPublisher(natsConfig(server.url, { mode }), {
      log: captureLog().log,
      onError: (reason, _err, events) => reported.push([reason, events]),
    });
    try {
      await publisher.start();
      const events = makeEvents(5);
      const huge = { ...events[2]!, bytes: new Uint8Array(4096).fill(0x61) };
      events[2] = huge;
      const result = await publisher.publish(events, never());
      expect(delivered(events, result)).toBe(4);
      expect(result.undelivered).toEqual([]);
      expect(result.rejected.length).toBe(1);
      expect(result.rejected[0]?.event).toBe(huge);
      expect(result.rejected[0]?.reason).toBe("max_payload");
      expect(reported).toEqual([["max_payload", 1]]);
    } finally {
      await publisher.close();
    }
  }
});
