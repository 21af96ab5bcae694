import { describe, expect, setSystemTime, test } from "bun:test";
import { SpoolError } from "../../src/spool/spool.ts";
import { event, events, openSpool, queued, rowBytes, spoolPath } from "./fixtures.ts";
import { waitFor } from "../helpers/wait-for.ts";

describe("append, peek, remove", () => {
  test("keep FIFO order across batches; subject, id, collector and bytes round-trip exactly", () => {
    const spool = openSpool(spoolPath());
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const written = [
      ...events("a", 3),
      event("ü-ñ-✓-😀", 0, "tapio.events.k8s_resource", "kube-api"),
      { subject: "tapio.events.view", id: "view", bytes: backing.subarray(2, 5), collector: "viewer" },
      ...events("b", 4, 2000),
    ];
    const before = Date.now();
    expect(spool.append(written.slice(0, 3))).toEqual({ appended: 3, dropped: [] });
    expect(spool.append(written.slice(3, 5))).toEqual({ appended: 2, dropped: [] });
    expect(spool.append(written.slice(5))).toEqual({ appended: 4, dropped: [] });
    const after = Date.now();

    const rows = spool.peek(100);
    expect(rows.map(queued)).toEqual(written);
    expect(rows[4]!.bytes).toEqual(new Uint8Array([1, 2, 3]));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.seq).toBeGreaterThan(rows[i - 1]!.seq);
    for (const row of rows) {
      expect(row.spooledAt).toBeGreaterThanOrEqual(before);
      expect(row.spooledAt).toBeLessThanOrEqual(after);
    }

    // peek does not consume; remove does, and the next peek goes on from there
    expect(spool.peek(2).map((r) => r.id)).toEqual(["a-0", "a-1"]);
    spool.remove(spool.peek(4));
    expect(spool.peek(100).map((r) => r.id)).toEqual(written.slice(4).map((e) => e.id));
    spool.append(events("c", 2));
    expect(spool.peek(100).map((r) => r.id)).toEqual([...written.slice(4), ...events("c", 2)].map((e) => e.id));
    expect(spool.peek(0)).toEqual([]);
  });

  test("skipCollectors leaves out rows of those collectors and keeps the order of the rest", () => {
    const spool = openSpool(spoolPath());
    const mixed = ["x", "y", "z", "x", "y", "z"].map((c, i) => event(`e${i}`, 10, `tapio.events.${c}`, c));
    spool.append(mixed);
    expect(spool.peek(10, new Set(["x"])).map((r) => r.id)).toEqual(["e1", "e2", "e4", "e5"]);
    expect(spool.peek(3, new Set(["x", "z"])).map((r) => r.id)).toEqual(["e1", "e4"]);
    expect(spool.peek(10, new Set(["x", "y", "z"]))).toEqual([]);
    expect(spool.peek(2, new Set())).toHaveLength(2);
    expect(spool.peek(10, new Set(['odd"name\\', "y"])).map((r) => r.id)).toEqual(["e0", "e2", "e3", "e5"]);
  });

  test("stats count rows and bytes; removing a row twice frees it once", () => {
    const spool = openSpool(spoolPath());
    expect(spool.stats()).toMatchObject({ depth: 0, bytes: 0, oldestAt: undefined });
    spool.append(events("a", 5, 300));
    const rows = spool.peek(5);
    expect(spool.stats()).toMatchObject({ depth: 5, bytes: rowBytes(300, 5), oldestAt: rows[0]!.spooledAt });
    spool.remove(rows.slice(0, 2));
    spool.remove(rows.slice(0, 3));
    expect(spool.stats()).toMatchObject({ depth: 2, bytes: rowBytes(300, 2) });
    expect(spool.stats().fileBytes).toBeGreaterThan(0);
  });

  test("stats are restored on reopen, and new rows queue behind the old ones", () => {
    const path = spoolPath();
    const first = openSpool(path);
    first.append(events("a", 10, 500));
    first.remove(first.peek(3));
    const before = first.stats();
    first.close();

    const second = openSpool(path);
    const after = second.stats();
    expect(after).toMatchObject({ depth: 7, bytes: rowBytes(500, 7), oldestAt: before.oldestAt });
    second.append(events("b", 2));
    expect(second.peek(100).map((r) => r.id)).toEqual([...events("a", 10).slice(3), ...events("b", 2)].map((e) => e.id));
  });

  test("a closed spool refuses to work with a SpoolError", async () => {
    const spool = openSpool(spoolPath());
    spool.close();
    spool.close();
    expect(() => spool.append(events("a", 1))).toThrow(SpoolError);
    expect(() => spool.peek(1)).toThrow(/is closed/);
    expect(() => spool.stats()).toThrow(SpoolError);
    expect(await spool.waitForSpace(1, new AbortController().signal)).toBe(false);
  });
});

describe("disk space", () => {
  test("is given back when the spool empties", () => {
    const spool = openSpool(spoolPath());
    const empty = spool.stats().fileBytes;
    for (let i = 0; i < 20; i++) spool.append(events(`b${i}`, 1000, 1000)); // ~20 MB
    expect(spool.stats().fileBytes).toBeGreaterThan(15_000_000);
    for (let rows = spool.peek(700); rows.length > 0; rows = spool.peek(700)) spool.remove(rows);
    const stats = spool.stats();
    expect(stats).toMatchObject({ depth: 0, bytes: 0 });
    expect(stats.fileBytes).toBeLessThan(1_000_000);
    expect(stats.fileBytes).toBeLessThanOrEqual(empty * 2);
  });

  test("is given back at most once a second, and still after a spool emptied again within that second", async () => {
    const spool = openSpool(spoolPath());
    const fillAndDrain = () => {
      for (let i = 0; i < 5; i++) spool.append(events(`b${i}`, 1000, 1000));
      spool.remove(spool.peek(10_000));
    };
    // The clock stands still, so the second fill and drain is "within the second" however slow the machine.
    setSystemTime(new Date());
    try {
      fillAndDrain();
      expect(spool.stats().fileBytes).toBeLessThan(1_000_000);
      fillAndDrain(); // within the second: left for later
      expect(spool.stats().fileBytes).toBeGreaterThan(4_000_000);
    } finally {
      setSystemTime();
    }
    await waitFor(() => spool.stats().fileBytes < 1_000_000, "the space to be given back a second later");
  });
});
