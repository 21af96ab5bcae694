// Authentication against real nats-servers: token, user/password, nkey seed
// file, creds file (JWT, operator mode). Right credentials connect and
// publish; wrong or missing ones make start() reject with a PublisherError
// (no endless retry), and no secret ends up in an error message or a log line.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { credsAuthenticator } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { createPublisher, PublisherError, type Publisher } from "../../src/publish/index.ts";
import type { NatsConfig } from "../../src/config/schema.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { createUserNkey } from "../helpers/nkeys.ts";
import { createJwtOperator, createJwtUser, credsText, decodeJwt } from "../helpers/jwt.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { captureLog, delivered, makeEvents, natsConfig, never, subscribeAll } from "./fixtures.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

const TOKEN = "t0ken-that-must-not-leak";
const PASSWORD = "passw0rd-that-must-not-leak";

async function startError(publisher: Publisher): Promise<Error> {
  try {
    const err = await publisher.start().then(() => undefined, (e: Error) => e);
    if (!err) throw new Error("start() resolved, expected it to reject");
    return err;
  } finally {
    await publisher.close();
  }
}

/** A publisher on `config` starts, and the server confirms all of 20 events. */
async function publishesTwenty(config: NatsConfig): Promise<void> {
  const publisher = createPublisher(config, { log: captureLog().log });
  try {
    await publisher.start();
    const events = makeEvents(20);
    expect(delivered(events, await publisher.publish(events, never()))).toBe(20);
  } finally {
    await publisher.close();
  }
}

async function connectsAndPublishes(config: NatsConfig, subscriberAuth: NodeConnectionOptions): Promise<void> {
  const { nc, received } = await subscribeAll(config.url[0] ?? "", subscriberAuth);
  try {
    await publishesTwenty(config);
    await nc.flush();
    expect(received.length).toBe(20);
  } finally {
    await nc.close();
  }
}

test("token: the right token connects, a wrong or missing one fails at start() without leaking it", async () => {
  const server = await startNatsServer({ jetstream: false, config: `authorization { token: "${TOKEN}" }` });
  await connectsAndPublishes(natsConfig(server.url, { mode: "core", token: TOKEN }), { token: TOKEN });

  for (const token of ["wrong-token", undefined]) {
    const { log, records } = captureLog();
    const err = await startError(createPublisher(natsConfig(server.url, { mode: "core", token }), { log }));
    expect(err).toBeInstanceOf(PublisherError);
    expect(err.message).toContain("rejected the credentials");
    expect(err.message).toContain("Authorization Violation");
    expect(err.message).not.toContain(TOKEN);
    expect(JSON.stringify(records())).not.toContain(TOKEN);
  }
});

test("username/password: the right password connects, a wrong one fails without leaking it", async () => {
  const server = await startNatsServer({ jetstream: false, config: `authorization { user: tapio, password: "${PASSWORD}" }` });
  await connectsAndPublishes(
    natsConfig(server.url, { mode: "core", username: "tapio", password: PASSWORD }),
    { user: "tapio", pass: PASSWORD },
  );
  const { log, records } = captureLog();
  const err = await startError(createPublisher(natsConfig(server.url, { mode: "core", username: "tapio", password: "nope" }), { log }));
  expect(err).toBeInstanceOf(PublisherError);
  expect(err.message).toContain("Authorization Violation");
  expect(err.message + JSON.stringify(records())).not.toContain(PASSWORD);
});

test("nkey: the user's seed file connects (JetStream too); another user's seed fails", async () => {
  const user = createUserNkey();
  const stranger = createUserNkey();
  const server = await startNatsServer({
    config: `authorization { users: [ { nkey: ${user.publicKey} } ] }`,
  });
  await publishesTwenty(natsConfig(server.url, { nkey_seed_file: user.seedFile }));
  const err = await startError(createPublisher(natsConfig(server.url, { mode: "core", nkey_seed_file: stranger.seedFile }), { log: captureLog().log }));
  expect(err).toBeInstanceOf(PublisherError);
  expect(err.message).toContain("Authorization Violation");
});

