// Property tests: whatever a kubelet sends, the collector counts what it
// cannot read and goes on; it never throws.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as v from "valibot";
import { KubeletCollector } from "../../../src/collectors/kubelet/index.ts";
import { PodTracker } from "../../../src/collectors/kubelet/pods.ts";
import { kubeletConfigSchema } from "../../../src/collectors/kubelet/schema.ts";
import { StatsTracker } from "../../../src/collectors/kubelet/stats.ts";
import type { EventInput } from "../../../src/event/event.ts";
import { runOnce } from "../../helpers/collector-context.ts";
import { testPki } from "../../helpers/tls.ts";
import { PODS_JSON, STATS_JSON, startFakeKubelet, tokenFile } from "./fake-kubelet.ts";

type Path = Array<string | number>;

/** Every path into a JSON value, so a test can replace any part of it. */
function paths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (typeof value === "object" && value !== null) for (const [k, x] of Object.entries(value)) paths(x, [...prefix, k], out);
  return out;
}

function replaced(root: unknown, changes: Array<[Path, unknown]>): unknown {
  let doc = structuredClone(root);
  for (const [path, value] of changes) {
    if (path.length === 0) {
      doc = value;
      continue;
    }
    let parent: any = doc;
    for (const key of path.slice(0, -1)) parent = parent?.[key];
    if (typeof parent === "object" && parent !== null) parent[path.at(-1)!] = value;
  }
  return doc;
}

/** The fixture with a few of its parts replaced by arbitrary JSON. */
function mutations(fixture: unknown): fc.Arbitrary<unknown> {
  const all = paths(fixture);
  return fc
    .array(fc.tuple(fc.constantFrom(...all), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined))), { minLength: 1, maxLength: 6 })
    .map((changes) => replaced(fixture, changes));
}

const PODS = JSON.parse(PODS_JSON);
const STATS = JSON.parse(STATS_JSON);
const RULES = { crashLoopRestarts: 3, ignoreWaitingReasons: new Set<string>(), notReadyAfterMs: 0 };

describe("kubelet parsers never throw", () => {
  test("PodTracker on mutated /pods responses, several polls in a row", () => {
    fc.assert(
      fc.property(fc.array(mutations(PODS), { minLength: 1, maxLength: 3 }), (bodies) => {
        const tracker = new PodTracker(RULES);
        for (const body of bodies) {
          const out: EventInput[] = [];
          tracker.update(body, Date.now(), out, () => {});
          for (const e of out) expect(typeof e.type).toBe("string");
        }
      }),
      { numRuns: 300 },
    );
  });

  test("StatsTracker on mutated summaries", () => {
    fc.assert(
      fc.property(fc.array(mutations(STATS), { minLength: 1, maxLength: 3 }), (bodies) => {
        const tracker = new StatsTracker({ nodeCpuPercent: 1, nodeMemoryPercent: 1, ephemeralStoragePercent: 0.0001, nodeCpuCores: 1 });
        for (const body of bodies) tracker.update(body, () => 1000, Date.now(), [], () => {});
      }),
      { numRuns: 300 },
    );
  });

  test("both on arbitrary JSON values", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const bad: string[] = [];
        const pods = new PodTracker(RULES).update(body, Date.now(), [], (d) => bad.push(d));
        const stats = new StatsTracker({ nodeCpuPercent: 1, nodeMemoryPercent: 1, ephemeralStoragePercent: 1, nodeCpuCores: 1 }).update(body, () => undefined, Date.now(), [], (d) => bad.push(d));
        // a refused body always says why
        if (!pods || !stats) expect(bad.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe("the kubelet collector on garbage over HTTPS", () => {
  const k = startFakeKubelet("t");
  const token = tokenFile("t").path;
  afterAll(() => k.stop());
  const collector = new KubeletCollector(v.parse(kubeletConfigSchema, { address: k.url, token_file: token, ca_file: testPki().caFile }));

  test("arbitrary strings and truncated fixture prefixes: parse errors counted, never a throw", async () => {
    const bodies = fc.oneof(
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.nat({ max: PODS_JSON.length - 1 }).map((n) => PODS_JSON.slice(0, n)),
      fc.nat({ max: STATS_JSON.length - 1 }).map((n) => STATS_JSON.slice(0, n)),
    );
    await fc.assert(
      fc.asyncProperty(bodies, bodies, async (pods, stats) => {
        k.answers.set("/pods", pods);
        k.answers.set("/stats/summary", stats);
        const rec = await runOnce(collector);
        // neither is a full, valid body: each endpoint reports a parse error and degrades
        expect(rec.parseErrors.filter((p) => p.source === "/pods").length).toBeGreaterThanOrEqual(isJson(pods) ? 0 : 1);
        expect(rec.parseErrors.filter((p) => p.source === "/stats/summary").length).toBeGreaterThanOrEqual(isJson(stats) ? 0 : 1);
        expect(rec.degraded.length).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
