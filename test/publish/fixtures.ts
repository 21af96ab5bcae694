// Shared pieces of the publisher tests: a NatsConfig with test-friendly
// timings, generated events, a log capture, readers that observe what
// really reached the server (a core subscription, the stream's contents),
// and a checked reading of a PublishOutcome.
import { expect } from "bun:test";
import pino, { type Logger } from "pino";
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Duration } from "../../src/config/duration.ts";
import type { NatsConfig } from "../../src/config/schema.ts";
import type { QueuedEvent } from "../../src/event/event.ts";
import type { PublishOutcome } from "../../src/publish/publisher.ts";

export const SUBJECT = "tapio.events";

export function natsConfig(url: string, overrides: Partial<NatsConfig> = {}): NatsConfig {
  return {
    url: [url],
    subject: SUBJECT,
    mode: "jetstream",
    stream: {
      name: "TAPIO_EVENTS",
      max_age: new Duration(3_600_000),
      max_bytes: -1,
      replicas: 1,
      duplicate_window: new Duration(120_000),
    },
    name: "tapio-collectors-test",
    inbox_prefix: "_INBOX",
    max_reconnects: -1,
    reconnect_wait: new Duration(100),
    timeout: new Duration(2000),
    max_in_flight: 256,
    ...overrides,
  } as NatsConfig;
}

let batchNo = 0;

/** `n` events spread over two collectors, ids unique across calls. */
export function makeEvents(n: number, collectors: readonly string[] = ["kubelet", "k8s_resource"]): QueuedEvent[] {
  const batch = ++batchNo;
  const encoder = new TextEncoder();
  return Array.from({ length: n }, (_, i) => {
    const collector = collectors[i % collectors.length] ?? "kubelet";
    const id = `evt-${process.pid}-${batch}-${i}`;
    const json = JSON.stringify({ event_id: id, type: "test", source: collector, severity: "info", event_data: { i }, metadata: {} });
    return { subject: `${SUBJECT}.${collector}`, id, bytes: encoder.encode(json), collector };
  });
}

export interface CapturedLog {
  readonly log: Logger;
  /** parsed log records so far */
  records(): Array<Record<string, unknown>>;
}

/** A pino logger writing JSON records to memory, for asserting what was (not) logged. */
export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
  return { log, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

export function never(): AbortSignal {
  return new AbortController().signal;
}

export interface Received {
  readonly subject: string;
  readonly msgId: string;
  readonly data: string;
}

/** Subscribes to `<SUBJECT>.>` on its own connection; `flush` before publishing, so nothing is missed. */
export async function subscribeAll(url: string, auth: NodeConnectionOptions = {}): Promise<{ nc: NatsConnection; received: Received[] }> {
  const nc = await connect({ servers: url, ...auth });
  const received: Received[] = [];
  nc.subscribe(`${SUBJECT}.>`, {
    callback: (err, msg) => {
      if (err) return;
      received.push({ subject: msg.subject, msgId: msg.headers?.get("Nats-Msg-Id") ?? "", data: msg.string() });
    },
  });
  await nc.flush();
  return { nc, received };
}

/** Every message stored in `stream`, read with an ordered consumer. */
export async function readStream(url: string, stream: string): Promise<Received[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    const out: Received[] = [];
    if (state.messages === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.fetch({ max_messages: state.messages, expires: 5000 });
    for await (const m of messages) {
      out.push({ subject: m.subject, msgId: m.headers?.get("Nats-Msg-Id") ?? "", data: m.string() });
      if (out.length === state.messages) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

/**
 * How many events of `batch` were delivered: those in neither list of the
 * outcome. Checks the outcome's shape first: both lists hold only events of
 * `batch` (the same objects), no event twice, and no event in both.
 */
export function delivered(batch: readonly QueuedEvent[], result: PublishOutcome): number {
  const inBatch = new Set(batch);
  const seen = new Set<QueuedEvent>();
  for (const event of [...result.undelivered, ...result.rejected.map((r) => r.event)]) {
    expect(inBatch.has(event)).toBe(true);
    expect(seen.has(event)).toBe(false);
    seen.add(event);
  }
  return batch.length - result.undelivered.length - result.rejected.length;
}

/** Every event arrived exactly once, on its subject, with its bytes, and Nats-Msg-Id = its id. */
export function expectExactlyOnce(events: readonly QueuedEvent[], received: readonly Received[]): void {
  expect(received.length).toBe(events.length);
  const byId = new Map(received.map((r) => [r.msgId, r]));
  expect(byId.size).toBe(events.length);
  const dec = new TextDecoder();
  for (const e of events) {
    const r = byId.get(e.id);
    expect(r?.subject).toBe(e.subject);
    expect(r?.data).toBe(dec.decode(e.bytes));
  }
}

/** The ids of `events`, sorted: compares event sets regardless of order. */
export function ids(events: readonly QueuedEvent[]): string[] {
  return events.map((e) => e.id).sort();
}