test("unreadable or malformed credential files fail start() naming the file, not its content", async () => {
  const dir = makeTempDir("creds");
  const missing = join(dir, "missing.nk");
  const garbage = join(dir, "garbage.nk");
  writeFileSync(garbage, "SUAGARBAGESEEDTHATISNOTVALID\n");
  const unreadable = join(dir, "unreadable.creds");
  writeFileSync(unreadable, "x");
  chmodSync(unreadable, 0o000);
  const badCreds = join(dir, "bad.creds");
  writeFileSync(badCreds, "not a creds file\n");
  // nothing listens here: the files must fail before any connection attempt
  const url = "nats://127.0.0.1:1";

  const cases: Array<[Partial<NatsConfig>, string, RegExp]> = [
    [{ nkey_seed_file: missing }, missing, /cannot read nkey seed file .*ENOENT/],
    [{ nkey_seed_file: garbage }, garbage, /nkey seed file .* is not valid/],
    [{ creds_file: badCreds }, badCreds, /credentials file .* is not valid/],
    [{ tls: { ca_file: missing, insecure_skip_verify: false } }, missing, /cannot read TLS CA file/],
  ];
  // root reads any file regardless of mode bits
  if (process.getuid?.() !== 0) cases.push([{ creds_file: unreadable }, unreadable, /cannot read credentials file .*EACCES/]);
  for (const [overrides, file, pattern] of cases) {
    const err = await startError(createPublisher(natsConfig(url, { mode: "core", ...overrides }), { log: captureLog().log }));
    expect(err).toBeInstanceOf(PublisherError);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toContain("GARBAGESEED");
  }
});

/** Connection options authenticating with a .creds file, for the test's own subscribers and readers. */
function withCreds(credsFile: string): NodeConnectionOptions {
  return { authenticator: credsAuthenticator(readFileSync(credsFile)) };
}

test("creds file (JWT): a user of an account the server trusts connects and publishes, core and JetStream", async () => {
  const operator = createJwtOperator();
  const account = operator.account("TAPIO", { jetstream: true });
  const user = createJwtUser(account, "tapio-collectors");
  const reader = createJwtUser(account, "test-reader");
  expect(decodeJwt(user.jwt)).toMatchObject({ iss: account.publicKey, sub: user.publicKey, nats: { type: "user", version: 2 } });
  const server = await startNatsServer({ config: operator.serverConfig([account]) });

  await connectsAndPublishes(natsConfig(server.url, { mode: "core", creds_file: user.credsFile }), withCreds(reader.credsFile));

  await publishesTwenty(natsConfig(server.url, { creds_file: user.credsFile }));
  const nc = await connect({ servers: server.url, ...withCreds(reader.credsFile) });
  try {
    expect((await (await jetstreamManager(nc)).streams.info("TAPIO_EVENTS")).state.messages).toBe(20);
  } finally {
    await nc.close();
  }
});

test("creds file (JWT): a user signed by another account is refused at start(), without leaking the seed", async () => {
  const operator = createJwtOperator();
  const account = operator.account("TAPIO");
  const server = await startNatsServer({ jetstream: false, config: operator.serverConfig([account]) });
  const dir = makeTempDir("creds");

  // a properly signed user of an account the server was never given
  const stranger = createJwtUser(operator.account("OTHER"));
  // a user JWT naming the trusted account as issuer, but signed with another account's key
  const genuine = createJwtUser(account);
  const [header, claims] = genuine.jwt.split(".");
  const signed = `${header}.${claims}`;
  const forgedJwt = `${signed}.${Buffer.from(operator.account("FORGER").keys.sign(new TextEncoder().encode(signed))).toString("base64url")}`;
  const forged = join(dir, "forged.creds");
  writeFileSync(forged, credsText(forgedJwt, genuine.seed));

  const cases = [
    // nats-server 2.9 logs why only for the unknown account; a bad signature is just an authentication error
    { credsFile: stranger.credsFile, seed: stranger.seed, serverSays: /Account fetch failed: account missing[^]*authentication error/ },
    { credsFile: forged, seed: genuine.seed, serverSays: /authentication error/ },
  ];
  for (const { credsFile, seed, serverSays } of cases) {
    const { log, records } = captureLog();
    const logged = server.log().length;
    const t0 = performance.now();
    const err = await startError(createPublisher(natsConfig(server.url, { mode: "core", creds_file: credsFile }), { log }));
    // no endless retry: refused on the first attempt
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(PublisherError);
    expect(err.message).toContain("rejected the credentials");
    expect(err.message).toContain("Authorization Violation");
    expect(err.message + JSON.stringify(records())).not.toContain(seed);
    // the server's log arrives through a pipe, possibly after the client saw the refusal
    await waitFor(() => serverSays.test(server.log().slice(logged)), `the server to log ${serverSays}`, 2000);
  }
  // and the genuine user of that account is accepted by the same server
  await connectsAndPublishes(natsConfig(server.url, { mode: "core", creds_file: genuine.credsFile }), withCreds(genuine.credsFile));
});
