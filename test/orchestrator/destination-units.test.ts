// The pure parts of multi-destination delivery (issue 15): where each
// destination's spool file lives and which files beside it are spools of
// other destinations; readiness over several destinations; what a reload
// plans for `destinations:`.
import { describe, expect, test } from "bun:test";
import { destinationOfSpoolFile, spoolPathOf } from "../../src/orchestrator/destination.ts";
import { readiness, type DestinationReadiness } from "../../src/orchestrator/readiness.ts";
import { planReload } from "../../src/orchestrator/reload-plan.ts";
import type { PublisherStatus } from "../../src/publish/publisher.ts";
import { load } from "../config/helpers.ts";

describe("spoolPathOf and destinationOfSpoolFile", () => {
  test("default keeps spool.path; another gets .<name> before the extension, in the same folder", () => {
    expect(spoolPathOf("/var/lib/tapio/spool.db", "default")).toBe("/var/lib/tapio/spool.db");
    expect(spoolPathOf("/var/lib/tapio/spool.db", "central")).toBe("/var/lib/tapio/spool.central.db");
    // no extension: the name is appended
    expect(spoolPathOf("/var/lib/tapio/spool", "central")).toBe("/var/lib/tapio/spool.central");
    // dots in folders are not an extension
    expect(spoolPathOf("/var/lib/tapio.d/v1.2/spool.db", "central")).toBe("/var/lib/tapio.d/v1.2/spool.central.db");
    expect(spoolPathOf("/var/lib/tapio.d/spool", "eu-west_1")).toBe("/var/lib/tapio.d/spool.eu-west_1");
    // only the last extension counts
    expect(spoolPathOf("/x/spool.v2.sqlite", "central")).toBe("/x/spool.v2.central.sqlite");
  });

  test("each spoolPathOf file maps back to its destination", () => {
    for (const spool of ["/var/lib/tapio/spool.db", "/var/lib/tapio.d/spool", "/x/y.z/spool.v2.sqlite", "relative.d/s.db"]) {
      for (const name of ["central", "eu-west_1", "a", "0"]) {
        const file = spoolPathOf(spool, name).split("/").at(-1)!;
        expect({ spool, name, back: destinationOfSpoolFile(spool, file) }).toEqual({ spool, name, back: name });
      }
    }
  });

  test("files that are not another destination's spool", () => {
    const db = "/var/lib/tapio.d/spool.db";
    for (const file of [
      "spool.db", // default's own
      "spool.db-wal",
      "spool.db-shm",
      "spool.central.db-wal", // SQLite's files beside central's spool
      "spool.central.db-shm",
      "spool.db.corrupt-20260101T000000Z", // a damaged spool set aside
      "spool.central.db.corrupt-20260101T000000Z",
      "spool.default.db", // default never has a suffix
      "spool.Central.db", // not a destination name
      "spool.a.b.db",
      "spool..db",
      "spool.central.sqlite",
      "other.central.db",
      "spoolx.central.db",
      ".tapio-check-1-abc",
    ]) {
      expect({ file, name: destinationOfSpoolFile(db, file) }).toEqual({ file, name: undefined });
    }
    const bare = "/var/lib/tapio.d/spool";
    for (const file of ["spool", "spool-wal", "spool.central-wal", "spool.central-shm", "spool.central-journal", "spool.corrupt-20260101T000000Z", "spool.central.corrupt-20260101T000000Z", "spool.default"]) {
      expect({ file, name: destinationOfSpoolFile(bare, file) }).toEqual({ file, name: undefined });
    }
  });
});

const connected: PublisherStatus = { mode: "jetstream", connected: true, closed: false, server: "127.0.0.1:4222", reconnects: 0 };
const down: PublisherStatus = { mode: "jetstream", connected: false, closed: false, lastError: "connection refused", reconnects: 3 };

function ready(destinations: DestinationReadiness[]) {
  return readiness({ started: true, draining: false, starting: [], destinations });
}

