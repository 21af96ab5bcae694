// TLS against a real nats-server with a CA made by the test: verification
// with ca_file succeeds, without it fails, insecure_skip_verify connects
// anyway; a tls:// url requires TLS; mutual TLS with cert_file/key_file.
import { afterAll, expect, test } from "bun:test";
import { createPublisher, PublisherError } from "../../src/publish/index.ts";
import type { NatsConfig } from "../../src/config/schema.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { testPki } from "../helpers/tls.ts";
import { captureLog, delivered, makeEvents, natsConfig, never } from "./fixtures.ts";

afterAll(stopAllNatsServers);

const pki = testPki();

async function publishes(config: NatsConfig): Promise<void> {
  const publisher = createPublisher(config, { log: captureLog().log });
  try {
    await publisher.start();
    const events = makeEvents(10);
    expect(delivered(events, await publisher.publish(events, never()))).toBe(10);
  } finally {
    await publisher.close();
  }
}

async function startError(config: NatsConfig): Promise<Error | undefined> {
  const publisher = createPublisher(config, { log: captureLog().log });
  try {
    return await publisher.start().then(() => undefined, (e: Error) => e);
  } finally {
    await publisher.close();
  }
}

test("server TLS: ca_file verifies, no CA fails, insecure_skip_verify connects, tls:// works", async () => {
  const server = await startNatsServer({
    config: `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}" }`,
  });
  await publishes(natsConfig(server.url, { tls: { ca_file: pki.caFile, insecure_skip_verify: false } }));
  await publishes(natsConfig(`tls://127.0.0.1:${server.port}`, { mode: "core", tls: { ca_file: pki.caFile, insecure_skip_verify: false } }));

  // max_reconnects 0: give up after one attempt instead of retrying forever
  const err = await startError(natsConfig(server.url, { mode: "core", max_reconnects: 0, tls: { insecure_skip_verify: false } }));
  expect(err).toBeInstanceOf(PublisherError);
  expect(err?.message).toMatch(/certificate/i);

  await publishes(natsConfig(server.url, { mode: "core", tls: { insecure_skip_verify: true } }));
});

test("a tls:// url refuses a server without TLS", async () => {
  const server = await startNatsServer({ jetstream: false });
  const err = await startError(natsConfig(`tls://127.0.0.1:${server.port}`, { mode: "core", max_reconnects: 0 }));
  expect(err).toBeInstanceOf(PublisherError);
  expect(err?.message).toMatch(/tls/i);
});

test("mutual TLS: the client certificate is required and accepted", async () => {
  const server = await startNatsServer({
    config: `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.caFile}", verify: true }`,
  });
  await publishes(
    natsConfig(server.url, { tls: { ca_file: pki.caFile, cert_file: pki.clientCert, key_file: pki.clientKey, insecure_skip_verify: false } }),
  );
  const err = await startError(natsConfig(server.url, { mode: "core", max_reconnects: 0, tls: { ca_file: pki.caFile, insecure_skip_verify: false } }));
  expect(err).toBeInstanceOf(PublisherError);
});
