// Publish error classification, with each error made the way it happens in
// production: by a real nats-server and the real nats.js client (and our
// AckWindow, which turns JetStream acks into errors).
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { AuthorizationError, headers, InvalidArgumentError, type NatsConnection, PermissionViolationError } from "@nats-io/nats-core";
import { DiscardPolicy, JetStreamApiError, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { classifyError, isPermanent, JS_ERR, PayloadTooLargeError, type PublishErrorReason } from "../../src/publish/classify.ts";
import { AckWindow } from "../../src/publish/ack-window.ts";
import { MsgIdHeader } from "../../src/publish/msg-id-header.ts";
import { sendEvent } from "../../src/publish/send.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeEvents, never, SUBJECT } from "./fixtures.ts";

afterAll(stopAllNatsServers);

async function withConnection<T>(server: NatsServer, fn: (nc: NatsConnection) => Promise<T>, options: object = {}): Promise<T> {
  const nc = await connect({ servers: server.url, ...options });
  try {
    return await fn(nc);
  } finally {
    if (!nc.isClosed()) await nc.close();
  }
}

/** Publishes `events` through the JetStream publisher's AckWindow; the errors the acks carried. */
async function ackErrors(nc: NatsConnection, events = makeEvents(1)): Promise<Error[]> {
  const window = new AckWindow(nc, { timeoutMs: 2000, maxInFlight: 16, inboxPrefix: "_INBOX" });
  try {
    const failed = await window.publishBatch(events, new Uint8Array(events.length), never());
    return failed.map((f) => f.error);
  } finally {
    window.close();
  }
}

/** The error `fn` rejects or throws with; fails the test if it succeeds. */
async function errorOf(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

function expectReason(err: Error, reason: PublishErrorReason, type: new (...args: never[]) => Error): void {
  expect(err).toBeInstanceOf(type);
  expect(classifyError(err)).toBe(reason);
}

test("a stream full with discard: new (max_msgs, max_bytes, max_msgs_per_subject) is stream_full, and retried", async () => {
  const server = await startNatsServer();
  await withConnection(server, async (nc) => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "MSGS", subjects: [`${SUBJECT}.kubelet`], max_msgs: 1, discard: DiscardPolicy.New });
    await jsm.streams.add({ name: "BYTES", subjects: [`${SUBJECT}.bytes`], max_bytes: 300, discard: DiscardPolicy.New });
    await jsm.streams.add({ name: "PER_SUBJECT", subjects: [`${SUBJECT}.per`], max_msgs_per_subject: 1, discard: DiscardPolicy.New, discard_new_per_subject: true });
    for (const collector of ["kubelet", "bytes", "per"]) {
      const errors = await ackErrors(nc, makeEvents(5, [collector]));
      expect({ collector, failed: errors.length }).toEqual({ collector, failed: 4 });
      for (const err of errors) {
        expectReason(err, "stream_full", JetStreamApiError);
        expect((err as JetStreamApiError).code).toBe(JS_ERR.storeFailed);
      }
    }
  });
  expect(isPermanent("stream_full")).toBe(false);
});

test("a message over the stream's max_msg_size is max_payload (refused for its size), and dropped", async () => {
  const server = await startNatsServer();
  await withConnection(server, async (nc) => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "SMALL", subjects: [`${SUBJECT}.>`], max_msg_size: 16 });
    const [err] = await ackErrors(nc);
    expectReason(err!, "max_payload", JetStreamApiError);
    expect((err as JetStreamApiError).code).toBe(JS_ERR.messageExceedsMaximum);
  });
  expect(isPermanent("max_payload")).toBe(true);
});

test("a message over the server's max_payload is refused as max_payload; another bad argument is invalid", async () => {
  const server = await startNatsServer({ jetstream: false, config: "max_payload: 512" });
  await withConnection(server, async (nc) => {
    const msgId = new MsgIdHeader();
    const options = { headers: msgId.headers };
    const [event] = makeEvents(1);
    const big = { ...event!, bytes: new Uint8Array(600) };
    const tooLarge = await errorOf(() => sendEvent(nc, big, msgId, options));
    expectReason(tooLarge, "max_payload", PayloadTooLargeError);
    expect(tooLarge.cause).toBeInstanceOf(InvalidArgumentError);

    // Small enough for max_payload, but not once the header is counted: still the size, not the argument.
    const withHeader = { ...event!, bytes: new Uint8Array(512 - 10) };
    expectReason(await errorOf(() => sendEvent(nc, withHeader, msgId, options)), "max_payload", PayloadTooLargeError);

    const badSubject = { ...event!, subject: "tapio events" };
    expect(classifyError(await errorOf(() => sendEvent(nc, badSubject, msgId, options)))).toBe("invalid");
    const badHeader = await errorOf(() => headers().set("Nats-Msg-Id", "a\r\nb"));
    expectReason(badHeader, "invalid", InvalidArgumentError);
  });
  expect(isPermanent("invalid")).toBe(true);
});

