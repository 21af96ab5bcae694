// The README's event_id: a UUIDv7, time-ordered and unique across restarts.
import { describe, expect, test } from "bun:test";
import { runAgent, writeConfig } from "../helpers/agent.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The 48-bit Unix millisecond time at the front of a UUIDv7. */
const millis = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);

describe("README event format", () => {
  test("event_id is a UUIDv7: time-ordered within a run, later and different in the next run", async () => {
    const file = writeConfig("collectors:\n  synthetic: { config: { count: 200, rate: 0 } }\n");
    const run = async () => {
      const r = await runAgent(["--once", "--dry-run", "-c", file]);
      expect(r.code).toBe(0);
      return r.stdout.trim().split("\n").map((line) => JSON.parse(line) as { event_id: string; event_data: { custom: { seq: string } } });
    };
    const first = await run();
    const second = await run();
    for (const e of [...first, ...second]) expect(e.event_id).toMatch(UUID_V7);
    // In the order the collector emitted them (seq), whatever order the workers wrote them in.
    const times = first.sort((a, b) => Number(a.event_data.custom.seq) - Number(b.event_data.custom.seq)).map((e) => millis(e.event_id));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Math.min(...second.map((e) => millis(e.event_id)))).toBeGreaterThanOrEqual(Math.max(...times));
    expect(new Set([...first, ...second].map((e) => e.event_id)).size).toBe(400);
  });
});
