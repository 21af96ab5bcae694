// Several instances of one collector type running at once against a real
// nats-server: each with its own config, runner and counters, publishing to
// its own subject and naming itself in `source` and collector_name; a bare
// type's events are as they were before instances existed.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { configFrom } from "../helpers/config.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { subscribeAll, type Received } from "../publish/fixtures.ts";
import { startResponder, type Responder } from "../collectors/dns/responder.ts";

let server: NatsServer | undefined;
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(stopAllNatsServers);

async function nats(): Promise<NatsServer> {
  server ??= await startNatsServer({ jetstream: false });
  return server;
}

/** Runs `collectors` once (each instance one round) in core mode against the server; resolves with what a subscriber to tapio.events.> received. */
async function runOnce(collectors: string, expected: number): Promise<{ received: Received[]; orch: Orchestrator }> {
  const { url } = await nats();
  const { nc, received } = await subscribeAll(url);
  cleanups.push(() => (nc as NatsConnection).close());
  const registry = builtinRegistry();
  const config = configFrom(`
orchestrator: { shutdown_timeout: 5s }
nats: { url: "${url}", mode: core }
spool: { enabled: false }
collectors:
${collectors}`, registry);
  const orch = new Orchestrator({ config, registry, publisher: createPublisher(config.nats, { log: silentLogger() }), log: silentLogger(), once: true });
  orch.start();
  await orch.roundsDone();
  const report = await orch.stop();
  expect(report).toMatchObject({ accepted: expected, published: expected, dropped: 0, lost: 0, unaccounted: 0 });
  await waitFor(() => received.length === expected, `${expected} events received`);
  return { received, orch };
}

const bySubject = (received: Received[]) => {
  const out: Record<string, Array<Record<string, any>>> = {};
  for (const r of received) (out[r.subject] ??= []).push(JSON.parse(r.data));
  return out;
};

describe("instances of one type side by side", () => {
  test("two synthetic instances and the bare type: separate configs, subjects, sources, sequences and counters", async () => {
    const { received, orch } = await runOnce(
      `
  synthetic: { config: { count: 40, rate: 0 } }
  synthetic/a: { config: { count: 25, rate: 0, type: a.event, severity: warning } }
  synthetic/b: { config: { count: 60, rate: 0, type: b.event } }
`,
      125,
    );
    const subjects = bySubject(received);
    expect(Object.keys(subjects).sort()).toEqual(["tapio.events.synthetic", "tapio.events.synthetic.a", "tapio.events.synthetic.b"]);
    const expectInstance = (subject: string, name: string, count: number, type: string, severity: string) => {
      const events = subjects[subject]!;
      expect(events.map((e) => Number(e.event_data.custom.seq))).toEqual([...Array(count).keys()]);
      for (const e of events) {
        expect(e).toMatchObject({ type, severity, source: name, metadata: { attributes: { collector_name: name } } });
      }
    };
    expectInstance("tapio.events.synthetic", "synthetic", 40, "synthetic.event", "info");
    expectInstance("tapio.events.synthetic.a", "synthetic/a", 25, "a.event", "warning");
    expectInstance("tapio.events.synthetic.b", "synthetic/b", 60, "b.event", "info");
    // per instance counters
    expect(orch.health.all().map((h) => [h.name, h.accepted, h.published])).toEqual([
      ["synthetic", 40, 40],
      ["synthetic/a", 25, 25],
      ["synthetic/b", 60, 60],
    ]);
    // The bare type's bytes are the envelope they always were, member for member.
    for (const r of received.filter((m) => m.subject === "tapio.events.synthetic")) {
      const e = JSON.parse(r.data);
      expect(r.data).toBe(
        JSON.stringify({ event_id: e.event_id, timestamp: e.timestamp, type: "synthetic.event", source: "synthetic", severity: "info", event_data: e.event_data, metadata: { attributes: { collector_name: "synthetic" } } }),
      );
      expect(r.msgId).toBe(e.event_id);
    }
  });

  test("two dns instances, each probing its own server for its own names, report to their own subjects", async () => {
    const responders: Responder[] = [];
    cleanups.push(() => responders.forEach((r) => r.close()));
    const cluster = await startResponder("127.0.0.1", () => ({ rcode: 3 })); // NXDOMAIN
    const external = await startResponder("127.0.0.1", () => ({ rcode: 2 })); // SERVFAIL
    responders.push(cluster, external);
    const { received } = await runOnce(
      `
  dns/cluster:
    config: { names: [a.cluster.test, b.cluster.test], servers: ["127.0.0.1:${cluster.port}"], timeout: 2s }
  dns/external:
    config: { names: [x.external.test], servers: ["127.0.0.1:${external.port}"], query_types: [A, AAAA], timeout: 2s }
`,
      4,
    );
    const subjects = bySubject(received);
    expect(Object.keys(subjects).sort()).toEqual(["tapio.events.dns.cluster", "tapio.events.dns.external"]);
    const clusterEvents = subjects["tapio.events.dns.cluster"]!;
    expect(clusterEvents.map((e) => e.event_data.dns.query_name).sort()).toEqual(["a.cluster.test", "b.cluster.test"]);
    for (const e of clusterEvents) {
      expect(e).toMatchObject({ type: "dns.query", source: "dns/cluster", metadata: { attributes: { collector_name: "dns/cluster" } } });
      expect(e.event_data.dns).toMatchObject({ server_port: cluster.port, error_message: "NXDOMAIN" });
    }
    const externalEvents = subjects["tapio.events.dns.external"]!;
    expect(externalEvents.map((e) => e.event_data.dns.query_type).sort()).toEqual(["A", "AAAA"]);
    for (const e of externalEvents) {
      expect(e).toMatchObject({ type: "dns.query", source: "dns/external", metadata: { attributes: { collector_name: "dns/external" } } });
      expect(e.event_data.dns).toMatchObject({ query_name: "x.external.test", server_port: external.port, error_message: "SERVFAIL" });
    }
    // each server was asked only its instance's names
    expect(new Set(cluster.queries.map((q) => q.name))).toEqual(new Set(["a.cluster.test", "b.cluster.test"]));
    expect(new Set(external.queries.map((q) => q.name))).toEqual(new Set(["x.external.test"]));
  });
});
