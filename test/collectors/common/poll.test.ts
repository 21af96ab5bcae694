// The shared poll loop reports every round, failed or not, with its wall
// time and the CPU the process spent in it (the poll metrics).
import { describe, expect, test } from "bun:test";
import { poll } from "../../../src/collectors/common/poll.ts";
import { recordingContext } from "../../helpers/collector-context.ts";

/** Keeps the CPU busy for `ms` of CPU time (process.cpuUsage, not the wall clock). */
function burnCpu(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return;
  }
}

describe("poll", () => {
  test("reports each round with its wall and CPU seconds, failed rounds too", async () => {
    const rec = recordingContext({ once: false });
    let rounds = 0;
    await poll(rec.ctx, 1, async () => {
      rounds++;
      if (rounds === 2) throw new Error("source missing");
      if (rounds === 3) rec.stop();
      burnCpu(20);
    });
    expect(rec.pollRounds.length).toBe(3);
    expect(rec.degraded).toEqual(["source missing"]);
    for (const [i, { wallSeconds, cpuSeconds }] of rec.pollRounds.entries()) {
      expect(wallSeconds).toBeGreaterThanOrEqual(0);
      if (i === 1) continue; // the failed round threw before burning
      // the CPU burnt inside the round is counted; the round did nothing else
      expect(cpuSeconds).toBeGreaterThanOrEqual(0.019);
      expect(cpuSeconds).toBeLessThan(0.2);
    }
  });

  test("a --once poll reports its one round", async () => {
    const rec = recordingContext({ once: true });
    await poll(rec.ctx, 60_000, async () => {});
    expect(rec.pollRounds.length).toBe(1);
  });
});
