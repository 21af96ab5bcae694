// `tail` reads nats.batch messages: one NDJSON line per event, with the
// Tapio-Batch header; a message without it is one event.
import { afterAll, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { headers } from "@nats-io/nats-core";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { spawnAgent } from "../helpers/agent.ts";

afterAll(stopAllNatsServers);

const event = (seq: number) =>
  JSON.stringify({ event_id: `id-${seq}`, timestamp: "2026-11-25T12:00:00.000000000Z", type: "synthetic.event", source: "synthetic", severity: "info", event_data: { custom: { seq: String(seq) } }, metadata: {} });

test("tail prints every event of a batch message, and single-event messages as before", async () => {
  const server = await startNatsServer({ jetstream: false });
  const tail = spawnAgent(["tail", "--nats", server.url, "--subject", "batched", "--json", "--count", "4"]);
  const stderr = tail.stderr.getReader();
  // Wait until it is subscribed: it says so on stderr.
  for (let text = ""; !text.includes("tailing");) text += new TextDecoder().decode((await stderr.read()).value);
  const nc = await connect({ servers: server.url });
  const h = headers();
  h.set("Tapio-Batch", "3");
  nc.publish("batched.synthetic", [event(1), event(2), event(3)].join("\n") + "\n", { headers: h });
  nc.publish("batched.synthetic", event(4));
  await nc.flush();
  const out = await new Response(tail.stdout).text();
  expect(await tail.exited).toBe(0);
  await nc.close();
  expect(out.trim().split("\n").map((l) => JSON.parse(l).event_id)).toEqual(["id-1", "id-2", "id-3", "id-4"]);
}, 20_000);
