// GcPacer (src/gc-pacer.ts): one collection a while after work, however much
// work came meanwhile; none while nothing happens; none without BUN_GC_TIMER_DISABLE.
import { describe, expect, test } from "bun:test";
import { GcPacer, gcPacerFor } from "../src/gc-pacer.ts";
import { waitFor } from "./helpers/wait-for.ts";

describe("GcPacer", () => {
  test("work collects once after the delay, whatever came meanwhile; nothing without work", async () => {
    const at: number[] = [];
    const start = performance.now();
    const pacer = new GcPacer(50, () => at.push(performance.now() - start));
    for (let i = 0; i < 100; i++) pacer.worked();
    await waitFor(() => at.length === 1, "the collection after work", 2000);
    expect(at[0]).toBeGreaterThanOrEqual(45);
    // Idle since: no more collections (waited on a second pacer's work, not a sleep).
    const other: number[] = [];
    const probe = new GcPacer(150, () => other.push(1));
    probe.worked();
    await waitFor(() => other.length === 1, "a later timer", 2000);
    expect(at.length).toBe(1);
    // Work again: collected again.
    pacer.worked();
    await waitFor(() => at.length === 2, "the collection after more work", 2000);
    pacer.stop();
  });

  test("stop cancels what is due", async () => {
    const calls: number[] = [];
    const pacer = new GcPacer(30, () => calls.push(1));
    pacer.worked();
    pacer.stop();
    const probe: number[] = [];
    const later = new GcPacer(120, () => probe.push(1));
    later.worked();
    await waitFor(() => probe.length === 1, "a later timer", 2000);
    expect(calls).toEqual([]);
  });

  test("only with Bun's GC timer off", () => {
    expect(gcPacerFor({})).toBeUndefined();
    expect(gcPacerFor({ BUN_GC_TIMER_DISABLE: "1" })).toBeInstanceOf(GcPacer);
  });
});
