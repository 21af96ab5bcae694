// `status` and `top` rendering a fixed /status document with two
// destinations (issue 15): the destinations table (one row each, its NATS
// state, open circuits, queue, spool and books), and the default-only
// sections labelled as such. One destination renders as before.
import { describe, expect, test } from "bun:test";
import type { StatusDocument } from "../../src/http/server.ts";
import { renderStatus } from "../../src/cli/status.ts";
import { renderTopFrame } from "../../src/cli/top.ts";

const NOW = Date.parse("2026-11-25T12:00:10Z");

type Destinations = NonNullable<StatusDocument["destinations"]>;
type DestinationStatus = Destinations[string];

function destination(over: {
  nats: DestinationStatus["nats"];
  circuits?: DestinationStatus["circuits"];
  spool?: DestinationStatus["spool"];
  queue?: number;
  ledger: DestinationStatus["ledger"];
}): DestinationStatus {
  return {
    nats: over.nats,
    circuits: over.circuits ?? [],
    spool: over.spool,
    spool_error: undefined,
    queue: { length: over.queue ?? 0, bytes: 0, utilization: 0, waiting: 0 },
    ledger: over.ledger,
    publish_errors: {},
  };
}

const defaultDestination = destination({
  nats: { mode: "jetstream", connected: true, closed: false, server: "10.0.0.1:4222", reconnects: 0 },
  spool: { depth: 0, bytes: 0, oldestAt: undefined, fileBytes: 4096, path: "/var/lib/tapio/spool.db", oldest_age_seconds: undefined },
  ledger: { accepted: 12345, inherited: 0, published: 12340, discarded: 5, in_spool: 0, lost: 0 },
});

const centralDestination = destination({
  nats: { mode: "jetstream", connected: false, closed: false, lastError: "connection refused", reconnects: 7 },
  circuits: [
    { subject: "tapio.central.kernel", state: "open", consecutive_failures: 5, opened_at: "2026-11-25T12:00:00Z", opens: 1, last_failure: "timeout" },
    { subject: "tapio.central.synthetic", state: "half_open", consecutive_failures: 5, opened_at: "2026-11-25T12:00:00Z", opens: 2, last_failure: "timeout" },
    { subject: "tapio.central.dns", state: "closed", consecutive_failures: 0, opened_at: undefined, opens: 0, last_failure: undefined },
  ],
  spool: { depth: 1500, bytes: 300_000, oldestAt: NOW - 8000, fileBytes: 400_000, path: "/var/lib/tapio/spool.central.db", oldest_age_seconds: 8 },
  queue: 42,
  ledger: { accepted: 2000, inherited: 100, published: 558, discarded: 0, in_spool: 1500, lost: 0 },
});

function doc(destinations: Destinations): StatusDocument {
  const d = destinations.default!;
  return {
    agent: { version: "1.2.3", bun: "1.4.4", pid: 4242, started_at: "2026-11-25T11:59:00Z", uptime_seconds: 70, ready: true, ready_reason: "default: NATS connected; central: NATS not connected; events go to the spool" },
    health: { state: "degraded", problems: ["destination central: NATS disconnected: connection refused"] },
    collectors: [
      {
        name: "kernel",
        state: "running",
        healthy: true,
        last_event_time: "2026-11-25T12:00:08Z",
        last_error: undefined,
        last_error_time: undefined,
        restarts: 0,
        events_emitted: 12345,
        events_accepted: 12345,
        events_published: 12340,
        events_spooled: 0,
        events_dropped: {},
        parse_errors: {},
      },
    ],
    queue: d.queue,
    delivery: { nats: d.nats, circuits: d.circuits, spool: d.spool, spool_error: d.spool_error },
    destinations,
    publish_errors: {},
  };
}

const TABLE = [
  "DESTINATION  NATS                             QUEUED  SPOOLED  ACCEPTED  PUBLISHED  DISCARDED  LOST",
  "default      connected                             0        0    12,345     12,340          5     0",
  "central      DISCONNECTED, 2 circuit(s) open      42    1,500     2,000        558          0     0",
];

describe("status", () => {
  test("two destinations: a Destinations table, one row each; Queue, NATS, Spool and Circuits say they are default's", () => {
    const text = renderStatus(doc({ default: defaultDestination, central: centralDestination }), NOW);
    const lines = text.split("\n");
    const at = lines.indexOf("Destinations");
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 4)).toEqual(TABLE.map((l) => `  ${l}`));
    expect(lines).toContain("Queue (destination default)");
    expect(lines).toContain("NATS (destination default)");
    expect(lines).toContain("  jetstream, connected to 10.0.0.1:4222, 0 reconnect(s)");
    expect(lines).toContain("Spool (destination default)");
    expect(lines).toContain("Circuits (destination default)");
    expect(lines).toContain("ready:  yes (default: NATS connected; central: NATS not connected; events go to the spool)");
    expect(lines).toContain("  - destination central: NATS disconnected: connection refused");
  });

  test("one destination: no table, no labels (as before destinations existed)", () => {
    const text = renderStatus(doc({ default: defaultDestination }), NOW);
    expect(text).not.toContain("Destinations");
    expect(text).not.toContain("DESTINATION");
    expect(text.split("\n")).toContain("NATS");
    expect(text.split("\n")).toContain("Queue");
    expect(text.split("\n")).toContain("Spool");
  });
});

describe("top", () => {
  test("two destinations: the table under the NATS line of default; queue and spool only in the table", () => {
    const frame = renderTopFrame("http://127.0.0.1:9090", { doc: doc({ default: defaultDestination, central: centralDestination }), at: 0 }, undefined);
    const lines = frame.split("\n");
    const nats = lines.findIndex((l) => l.startsWith("NATS"));
    expect(lines[nats]).toBe("NATS (default) jetstream connected to 10.0.0.1:4222, 0 reconnect(s)");
    expect(lines[nats + 1]).toBe("  ! destination central: NATS disconnected: connection refused");
    expect(lines.slice(nats + 3, nats + 6)).toEqual(TABLE);
    expect(lines.find((l) => l.startsWith("publish "))).toMatch(/^publish [\d.]+\/s {2}in [\d.]+\/s {2}drops 0\/s$/);
  });

  test("one destination: queue and spool on the summary line, no table", () => {
    const frame = renderTopFrame("http://127.0.0.1:9090", { doc: doc({ default: defaultDestination }), at: 0 }, undefined);
    expect(frame).not.toContain("DESTINATION");
    expect(frame).toMatch(/^publish .* {2}queue 0 \(0\.0%\) {2}spool 0 \(0 B\)$/m);
    expect(frame).toMatch(/^NATS jetstream connected to 10\.0\.0\.1:4222, 0 reconnect\(s\)$/m);
  });
});
