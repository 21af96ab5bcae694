// max_bytes and the when_full policies.
import { describe, expect, test } from "bun:test";
import { ROW_OVERHEAD } from "../../src/spool/spool.ts";
import { WHEN_FULL } from "../../src/config/schema.ts";
import { event, events, openSpool, queued, rowBytes, spoolPath } from "./fixtures.ts";

/** Room for exactly `rows` events of 100 bytes. */
const room = (rows: number) => rowBytes(100, rows);

describe("block", () => {
  test("writes the longest prefix that fits; waitForSpace resolves once a remove made room", async () => {
    const spool = openSpool(spoolPath(), { maxBytes: room(3), whenFull: "block" });
    const batch = events("a", 5);
    expect(spool.append(batch)).toEqual({ appended: 3, dropped: [] });
    expect(spool.stats()).toMatchObject({ depth: 3, bytes: room(3) });

    let resolved: boolean | undefined;
    const waiting = spool.waitForSpace(100, new AbortController().signal).then((ok) => (resolved = ok));
    await Bun.sleep(20);
    expect(resolved).toBeUndefined();
    spool.remove(spool.peek(1));
    expect(await waiting).toBe(true);

    expect(spool.append(batch.slice(3))).toEqual({ appended: 1, dropped: [] });
    expect(spool.peek(10).map((r) => r.id)).toEqual(["a-1", "a-2", "a-3"]);
  });

  test("waitForSpace resolves at once if the event fits, false on abort or close", async () => {
    const spool = openSpool(spoolPath(), { maxBytes: room(2), whenFull: "block" });
    const never = new AbortController().signal;
    expect(await spool.waitForSpace(100, never)).toBe(true);
    spool.append(events("a", 2));
    const full = new AbortController();
    const zero = spool.waitForSpace(0, full.signal); // an empty payload still costs ROW_OVERHEAD
    full.abort();
    expect(await zero).toBe(false);

    const abort = new AbortController();
    const aborted = spool.waitForSpace(100, abort.signal);
    abort.abort();
    expect(await aborted).toBe(false);
    expect(await spool.waitForSpace(100, abort.signal)).toBe(false);

    const closing = spool.waitForSpace(100, never);
    spool.close();
    expect(await closing).toBe(false);
  });

  test("a remove that frees too little keeps waiters waiting", async () => {
    const spool = openSpool(spoolPath(), { maxBytes: rowBytes(100, 4), whenFull: "block" });
    spool.append(events("a", 4));
    let resolved: boolean | undefined;
    const abort = new AbortController();
    const waiting = spool.waitForSpace(300, abort.signal).then((ok) => (resolved = ok));
    spool.remove(spool.peek(1));
    await Bun.sleep(20);
    expect(resolved).toBeUndefined();
    spool.remove(spool.peek(2));
    expect(await waiting).toBe(true);
  });
});

describe("drop_newest", () => {
  test("drops the events that do not fit, each with reason spool_full", () => {
    const spool = openSpool(spoolPath(), { maxBytes: room(3), whenFull: "drop_newest" });
    spool.append(events("a", 2));
    const batch = events("b", 3);
    const result = spool.append(batch);
    expect(result.appended).toBe(3);
    expect(result.dropped).toEqual([
      { event: batch[1]!, reason: "spool_full" },
      { event: batch[2]!, reason: "spool_full" },
    ]);
    expect(spool.peek(10).map((r) => r.id)).toEqual(["a-0", "a-1", "b-0"]);
    expect(spool.stats()).toMatchObject({ depth: 3, bytes: room(3) });
  });
});

describe("drop_oldest", () => {
  test("deletes the oldest rows to make room and returns them as drops; the newest are kept", () => {
    const spool = openSpool(spoolPath(), { maxBytes: room(4), whenFull: "drop_oldest" });
    const old = events("old", 4).map((e, i) => event(e.id, 100, e.subject, `collector-${i}`));
    spool.append(old);
    const batch = events("new", 3);
    const result = spool.append(batch);
    expect(result.appended).toBe(3);
    expect(result.dropped.map((d) => d.reason)).toEqual(["spool_full_oldest", "spool_full_oldest", "spool_full_oldest"]);
    expect(result.dropped.map((d) => queued(d.event))).toEqual(old.slice(0, 3));
    expect(spool.peek(10).map((r) => r.id)).toEqual(["old-3", "new-0", "new-1", "new-2"]);
    expect(spool.stats()).toMatchObject({ depth: 4, bytes: room(4) });
  });

  test("a batch larger than max_bytes keeps its newest events, and empties the table for them", () => {
    const spool = openSpool(spoolPath(), { maxBytes: room(3), whenFull: "drop_oldest" });
    spool.append(events("old", 2));
    const batch = events("new", 5);
    const result = spool.append(batch);
    expect(result.appended).toBe(5);
    expect(result.dropped.map((d) => [d.event.id, d.reason])).toEqual([
      ["old-0", "spool_full_oldest"],
      ["old-1", "spool_full_oldest"],
      ["new-0", "spool_full_oldest"],
      ["new-1", "spool_full_oldest"],
    ]);
    expect(spool.peek(10).map((r) => r.id)).toEqual(["new-2", "new-3", "new-4"]);
    expect(spool.stats()).toMatchObject({ depth: 3, bytes: room(3) });
  });

  test("evicts across many rows, and a later remove of an evicted row frees nothing twice", () => {
    const spool = openSpool(spoolPath(), { maxBytes: rowBytes(10, 1000), whenFull: "drop_oldest" });
    spool.append(events("small", 1000, 10));
    const inFlight = spool.peek(600);
    const big = event("big", rowBytes(10, 600) - ROW_OVERHEAD);
    const result = spool.append([big]);
    expect(result.dropped).toHaveLength(600);
    expect(result.dropped.map((d) => d.event.id)).toEqual(inFlight.map((r) => r.id));
    spool.remove(inFlight);
    expect(spool.stats()).toMatchObject({ depth: 401, bytes: rowBytes(10, 1000) });
    expect(spool.peek(1000).at(-1)?.id).toBe("big");
  });
});

describe("an event larger than max_bytes on its own", () => {
  for (const whenFull of WHEN_FULL) {
    test(`is dropped as too_large_for_spool with ${whenFull}, and the rest of the batch is written`, async () => {
      const spool = openSpool(spoolPath(), { maxBytes: room(3), whenFull });
      const huge = event("huge", room(3));
      const result = spool.append([event("a", 100), huge, event("b", 100)]);
      expect(result).toEqual({ appended: 3, dropped: [{ event: huge, reason: "too_large_for_spool" }] });
      expect(spool.peek(10).map((r) => r.id)).toEqual(["a", "b"]);
      // waiting for room it can never have would hang: append drops it instead
      expect(await spool.waitForSpace(room(3), new AbortController().signal)).toBe(true);
    });
  }
});
