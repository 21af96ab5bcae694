// The NATS permissions the agent needs, per mode, against a real
// nats-server with an `authorization`-style user per case: each mode
// publishes with exactly what the README's "NATS permissions" section
// lists, and with any one of those left out nothing is published and the
// refusal is named (status().permission, the outcome's failure, the
// publish error listener) instead of passing for a slow server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createPublisher, type Publisher } from "../../src/publish/index.ts";
import type { NatsConfig } from "../../src/config/schema.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { captureLog, delivered, makeEvents, natsConfig, never } from "./fixtures.ts";

type Mode = "core" | "create" | "existing";

interface Case {
  user: string;
  mode: Mode;
  /** the permission left out, if any */
  without?: string;
  inboxPrefix?: string;
}

/** What the README lists for each mode, for subject prefix `subject` and stream `stream`. */
function needed(mode: Mode, subject: string, stream: string, inboxPrefix = "_INBOX"): { publish: string[]; subscribe: string[] } {
  if (mode === "core") return { publish: [`${subject}.>`], subscribe: [] };
  const publish = [`${subject}.>`, `$JS.API.STREAM.INFO.${stream}`];
  if (mode === "create") publish.push(`$JS.API.STREAM.CREATE.${stream}`);
  return { publish, subscribe: [`${inboxPrefix}.>`] };
}

const CASES: Case[] = [];
for (const mode of ["core", "create", "existing"] as const) {
  const all = needed(mode, "x", "X");
  CASES.push({ user: `${mode}-all`, mode });
  for (const p of [...all.publish, ...all.subscribe]) CASES.push({ user: `${mode}-without-${p}`, mode, without: p });
}
CASES.push({ user: "existing-own-inbox", mode: "existing", inboxPrefix: "_INBOX_tapio" });
CASES.push({ user: "create-own-inbox", mode: "create", inboxPrefix: "_INBOX_tapio" });

const subjectOf = (i: number) => `perm${i}.events`;
const streamOf = (i: number) => `PERM${i}`;
/** A permission of case `c` with its placeholders (x, X) made concrete. */
const concrete = (p: string, i: number) => p.replace(/^x\./, `${subjectOf(i)}.`).replace(/\.X$/, `.${streamOf(i)}`);

function userBlock(c: Case, i: number): string {
  const { publish, subscribe } = needed(c.mode, subjectOf(i), streamOf(i), c.inboxPrefix);
  const without = c.without && concrete(c.without, i);
  // An empty allow list would allow everything: a subject nobody uses stands for "nothing".
  const list = (subjects: string[]) => JSON.stringify(subjects.filter((s) => s !== without).concat("nothing.at.all"));
  return `{ user: "${c.user}", password: p, permissions: { publish: { allow: ${list(publish)} }, subscribe: { allow: ${list(subscribe)} } } }`;
}

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer({
    config: `accounts { A { jetstream: enabled, users: [ { user: admin, password: a }\n${CASES.map(userBlock).join("\n")} ] } }`,
  });
  // The "existing" cases find their stream made by an administrator.
  const nc = await connect({ servers: server.url, user: "admin", pass: "a" });
  const jsm = await jetstreamManager(nc);
  for (const [i, c] of CASES.entries()) {
    if (c.mode === "existing") await jsm.streams.add({ name: streamOf(i), subjects: [`${subjectOf(i)}.>`] });
  }
  await nc.close();
});

afterAll(stopAllNatsServers);

function configFor(c: Case, i: number): NatsConfig {
  return natsConfig(server.url, {
    mode: c.mode === "core" ? "core" : "jetstream",
    subject: subjectOf(i),
    stream: { ...natsConfig("").stream, name: streamOf(i) },
    username: c.user,
    password: "p",
    timeout: natsConfig("").timeout,
    ...(c.inboxPrefix ? { inbox_prefix: c.inboxPrefix } : {}),
  });
}

async function withPublisher(c: Case, body: (publisher: Publisher, errors: string[]) => Promise<void>): Promise<void> {
  const i = CASES.indexOf(c);
  const errors: string[] = [];
  const publisher = createPublisher(configFor(c, i), { log: captureLog().log, onError: (reason) => errors.push(reason) });
  // start() waits for the stream, which a refusal keeps from ever being ready
  void publisher.start().catch(() => {});
  try {
    await body(publisher, errors);
  } finally {
    await publisher.close();
  }
}

