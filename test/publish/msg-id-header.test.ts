// MsgIdHeader stands in for nats.js's MsgHdrs (see msg-id-header.ts): it
// works only as long as publish() touches nothing on the header but
// encode(). The client is pinned to exact versions in package.json; this
// test is what tells whether a new version still holds to that.
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, PublishOptions } from "@nats-io/nats-core";
import { BATCH_HEADER, MsgIdHeader } from "../../src/publish/msg-id-header.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { SUBJECT } from "./fixtures.ts";

afterAll(stopAllNatsServers);

/** `header` behind a Proxy that records every operation anything performs on it, as "trap property". */
function recording(header: MsgIdHeader): { headers: MsgHdrs; touched: string[] } {
  const touched: string[] = [];
  const proxy = new Proxy(header, {
    get(target, property) {
      touched.push(`get ${String(property)}`);
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    has(target, property) {
      touched.push(`has ${String(property)}`);
      return Reflect.has(target, property);
    },
    set(target, property, value) {
      touched.push(`set ${String(property)}`);
      return Reflect.set(target, property, value, target);
    },
    ownKeys(target) {
      touched.push("ownKeys");
      return Reflect.ownKeys(target);
    },
    getOwnPropertyDescriptor(target, property) {
      touched.push(`getOwnPropertyDescriptor ${String(property)}`);
      return Reflect.getOwnPropertyDescriptor(target, property);
    },
    getPrototypeOf(target) {
      touched.push("getPrototypeOf");
      return Reflect.getPrototypeOf(target);
    },
    defineProperty(target, property, descriptor) {
      touched.push(`defineProperty ${String(property)}`);
      return Reflect.defineProperty(target, property, descriptor);
    },
    deleteProperty(target, property) {
      touched.push(`deleteProperty ${String(property)}`);
      return Reflect.deleteProperty(target, property);
    },
  });
  return { headers: proxy as unknown as MsgHdrs, touched };
}

test("publish() uses nothing of the header but encode(), and the server receives Nats-Msg-Id and Tapio-Batch", async () => {
  const server = await startNatsServer({ jetstream: false });
  const nc = await connect({ servers: server.url });
  try {
    const received: Msg[] = [];
    const done = Promise.withResolvers<void>();
    nc.subscribe(`${SUBJECT}.>`, {
      callback: (_err, msg) => {
        received.push(msg);
        if (received.length === 3) done.resolve();
      },
    });
    await nc.flush();

    const header = new MsgIdHeader();
    const { headers, touched } = recording(header);
    const send = (id: string, options: PublishOptions, batchOf?: number) => {
      header.for({ id, batchOf });
      touched.length = 0;
      nc.publish(`${SUBJECT}.kubelet`, "{}", options);
      return [...touched];
    };
    // The core publisher's call, the JetStream publisher's call (with a reply subject), and a batch message.
    expect(send("evt-1", { headers })).toEqual(["get encode"]);
    expect(send("evt-2", { headers, reply: `${SUBJECT}.reply` })).toEqual(["get encode"]);
    expect(send("evt-3", { headers }, 7)).toEqual(["get encode"]);
    await done.promise;

    expect(received.map((m) => m.headers?.get("Nats-Msg-Id"))).toEqual(["evt-1", "evt-2", "evt-3"]);
    expect(received.map((m) => m.headers?.get(BATCH_HEADER) ?? "")).toEqual(["", "", "7"]);
    expect(received[1]?.reply).toBe(`${SUBJECT}.reply`);
    expect(received.map((m) => m.string())).toEqual(["{}", "{}", "{}"]);
  } finally {
    await nc.close();
  }
});
