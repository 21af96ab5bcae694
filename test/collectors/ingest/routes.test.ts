// ?wait=published with routes (issue 15), two real nats-servers: an event
// that matches no rule (fate "unrouted") or a drop rule ("route_drop") is
// answered as every other drop is: 502 naming each such event's index and
// reason, while the routed ones are published to each of their
// destinations. A request whose every event routes drop is answered the same
// way, never with a 202 that would claim they were published.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { startNatsServer, stopAllNatsServers } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { readStream } from "../../publish/fixtures.ts";
import { killAllAgents, statusUrl, streamCount } from "../../fault/harness.ts";
import { input, startIngestAgent } from "./helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

/** node.* to default and central; debug dropped; anything else matches no rule. */
function extra(central: string): string {
  return `
destinations:
  central: { url: "${central}", subject: tapio.central, stream: { name: CENTRAL }, reconnect_wait: 100ms }
routes:
  - name: drop-debug
    match: { severity_below: info }
    drop: true
  - name: checks
    match: { type: "node.*" }
    to: [default, central]
`;
}

const routed = (seq: number) => input("node-check", seq);
const debug = (seq: number) => input("node-check", seq, { severity: "debug" });
const unrouted = (seq: number) => input("app", seq, { type: "app.started", severity: "info" });

const seqs = (messages: Array<{ data: string }>) => messages.map((m) => Number(JSON.parse(m.data).event_data.custom.seq)).sort((a, b) => a - b);

describe("ingest ?wait=published with routes", () => {
  test("route_drop and unrouted are answered 502 per event; the routed events reach both destinations", async () => {
    const [def, cen] = await Promise.all([startNatsServer(), startNatsServer()]);
    const api = await startIngestAgent({ nats: def.url, stream: "DEFAULT", extra: extra(cen.url) });

    const mixed = await api.post([routed(0), debug(1), unrouted(2), routed(3)], { wait: true });
    expect(mixed.status).toBe(502);
    expect(mixed.body).toEqual({
      accepted: 4,
      error: "2 of 4 accepted event(s) were dropped, not published: route_drop (matched a routes rule with drop: true)",
      dropped: [
        { index: 1, reason: "route_drop", detail: "matched a routes rule with drop: true" },
        { index: 2, reason: "unrouted", detail: "matched no rule of routes" },
      ],
    });
    // answered once published: each routed event is in both streams already, on each destination's subject
    const atDefault = await readStream(def.url, "DEFAULT");
    const atCentral = await readStream(cen.url, "CENTRAL");
    expect(seqs(atDefault)).toEqual([0, 3]);
    expect(seqs(atCentral)).toEqual([0, 3]);
    expect(new Set(atDefault.map((m) => m.subject))).toEqual(new Set(["tapio.events.ingest.node-check"]));
    expect(new Set(atCentral.map((m) => m.subject))).toEqual(new Set(["tapio.central.ingest.node-check"]));

    // every event dropped by routes: still 502, not a 202 claiming they were published
    const none = await api.post([unrouted(4), debug(5)], { wait: true });
    expect(none.status).toBe(502);
    expect(none.body).toMatchObject({
      accepted: 2,
      dropped: [
        { index: 0, reason: "unrouted" },
        { index: 1, reason: "route_drop" },
      ],
    });
    expect(none.body.error).toStartWith("2 of 2 accepted event(s) were dropped, not published: unrouted");

    // all routed: 202
    expect(await api.post([routed(6)], { wait: true })).toMatchObject({ status: 202, body: { accepted: 1 } });
    // without ?wait the sender is told nothing of routing: 202 once queued, the drops only counted
    expect(await api.post([routed(7), unrouted(8), debug(9)])).toMatchObject({ status: 202, body: { accepted: 3 } });
    await waitFor(async () => (await streamCount(def.url, "DEFAULT")) === 4 && (await streamCount(cen.url, "CENTRAL")) === 4, "events 0, 3, 6 and 7 at both");
    expect(seqs(await readStream(def.url, "DEFAULT"))).toEqual([0, 3, 6, 7]);
    expect(seqs(await readStream(cen.url, "CENTRAL"))).toEqual([0, 3, 6, 7]);

    const status = (await (await fetch(await statusUrl(api.agent))).json()) as { collectors: Array<{ name: string; events_dropped: Record<string, number> }> };
    expect(status.collectors.find((c) => c.name === "ingest")!.events_dropped).toEqual({ route_drop: 3, unrouted: 3 });
  }, 60_000);
});