/** The events of a batch for case `i`: the fixtures' two collectors, under the case's prefix. */
function eventsFor(i: number, n: number) {
  return makeEvents(n).map((e) => ({ ...e, subject: e.subject.replace(/^[^.]+\.[^.]+/, subjectOf(i)) }));
}

describe("NATS permissions", () => {
  for (const c of CASES.filter((c) => c.without === undefined)) {
    test(`${c.user}: the listed permissions are enough`, async () => {
      const i = CASES.indexOf(c);
      await withPublisher(c, async (publisher, errors) => {
        const events = eventsFor(i, 20);
        expect(delivered(events, await publisher.publish(events, never()))).toBe(20);
        expect(errors).toEqual([]);
        expect(publisher.status().permission).toBeUndefined();
      });
    });
  }

  for (const c of CASES.filter((c) => c.without !== undefined)) {
    test(`${c.user}: nothing is published and the refusal is named`, async () => {
      const i = CASES.indexOf(c);
      const missing = concrete(c.without!, i);
      // the server names the inbox it refused (_INBOX.<random>.*), the other subjects as they are
      const named = missing.endsWith(".>") ? missing.slice(0, -1) : missing;
      await withPublisher(c, async (publisher, errors) => {
        const events = eventsFor(i, 4);
        const outcome = await publisher.publish(events, AbortSignal.timeout(3000));
        expect(delivered(events, outcome)).toBe(0);
        expect(outcome.failure).toStartWith("permission: ");
        expect(outcome.failure).toContain(named);
        expect(errors).toContain("permission");
        expect(errors.filter((e) => e !== "permission")).toEqual([]);
        await waitFor(() => publisher.status().permission !== undefined, "status().permission");
        expect(publisher.status().permission).toContain(named);
        expect(publisher.status().permission).toContain('README "NATS permissions"');
      });
    });
  }
});

test("a reply inbox refused after start (server reload) fails publishes as permission, and they resume once it is allowed again", async () => {
  const user = (subscribe: string) =>
    `accounts { A { jetstream: enabled, users: [ { user: t, password: p, permissions: { publish: { allow: ["revoke.>", "$JS.API.STREAM.>"] }, subscribe: { allow: ${subscribe} } } } ] } }`;
  const own = await startNatsServer({ config: user(`["_INBOX.>"]`) });
  const reload = async (subscribe: string) => {
    await Bun.write(own.configFile, `jetstream { store_dir: "${own.storeDir}" }\n${user(subscribe)}`);
    process.kill(own.pid!, "SIGHUP");
    await waitFor(() => own.log().split("Reloaded server configuration").length > reloads + 1, "the server's reload");
    reloads++;
  };
  let reloads = 0;
  const config = natsConfig(own.url, { subject: "revoke.events", stream: { ...natsConfig("").stream, name: "REVOKE" }, username: "t", password: "p" });
  const errors: string[] = [];
  const publisher = createPublisher(config, { log: captureLog().log, onError: (reason) => errors.push(reason) });
  try {
    await publisher.start();
    const events = () => makeEvents(4).map((e) => ({ ...e, subject: e.subject.replace(/^[^.]+\.[^.]+/, "revoke.events") }));
    const first = events();
    expect(delivered(first, await publisher.publish(first, never()))).toBe(4);

    await reload(`["nothing.at.all"]`);
    const refused = events();
    const outcome = await publisher.publish(refused, AbortSignal.timeout(3000));
    expect(delivered(refused, outcome)).toBe(0);
    expect(outcome.failure).toStartWith("permission: ");
    expect(publisher.status().permission).toContain('may not subscribe to "_INBOX.');

    await reload(`["_INBOX.>"]`);
    const again = events();
    expect(delivered(again, await publisher.publish(again, never()))).toBe(4);
    expect(publisher.status().permission).toBeUndefined();
    expect(new Set(errors)).toEqual(new Set(["permission"]));
  } finally {
    await publisher.close();
  }
});
