// publish() before start() has resolved: it waits for readiness (the
// connection, and for JetStream the stream) and then delivers; if start()
// fails for good, the waiting calls and every later one return their whole
// batch undelivered at once instead of hanging; the wait is abortable.
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConfig } from "../../src/config/schema.ts";
import type { QueuedEvent } from "../../src/event/event.ts";
import { createPublisher, PublisherError, type Publisher } from "../../src/publish/index.ts";
import { DELIVERED, type PublishOutcome } from "../../src/publish/publisher.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { captureLog, delivered, ids, makeEvents, natsConfig, never, readStream, SUBJECT } from "./fixtures.ts";
import { PROMPTLY_MS } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

async function addStream(url: string, subjects: string[]): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: "TAPIO_EVENTS", subjects, duplicate_window: 120_000_000_000 });
  } finally {
    await nc.close();
  }
}

/** publish() that records when it settled; `settled` stays undefined until then. */
function tracked(publisher: Publisher, batch: readonly QueuedEvent[], signal: AbortSignal = never()) {
  const state: { settled?: number; result: Promise<PublishOutcome> } = { result: Promise.resolve(DELIVERED) };
  state.result = publisher.publish(batch, signal).then((o) => {
    state.settled = performance.now();
    return o;
  });
  return state;
}

function expectAllUndelivered(batch: readonly QueuedEvent[], result: PublishOutcome): void {
  expect(delivered(batch, result)).toBe(0);
  expect(result.undelivered.length).toBe(batch.length);
  expect(ids(result.undelivered)).toEqual(ids(batch));
  expect(result.rejected).toEqual([]);
}

for (const mode of ["core", "jetstream"] as const) {
  test(`${mode}: publish() called before start(), with no server up yet, waits and delivers once the server starts`, async () => {
    const server = await startNatsServer();
    // a stream captures core publishes too, so what arrived can be read after the restart
    // (JetStream mode creates its stream itself once the server is back)
    if (mode === "core") await addStream(server.url, [`${SUBJECT}.>`]);
    await server.kill("SIGTERM");

    const publisher = createPublisher(natsConfig(server.url, { mode }), { log: captureLog().log });
    try {
      const first = makeEvents(150);
      const second = makeEvents(50);
      // both before start() is even called
      const a = tracked(publisher, first);
      const b = tracked(publisher, second);
      const starting = publisher.start();
      await Bun.sleep(500);
      expect(a.settled).toBeUndefined();
      expect(b.settled).toBeUndefined();
      expect(publisher.status().connected).toBe(false);

      await server.restart();
      await starting;
      expect(delivered(first, await a.result)).toBe(150);
      expect(delivered(second, await b.result)).toBe(50);
      const stored = await readStream(server.url, "TAPIO_EVENTS");
      expect(stored.map((r) => r.msgId).sort()).toEqual(ids([...first, ...second]));
    } finally {
      await publisher.close();
    }
  });
}

interface StartFailure {
  readonly name: string;
  readonly mode: NatsConfig["mode"];
  /** sets up a server (or none) and returns the publisher's config */
  readonly setup: () => Promise<Partial<NatsConfig> & { url: string[] }>;
  readonly error: RegExp;
}

const failures: StartFailure[] = [
  {
    name: "a stream that does not cover the subjects",
    mode: "jetstream",
    setup: async () => {
      const server = await startNatsServer();
      await addStream(server.url, ["other.>"]);
      return { url: [server.url] };
    },
    error: /do not cover "tapio\.events\.>"/,
  },
  ...(["core", "jetstream"] as const).map((mode) => ({
    name: "rejected credentials",
    mode,
    setup: async () => {
      const server = await startNatsServer({ config: `authorization { token: "right-token" }` });
      return { url: [server.url], token: "wrong-token" };
    },
    error: /rejected the credentials/,
  })),
  {
    name: "no server within max_reconnects",
    mode: "core",
    setup: async () => {
      const server = await startNatsServer({ jetstream: false });
      await server.stop();
      return { url: [server.url], max_reconnects: 2 };
    },
    error: /cannot connect to NATS .* after 3 attempts/,
  },
];

for (const failure of failures) {
  test(`${failure.mode}: start() failing for good (${failure.name}) returns waiting and later publish() calls whole, undelivered`, async () => {
    const overrides = await failure.setup();
    const publisher = createPublisher(natsConfig(overrides.url[0] ?? "", { mode: failure.mode, ...overrides }), { log: captureLog().log });
    try {
      const waiting = makeEvents(40);
      const pending = tracked(publisher, waiting);
      // give the publish time to start waiting: it must not resolve before start() has failed
      await Bun.sleep(20);
      expect(pending.settled).toBeUndefined();

      const err = await publisher.start().then(() => undefined, (e: Error) => e);
      const failedAt = performance.now();
      expect(err).toBeInstanceOf(PublisherError);
      expect(err?.message).toMatch(failure.error);

      expectAllUndelivered(waiting, await pending.result);
      expect((pending.settled ?? Infinity) - failedAt).toBeLessThan(PROMPTLY_MS);

      // and every later call, at once
      const later = makeEvents(10);
      const t0 = performance.now();
      expectAllUndelivered(later, await publisher.publish(later, never()));
      expect(performance.now() - t0).toBeLessThan(PROMPTLY_MS);
    } finally {
      await publisher.close();
    }
  });
}

test("jetstream: close() during a start() that cannot connect releases a waiting publish() with its batch undelivered", async () => {
  const server = await startNatsServer({ jetstream: false });
  await server.stop();
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log });
  const starting = publisher.start().then(() => undefined, (e: Error) => e);
  const events = makeEvents(25);
  const pending = tracked(publisher, events);
  await Bun.sleep(300);
  expect(pending.settled).toBeUndefined();
  const t0 = performance.now();
  await publisher.close();
  expect((await starting)?.message).toContain("closed before NATS was reached");
  expectAllUndelivered(events, await pending.result);
  expect((pending.settled ?? Infinity) - t0).toBeLessThan(PROMPTLY_MS);
});

for (const mode of ["core", "jetstream"] as const) {
  test(`${mode}: a publish() waiting for start() can be aborted; the publisher works once started`, async () => {
    const server = await startNatsServer();
    await server.kill("SIGTERM");
    const publisher = createPublisher(natsConfig(server.url, { mode }), { log: captureLog().log });
    try {
      const starting = publisher.start();
      const abort = new AbortController();
      const events = makeEvents(30);
      const pending = tracked(publisher, events, abort.signal);
      await Bun.sleep(200);
      expect(pending.settled).toBeUndefined();
      const t0 = performance.now();
      abort.abort();
      expectAllUndelivered(events, await pending.result);
      expect((pending.settled ?? Infinity) - t0).toBeLessThan(PROMPTLY_MS);

      // the abort ended that call only, not the start
      await server.restart();
      await starting;
      const next = makeEvents(30);
      expect(delivered(next, await publisher.publish(next, never()))).toBe(30);
    } finally {
      await publisher.close();
    }
  });
}
