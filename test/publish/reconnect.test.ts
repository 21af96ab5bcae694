// Publishing while the server is down: publish() waits (it does not drop or
// fail) and completes after the server restarts on the same port, for both
// modes. A stream captures the core publishes too, so what reached the server
// can be counted without racing a subscriber's own reconnect.
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Duration } from "../../src/config/duration.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { captureLog, delivered, ids, makeEvents, natsConfig, never, readStream, SUBJECT } from "./fixtures.ts";
import { PROMPTLY_MS, waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

for (const mode of ["core", "jetstream"] as const) {
  test(`${mode}: publish waits while the server is down and completes after it restarts`, async () => {
    const server = await startNatsServer();
    if (mode === "core") {
      const nc = await connect({ servers: server.url });
      await (await jetstreamManager(nc)).streams.add({ name: "TAPIO_EVENTS", subjects: [`${SUBJECT}.>`], duplicate_window: 120_000_000_000 });
      await nc.close();
    }
    const errors: string[] = [];
    const publisher = createPublisher(natsConfig(server.url, { mode }), {
      log: captureLog().log,
      onError: (reason) => errors.push(reason),
    });
    try {
      await publisher.start();
      const before = makeEvents(500);
      expect(delivered(before, await publisher.publish(before, never()))).toBe(500);

      // SIGTERM: a graceful stop keeps what the stream stored; the publisher sees a dropped connection either way
      await server.kill("SIGTERM");
      await waitFor(() => !publisher.status().connected);
      const during = makeEvents(500);
      let settled = false;
      const pending = publisher.publish(during, never()).finally(() => {
        settled = true;
      });
      await Bun.sleep(700);
      expect(settled).toBe(false);
      expect(publisher.status().connected).toBe(false);

      await server.restart();
      expect(delivered(during, await pending)).toBe(500);
      expect(publisher.status()).toMatchObject({ connected: true, reconnects: 1 });

      const stored = await readStream(server.url, "TAPIO_EVENTS");
      const ids = new Set(stored.map((r) => r.msgId));
      expect(ids.size).toBe(1000);
      for (const e of [...before, ...during]) expect(ids.has(e.id)).toBe(true);
      // the duplicate window makes re-sent events count once
      expect(stored.length).toBe(1000);
    } finally {
      await publisher.close();
    }
  });
}

test("start() keeps trying while no server is up, and connects once one starts", async () => {
  const server = await startNatsServer({ jetstream: false });
  const { port } = server;
  await server.kill("SIGTERM");
  const publisher = createPublisher(natsConfig(`nats://127.0.0.1:${port}`, { mode: "core" }), { log: captureLog().log });
  try {
    let started = false;
    const starting = publisher.start().then(() => {
      started = true;
    });
    await Bun.sleep(500);
    expect(started).toBe(false);
    expect(publisher.status().connected).toBe(false);
    expect(publisher.status().lastError).toBeTruthy();
    await server.restart();
    await starting;
    expect(publisher.status().connected).toBe(true);
  } finally {
    await publisher.close();
  }
});

test("close() during a start() that cannot connect ends it promptly", async () => {
  const server = await startNatsServer({ jetstream: false });
  await server.stop();
  const publisher = createPublisher(natsConfig(server.url, { mode: "jetstream" }), { log: captureLog().log });
  const starting = publisher.start().then(() => "started", (e: Error) => e.message);
  await Bun.sleep(300);
  const t0 = performance.now();
  await publisher.close();
  expect(await starting).toContain("closed before NATS was reached");
  expect(performance.now() - t0).toBeLessThan(PROMPTLY_MS);
});

test("a publish aborted while the server is down returns the whole batch undelivered, promptly", async () => {
  const server = await startNatsServer();
  const publisher = createPublisher(natsConfig(server.url), { log: captureLog().log });
  try {
    await publisher.start();
    await server.kill("SIGKILL");
    await waitFor(() => !publisher.status().connected);
    const abort = new AbortController();
    const events = makeEvents(100);
    const pending = publisher.publish(events, abort.signal);
    await Bun.sleep(200);
    const t0 = performance.now();
    abort.abort();
    const result = await pending;
    expect(performance.now() - t0).toBeLessThan(PROMPTLY_MS);
    expect(delivered(events, result)).toBe(0);
    expect(ids(result.undelivered)).toEqual(ids(events));
    expect(result.rejected).toEqual([]);
  } finally {
    await publisher.close();
  }
});

test("core: a batch sent into a hung server is not counted, and is re-sent once a server answers", async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  await (await jetstreamManager(nc)).streams.add({ name: "TAPIO_EVENTS", subjects: [`${SUBJECT}.>`], duplicate_window: 120_000_000_000 });
  await nc.close();
  const reasons = new Set<string>();
  const publisher = createPublisher(natsConfig(server.url, { mode: "core", timeout: new Duration(300) }), {
    log: captureLog().log,
    onError: (reason) => reasons.add(reason),
  });
  try {
    await publisher.start();
    // frozen, the server keeps the TCP connection open: the client still thinks it is connected
    await server.kill("SIGSTOP");
    const events = makeEvents(300);
    let settled = false;
    const pending = publisher.publish(events, never()).finally(() => {
      settled = true;
    });
    await Bun.sleep(800);
    expect(settled).toBe(false);
    expect(reasons.has("timeout")).toBe(true);
    await server.kill("SIGKILL");
    await server.restart();
    expect(delivered(events, await pending)).toBe(300);
    const ids = new Set((await readStream(server.url, "TAPIO_EVENTS")).map((r) => r.msgId));
    for (const e of events) expect(ids.has(e.id)).toBe(true);
  } finally {
    await publisher.close();
  }
});

test("jetstream: a server restart in the middle of a publishing run loses nothing and stores each event once", async () => {
  const server = await startNatsServer();
  const reasons = new Set<string>();
  const publisher = createPublisher(natsConfig(server.url, { max_in_flight: 32 }), {
    log: captureLog().log,
    onError: (reason) => reasons.add(reason),
  });
  try {
    await publisher.start();
    const batches = Array.from({ length: 20 }, () => makeEvents(100));
    let restarting: Promise<void> | undefined;
    let count = 0;
    for (const [i, batch] of batches.entries()) {
      // the kill lands while batch 5 is in flight; the following batches wait for the restart
      if (i === 5) {
        restarting = (async () => {
          await server.kill("SIGTERM");
          await Bun.sleep(300);
          await server.restart();
        })();
      }
      count += delivered(batch, await publisher.publish(batch, never()));
    }
    await restarting;
    expect(count).toBe(2000);
    expect(publisher.status().reconnects).toBe(1);
    // the restart hit publishes in flight, which were retried
    expect(reasons.size).toBeGreaterThan(0);
    const stored = await readStream(server.url, "TAPIO_EVENTS");
    expect(new Set(stored.map((r) => r.msgId)).size).toBe(2000);
    expect(stored.length).toBe(2000);
  } finally {
    await publisher.close();
  }
});