describe("readiness with several destinations", () => {
  test("all connected: ready, each named", () => {
    expect(ready([{ name: "default", nats: connected, spool: true }, { name: "central", nats: connected, spool: true }])).toEqual({
      ready: true,
      reason: "default: NATS connected; central: NATS connected",
    });
  });

  test("one down with a working spool: ready, saying where its events go", () => {
    expect(ready([{ name: "default", nats: connected, spool: true }, { name: "central", nats: down, spool: true }])).toEqual({
      ready: true,
      reason: "default: NATS connected; central: NATS not connected; events go to the spool",
    });
  });

  test("one down without a spool, or with a broken one: not ready, naming it and why", () => {
    expect(ready([{ name: "default", nats: connected, spool: true }, { name: "central", nats: down, spool: false }])).toEqual({
      ready: false,
      reason: "destination central: NATS not connected: connection refused and no spool",
    });
    const broken = "the spool cannot take events: disk full (for 3s); batches wait in memory and are retried";
    expect(ready([{ name: "default", nats: down, spool: true, spoolProblem: broken }, { name: "central", nats: connected, spool: true }])).toEqual({
      ready: false,
      reason: `destination default: NATS not connected: connection refused and ${broken}`,
    });
  });

  test("permission denied at one: not ready even while connected; the first destination that is not ready is named", () => {
    const denied: PublisherStatus = { ...connected, permission: 'the NATS user may not publish to "tapio.central.kernel"' };
    expect(ready([{ name: "default", nats: connected, spool: true }, { name: "central", nats: denied, spool: true }])).toEqual({
      ready: false,
      reason: 'destination central: NATS permission denied: the NATS user may not publish to "tapio.central.kernel"',
    });
    expect(ready([{ name: "default", nats: down, spool: false }, { name: "central", nats: denied, spool: true }]).reason).toStartWith("destination default: ");
  });

  test("one destination reads as before destinations existed (no name)", () => {
    expect(ready([{ name: "default", nats: down, spool: true }])).toEqual({ ready: true, reason: "NATS not connected; events go to the spool" });
  });

  test("not started, draining and starting collectors come before any destination", () => {
    const destinations = [{ name: "default", nats: connected, spool: true }, { name: "central", nats: down, spool: false }];
    expect(readiness({ started: false, draining: false, starting: [], destinations }).reason).toBe("not started");
    expect(readiness({ started: true, draining: true, starting: [], destinations }).reason).toBe("shutting down");
    expect(readiness({ started: true, draining: false, starting: ["kernel"], destinations }).reason).toBe("collectors starting: kernel");
  });
});

describe("planReload: destinations", () => {
  const base = `
nats: { url: nats://d:4222, subject: tapio.events }
destinations:
  central: { url: nats://c:4222, subject: tapio.central, stream: { name: TAPIO_CENTRAL } }
  regional: { url: nats://r:4222, subject: tapio.regional }
collectors:
  synthetic: {}
`;
  const before = load(base);
  const plan = (yaml: string) => planReload(before, load(yaml), new Set(["synthetic"]));

  test("the same config: nothing to do", () => {
    expect(plan(base)).toEqual({ reconnect: false, destinations: { add: [], remove: [], reconnect: [] }, collectors: [], needRestart: [] });
  });

  test("one added, one removed, one reconnected (new url), default untouched", () => {
    const p = plan(`
nats: { url: nats://d:4222, subject: tapio.events }
destinations:
  central: { url: nats://c2:4222, subject: tapio.central, stream: { name: TAPIO_CENTRAL } }
  edge: { url: nats://e:4222 }
collectors:
  synthetic: {}
`);
    expect(p.destinations).toEqual({ add: ["edge"], remove: ["regional"], reconnect: ["central"] });
    expect(p.reconnect).toBe(false);
    expect(p.needRestart).toEqual([]);
    // a destination's settings restart no collector: its subject is applied per event
    expect(p.collectors).toEqual([]);
  });

  test("default's new settings reconnect default, listed with the others", () => {
    const p = plan(base.replace("nats://d:4222", "nats://d2:4222").replace("nats://r:4222", "nats://r2:4222"));
    expect(p.reconnect).toBe(true);
    expect(p.destinations).toEqual({ add: [], remove: [], reconnect: ["default", "regional"] });
  });

  test("a circuit_breaker change of an extra destination waits for a restart, without a reconnect", () => {
    const p = plan(base.replace("subject: tapio.regional }", "subject: tapio.regional, circuit_breaker: { failure_threshold: 9 } }"));
    expect(p.needRestart).toEqual(["destinations.regional.circuit_breaker"]);
    expect(p.destinations).toEqual({ add: [], remove: [], reconnect: [] });
    // and default's is its own key
    const q = plan(base.replace("subject: tapio.events }", "subject: tapio.events, circuit_breaker: { open_for: 10s } }"));
    expect(q.needRestart).toEqual(["nats.circuit_breaker"]);
    expect(q.reconnect).toBe(false);
  });

  test("both a new url and a new circuit_breaker: reconnected now, circuits at the next start", () => {
    const p = plan(base.replace("url: nats://c:4222", "url: nats://c2:4222, circuit_breaker: { failure_threshold: 2 }"));
    expect(p.destinations.reconnect).toEqual(["central"]);
    expect(p.needRestart).toEqual(["destinations.central.circuit_breaker"]);
  });

  test("all extra destinations removed (routes gone too): each removed", () => {
    const p = plan("nats: { url: nats://d:4222, subject: tapio.events }\ncollectors:\n  synthetic: {}\n");
    expect(p.destinations).toEqual({ add: [], remove: ["central", "regional"], reconnect: [] });
  });
});
