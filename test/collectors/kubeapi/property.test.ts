// Property tests: a watch stream cut anywhere reads the same; garbage,
// truncated and empty input is counted, never thrown.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as v from "valibot";
import { KubeapiCollector } from "../../../src/collectors/kubeapi/index.ts";
import { EventSet, PodSet } from "../../../src/collectors/kubeapi/resources.ts";
import { kubeapiConfigSchema } from "../../../src/collectors/kubeapi/schema.ts";
import { LineSplitter, parseWatchLine } from "../../../src/collectors/kubeapi/watch.ts";
import { recordingContext } from "../../helpers/collector-context.ts";
import { tokenFile } from "../kubelet/fake-kubelet.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { cut, listOf, prng, startFakeApiServer, WATCH_LINES } from "./fake-apiserver.ts";

const utf8 = new TextEncoder();
const STREAM = utf8.encode(WATCH_LINES.map((l) => `${l}\n`).join(""));

function split(chunks: Uint8Array[], max = 1 << 20): { lines: string[]; tooLong: number[]; rest: string } {
  const splitter = new LineSplitter(max);
  const lines: string[] = [];
  const tooLong: number[] = [];
  for (const chunk of chunks) splitter.push(chunk, (l) => lines.push(l), (n) => tooLong.push(n));
  return { lines, tooLong, rest: splitter.end() };
}

/** Cut points as a sorted list of offsets into `bytes`. */
function cuttings(bytes: Uint8Array): fc.Arbitrary<Uint8Array[]> {
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 200 }).map((points) => {
    const sorted = [0, ...points.sort((a, b) => a - b), bytes.length];
    const chunks: Uint8Array[] = [];
    for (let i = 1; i < sorted.length; i++) chunks.push(bytes.subarray(sorted[i - 1], sorted[i]));
    return chunks;
  });
}

/** A line that is not blank, has no newline, and is not a watch event. */
const garbageLine = fc.string({ unit: "grapheme", minLength: 1, maxLength: 80 }).filter((s) => !s.includes("\n") && s.trim() !== "" && "error" in parseWatchLine(s));

describe("LineSplitter", () => {
  test("any cutting of the recorded stream gives back its 23 lines", () => {
    fc.assert(
      fc.property(cuttings(STREAM), (chunks) => {
        const { lines, tooLong, rest } = split(chunks);
        expect(lines).toEqual(WATCH_LINES);
        expect(tooLong).toEqual([]);
        expect(rest).toBe("");
      }),
      { numRuns: 200 },
    );
  });

  test("lines of any Unicode, cut inside characters, come back whole", () => {
    const lines = fc.array(fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\n") && s.trim() !== ""), { maxLength: 20 });
    fc.assert(
      fc.property(lines, fc.integer(), (text, seed) => {
        const bytes = utf8.encode(text.map((l) => `${l}\n`).join(""));
        expect(split(cut(bytes, prng(seed), 7)).lines).toEqual(text);
      }),
      { numRuns: 300 },
    );
  });

  test("arbitrary bytes never throw", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (chunks) => {
        split(chunks, 64);
      }),
      { numRuns: 300 },
    );
  });

  test("a line over the limit is reported and skipped; the next line is read", () => {
    const long = "x".repeat(100);
    const { lines, tooLong } = split([utf8.encode(`${long.slice(0, 60)}`), utf8.encode(`${long.slice(60)}\nshort\n`)], 50);
    expect(tooLong).toEqual([60]);
    expect(lines).toEqual(["short"]);
  });

  test("an unfinished last line is left over at the end", () => {
    expect(split([utf8.encode('{"type":"ADDED"}\n{"type":')]).rest).toBe('{"type":');
  });
});

describe("watch parsing never throws", () => {
  test("arbitrary strings and truncated recorded lines are errors, not exceptions", () => {
    const truncated = fc.nat({ max: WATCH_LINES.length - 1 }).chain((i) => fc.nat({ max: WATCH_LINES[i]!.length - 1 }).map((n) => WATCH_LINES[i]!.slice(0, n)));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), truncated), (line) => {
        const parsed = parseWatchLine(line);
        expect("error" in parsed || ("type" in parsed && typeof parsed.object === "object")).toBe(true);
      }),
      { numRuns: 500 },
    );
    for (const line of WATCH_LINES) expect("error" in parseWatchLine(line)).toBe(false);
  });

  test("PodSet and EventSet take any JSON object without throwing", () => {
    const change = fc.constantFrom("ADDED" as const, "MODIFIED" as const, "DELETED" as const);
    const object = fc.dictionary(fc.constantFrom("metadata", "status", "spec", "involvedObject", "source", "lastTimestamp", "count", "series"), fc.jsonValue({ maxDepth: 3 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(change, object)), fc.array(fc.jsonValue({ maxDepth: 3 })), (changes, items) => {
        const pods = new PodSet("n");
        const events = new EventSet("n", pods, 0);
        const out: unknown[] = [];
        for (const [c, o] of changes) {
          pods.apply(c, o as Record<string, unknown>, out as never, () => {});
          events.apply(c, o as Record<string, unknown>, out as never, () => {});
        }
        pods.replace(items, out as never, () => {});
        events.replace(items, out as never, () => {});
      }),
      { numRuns: 300 },
    );
  });
});

describe("the kubeapi collector on a damaged stream", () => {
  const s = startFakeApiServer({ token: "t", seed: 5 });
  afterAll(() => s.stop());
  const token = tokenFile("t").path;

  test("random chunking with garbage and truncated lines: every good line an event, every bad one a parse error", async () => {
    // lines 0..21: 20 ADDED, BOOKMARK, DELETED
    const good = WATCH_LINES.slice(0, 22);
    const stream = fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...good).map((line) => ({ line, bad: false })) },
        { weight: 1, arbitrary: garbageLine.map((line) => ({ line, bad: true })) },
        { weight: 1, arbitrary: fc.constantFrom(...good).chain((l) => fc.integer({ min: 1, max: l.length - 1 }).map((n) => ({ line: l.slice(0, n), bad: true }))) },
      ),
      { minLength: 1, maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(stream, async (lines) => {
        s.lists.pods.length = 0;
        s.watches.pods.length = 0;
        s.lists.pods.push(listOf("PodList", [], "1"));
        s.watches.pods.push({ lines: lines.map((l) => l.line), then: "hold" });
        const rec = recordingContext({ once: false });
        const c = new KubeapiCollector(v.parse(kubeapiConfigSchema, { api_server: s.url, token_file: token, node_name: "datagen-1-35", events: false }));
        const done = c.run(rec.ctx);
        const events = lines.filter((l) => !l.bad && !l.line.startsWith('{"type":"BOOKMARK"')).length;
        const errors = lines.filter((l) => l.bad).length;
        await waitFor(() => rec.events.length >= events && rec.parseErrors.length >= errors, `${events} events and ${errors} parse errors`);
        rec.stop();
        await done;
        expect(rec.events.length).toBe(events);
        expect(rec.parseErrors.length).toBe(errors);
        expect(rec.degraded).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });
});
