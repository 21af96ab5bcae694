// Collectors' saved positions in the spool database (table collector_state):
// one value per collector name, kept across reopen, in spools of every
// layout, untouched by the events' own rows.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { SpoolError } from "../../src/spool/spool.ts";
import { events, openSpool, spoolPath } from "./fixtures.ts";

describe("collector state in the spool", () => {
  test("one value per collector: none at first, the last saved after a reopen, others untouched", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    expect(spool.loadState("kernel")).toBeUndefined();
    spool.saveState("kernel", '{"seq":1}');
    spool.saveState("kernel", '{"seq":2}');
    spool.saveState("kubeapi", "rv-7");
    spool.append(events("a", 3));
    expect(spool.loadState("kernel")).toBe('{"seq":2}');
    spool.close();
    const reopened = openSpool(path);
    expect(reopened.loadState("kernel")).toBe('{"seq":2}');
    expect(reopened.loadState("kubeapi")).toBe("rv-7");
    expect(reopened.loadState("kernel-2")).toBeUndefined();
    // the events' rows and counts know nothing of it
    expect(reopened.stats().depth).toBe(3);
    reopened.remove(reopened.peek(10));
    expect(reopened.stats().depth).toBe(0);
    expect(reopened.loadState("kernel")).toBe('{"seq":2}');
  });

  test("a spool file made before the table existed gets it on open, its rows kept", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    spool.append(events("a", 2));
    spool.close();
    const db = new Database(path);
    db.run("DROP TABLE collector_state");
    db.close();
    const reopened = openSpool(path);
    expect(reopened.loadState("kernel")).toBeUndefined();
    reopened.saveState("kernel", "x");
    expect(reopened.loadState("kernel")).toBe("x");
    expect(reopened.stats().depth).toBe(2);
  });

  test("a closed spool refuses with a SpoolError", () => {
    const spool = openSpool(spoolPath());
    spool.close();
    expect(() => spool.loadState("kernel")).toThrow(SpoolError);
    expect(() => spool.saveState("kernel", "x")).toThrow(SpoolError);
  });
});