test("no stream on the subject, or JetStream off, is no_responders", async () => {
  const withJs = await startNatsServer();
  await withConnection(withJs, async (nc) => {
    const [noStream] = await ackErrors(nc);
    expect(classifyError(noStream)).toBe("no_responders");
    // nats.js's own path: JetStreamNotEnabled -> RequestError -> NoRespondersError
    const viaClient = await errorOf(() => jetstream(nc).publish(`${SUBJECT}.kubelet`, "x"));
    expect(classifyError(viaClient)).toBe("no_responders");
  });
  const withoutJs = await startNatsServer({ jetstream: false });
  await withConnection(withoutJs, async (nc) => {
    expect(classifyError(await errorOf(() => jetstreamManager(nc)))).toBe("no_responders");
  });
});

test("no reply within the timeout is timeout", async () => {
  const server = await startNatsServer({ jetstream: false });
  await withConnection(server, async (nc) => {
    // Something listens (so not no_responders) and never answers.
    nc.subscribe(`${SUBJECT}.>`, { callback: () => {} });
    await nc.flush();
    const window = new AckWindow(nc, { timeoutMs: 100, maxInFlight: 16, inboxPrefix: "_INBOX" });
    try {
      const [failed] = await window.publishBatch(makeEvents(1), new Uint8Array(1), never());
      expect(classifyError(failed!.error)).toBe("timeout");
    } finally {
      window.close();
    }
    expect(classifyError(await errorOf(() => nc.request(`${SUBJECT}.kubelet`, "x", { timeout: 100 })))).toBe("timeout");
  });
});

test("a dropped or closed connection is disconnected", async () => {
  const server = await startNatsServer({ jetstream: false });
  const nc = await connect({ servers: server.url, reconnectTimeWait: 50 });
  // The server goes away under a flush waiting for its PONG: the client rejects that flush once it reconnects.
  await server.kill("SIGSTOP");
  const flushed = errorOf(() => nc.flush());
  await server.kill("SIGKILL");
  await server.restart();
  expect(classifyError(await flushed)).toBe("disconnected");
  await nc.close();
  expect(classifyError(await errorOf(() => nc.publish(`${SUBJECT}.kubelet`, "x")))).toBe("disconnected");
  expect(classifyError(await errorOf(() => nc.flush()))).toBe("disconnected");
});

test("a subject the credentials may not publish to, or rejected credentials, is permission", async () => {
  const server = await startNatsServer({
    jetstream: false,
    config: `authorization { users: [ { user: tapio, password: secret, permissions: { publish: { deny: "${SUBJECT}.>" } } } ] }`,
  });
  await withConnection(
    server,
    async (nc) => {
      const violation = (async () => {
        for await (const s of nc.status()) if (s.type === "error") return s.error;
        throw new Error("status ended without an error");
      })();
      nc.publish(`${SUBJECT}.kubelet`, "x");
      expectReason(await violation, "permission", PermissionViolationError);
    },
    { user: "tapio", pass: "secret" },
  );
  const refused = await errorOf(() => connect({ servers: server.url, user: "tapio", pass: "wrong", reconnect: false }));
  expectReason(refused, "permission", AuthorizationError);
});

test("a JetStream account without room is storage", async () => {
  const server = await startNatsServer({ config: "jetstream { max_memory_store: 1MB, max_file_store: 1MB }" });
  await withConnection(server, async (nc) => {
    const jsm = await jetstreamManager(nc);
    const memory = await errorOf(() => jsm.streams.add({ name: "MEM", subjects: ["m.>"], storage: StorageType.Memory, max_bytes: 8 * 1024 * 1024 }));
    expectReason(memory, "storage", JetStreamApiError);
    const file = await errorOf(() => jsm.streams.add({ name: "FILE", subjects: ["f.>"], storage: StorageType.File, max_bytes: 8 * 1024 * 1024 }));
    expectReason(file, "storage", JetStreamApiError);
  });
});

test("anything else is other", () => {
  expect(classifyError(new Error("something else"))).toBe("other");
  expect(classifyError("not an error")).toBe("other");
});
