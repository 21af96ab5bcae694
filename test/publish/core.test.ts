// Core NATS publisher against a real nats-server: every event arrives once
// with its id as Nats-Msg-Id, and a batch counts only after the flush.
import { afterAll, expect, test } from "bun:test";
import { createPublisher } from "../../src/publish/index.ts";
import { DELIVERED } from "../../src/publish/publisher.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { captureLog, delivered, makeEvents, natsConfig, never, subscribeAll, expectExactlyOnce } from "./fixtures.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

test("core: 2000 events arrive exactly once, each with Nats-Msg-Id = event id", async () => {
  const server = await startNatsServer({ jetstream: false });
  const { nc, received } = await subscribeAll(server.url);
  const publisher = createPublisher(natsConfig(server.url, { mode: "core" }), { log: captureLog().log });
  try {
    await publisher.start();
    expect(publisher.status()).toMatchObject({ mode: "core", connected: true, reconnects: 0 });
    const events = makeEvents(2000);
    const batches = [events.slice(0, 700), events.slice(700, 1400), events.slice(1400)];
    const outcomes = await Promise.all(batches.map((b) => publisher.publish(b, never())));
    expect(outcomes.map((o, i) => delivered(batches[i]!, o))).toEqual([700, 700, 600]);
    // a whole batch delivered is the shared outcome, nothing allocated
    for (const o of outcomes) expect(o).toBe(DELIVERED);
    await waitFor(() => received.length >= 2000);
    await nc.flush();
    expectExactlyOnce(events, received);
  } finally {
    await publisher.close();
    await nc.close();
  }
});
