// --once against nats-servers whose limits are below what the config asks
// for: batches shrink to the server's max_payload and everything is
// published (exit 0); events NATS refuses on their own are discarded,
// counted in events, named in the shutdown line, and the exit is 1.
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { logLines, runAgent, writeConfig } from "../helpers/agent.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { headerBytes } from "../../src/publish/msg-id-header.ts";

afterAll(stopAllNatsServers);

const STREAM = "ONCE_EXIT";

function onceConfig(server: NatsServer, opts: { mode: "jetstream" | "core"; count: number; payloadBytes: number; batch?: string }): string {
  return writeConfig(`
nats:
  url: ${server.url}
  mode: ${opts.mode}
  subject: once.exit
  stream: { name: ${STREAM} }
${opts.batch ? `  batch: ${opts.batch}\n` : ""}collectors:
  synthetic: { config: { count: ${opts.count}, rate: 0, payload_bytes: ${opts.payloadBytes} } }
`);
}

async function createStream(server: NatsServer, maxMsgSize: number): Promise<void> {
  const nc = await connect({ servers: server.url });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: ["once.exit.>"], max_msg_size: maxMsgSize });
  } finally {
    await nc.close();
  }
}

/** The event ids stored in the stream, unpacking batch messages. */
async function storedIds(server: NatsServer): Promise<string[]> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(STREAM);
    const ids: string[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(STREAM, { seq });
      for (const line of m!.string().split("\n").filter(Boolean)) ids.push(JSON.parse(line).event_id);
    }
    return ids;
  } finally {
    await nc.close();
  }
}

function shutdownLine(stdout: string): Record<string, any> {
  const line = logLines(stdout).find((l) => typeof l.msg === "string" && l.msg.startsWith("shutdown complete"));
  expect(line).toBeDefined();
  return line!;
}

describe("--once and NATS's size limits", () => {
  test("nats.batch.max_bytes above the server's max_payload: 3000 events that each fit alone are all published, exit 0", async () => {
    const server = await startNatsServer({ config: "max_payload: 64KB\n" });
    const file = onceConfig(server, { mode: "jetstream", count: 3000, payloadBytes: 2000, batch: "{ max_events: 100, max_bytes: 512KiB }" });
    const r = await runAgent(["run", "--once", "-c", file]);
    expect(r.code).toBe(0);
    expect(shutdownLine(r.stdout)).toMatchObject({
      accepted: 3000,
      published: 3000,
      discarded: 0,
      in_spool: 0,
      lost: 0,
      unaccounted: 0,
      publish_errors: {},
      msg: "shutdown complete: 3000 event(s) published, none left",
    });
    const capped = logLines(r.stdout).filter((l) => String(l.msg).startsWith("nats.batch.max_bytes (524288) is more than NATS accepts (65536 bytes, the server's max_payload)"));
    expect(capped.length).toBe(1);
    const ids = await storedIds(server);
    expect(ids.length).toBe(3000);
    expect(new Set(ids).size).toBe(3000);
  }, 60_000);

  test("every event over the server's max_payload (core, batching on): discarded, counted in events, exit 1", async () => {
    const server = await startNatsServer({ jetstream: false, config: "max_payload: 4096\n" });
    const file = onceConfig(server, { mode: "core", count: 40, payloadBytes: 8192, batch: "{ max_events: 10 }" });
    const r = await runAgent(["run", "--once", "-c", file]);
    expect(r.code).toBe(1);
    expect(shutdownLine(r.stdout)).toMatchObject({
      accepted: 40,
      published: 0,
      discarded: 40,
      discarded_by_reason: { max_payload: 40 },
      in_spool: 0,
      lost: 0,
      unaccounted: 0,
      publish_errors: { max_payload: 40 },
      msg: "shutdown complete: 0 event(s) published, 40 discarded (max_payload 40), none left",
    });
    expect(logLines(r.stdout).some((l) => l.level === "error" && l.msg === "--once: 40 accepted event(s) were discarded (max_payload 40); exit 1")).toBe(true);
  }, 60_000);

  test("every event over the stream's max_msg_size (JetStream): discarded, exit 1", async () => {
    const server = await startNatsServer();
    await createStream(server, 512);
    const file = onceConfig(server, { mode: "jetstream", count: 20, payloadBytes: 1000 });
    const r = await runAgent(["run", "--once", "-c", file]);
    expect(r.code).toBe(1);
    expect(shutdownLine(r.stdout)).toMatchObject({ accepted: 20, published: 0, discarded: 20, publish_errors: { max_payload: 20 }, unaccounted: 0 });
    expect(await storedIds(server)).toEqual([]);
  }, 60_000);

  // Synthetic events of payload_bytes P weigh P - 7 + the digits of their sequence number:
  // of 1001 events, only the last (seq 1000, four digits) weighs P - 3. A limit one byte
  // below that message (payload and Nats-Msg-Id header) refuses it alone.
  const P = 1000;
  const lastMessageBytes = P - 3 + headerBytes("00000000-0000-0000-0000-000000000000");
  for (const mode of ["jetstream", "core"] as const) {
    const limit = mode === "jetstream" ? "the stream's max_msg_size" : "the server's max_payload";
    test(`${mode}: one event of 1001 over ${limit}: 1000 published, 1 discarded, the line adds up, exit 1`, async () => {
      const server = mode === "jetstream" ? await startNatsServer() : await startNatsServer({ jetstream: false, config: `max_payload: ${lastMessageBytes - 1}\n` });
      if (mode === "jetstream") await createStream(server, lastMessageBytes - 1);
      const file = onceConfig(server, { mode, count: 1001, payloadBytes: P });
      const r = await runAgent(["run", "--once", "-c", file]);
      expect(r.code).toBe(1);
      const line = shutdownLine(r.stdout);
      expect(line).toMatchObject({
        accepted: 1001,
        published: 1000,
        discarded: 1,
        discarded_by_reason: { max_payload: 1 },
        in_spool: 0,
        lost: 0,
        unaccounted: 0,
        publish_errors: { max_payload: 1 },
        msg: "shutdown complete: 1000 event(s) published, 1 discarded (max_payload 1), none left",
      });
      expect(line.accepted - line.published - line.discarded - line.in_spool - line.lost).toBe(0);
      if (mode === "jetstream") expect((await storedIds(server)).length).toBe(1000);
    }, 60_000);
  }
});
