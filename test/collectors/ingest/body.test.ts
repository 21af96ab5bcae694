// The ingest body parser: examples, then properties over generated bodies
// (fast-check): it never throws, a body is taken whole or refused whole, the
// three body forms mean the same, and every problem names an event that is there.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { checkEvents, MAX_LISTED, parseBody, SOURCE } from "../../../src/collectors/ingest/body.ts";
import { SEVERITIES } from "../../../src/event/event.ts";

const check = (text: string, ndjson = false) => {
  const parsed = parseBody(text, ndjson);
  return parsed.ok ? checkEvents(parsed.items) : parsed;
};

describe("ingest body", () => {
  test("an object, an array of them, or NDJSON lines (blank lines skipped)", () => {
    const one = { source: "node-check", type: "node.check_failed" };
    expect(check(JSON.stringify(one))).toEqual({ ok: true, emissions: [{ subjectSuffix: "node-check", event: { type: "node.check_failed", severity: "info", event_data: {} } }] });
    expect(check(JSON.stringify([one, { ...one, source: "b.c" }]))).toMatchObject({ ok: true, emissions: [{ subjectSuffix: "node-check" }, { subjectSuffix: "b.c" }] });
    expect(check(`${JSON.stringify(one)}\n\n  \r\n${JSON.stringify(one)}\r\n`, true)).toMatchObject({ ok: true, emissions: [{}, {}] });
    expect(check("[]")).toEqual({ ok: true, emissions: [] });
    expect(check("", true)).toEqual({ ok: true, emissions: [] });
  });

  test("a body that is not JSON, or not an object or array, is one problem", () => {
    expect(check("")).toEqual({ ok: false, error: expect.stringMatching(/^empty body/) });
    expect(check('{"a":')).toEqual({ ok: false, error: expect.stringMatching(/^invalid JSON: .*\(for one event per line, send Content-Type: application\/x-ndjson\)$/) });
    expect(check("42")).toEqual({ ok: false, error: "expected a JSON object or an array of objects, got the number 42" });
  });

  test("every bad event is named by index (and line), none accepted", () => {
    const good = JSON.stringify({ source: "a", type: "a.b" });
    const result = check([good, "{not json", JSON.stringify({ type: "a.b" }), good, JSON.stringify({ source: "Bad Name", type: "x", event_id: "1" })].join("\n"), true);
    expect(result).toEqual({
      ok: false,
      invalid: 3,
      listed: [
        { index: 1, line: 2, problems: [expect.stringMatching(/^invalid JSON: /)] },
        { index: 2, line: 3, problems: [expect.stringMatching(/^source: required: the sender's name/)] },
        {
          index: 4,
          line: 5,
          problems: [
            expect.stringMatching(/^source: expected lower-case letters.*got "Bad Name"$/),
            "event_id: set by the agent; an input may not carry it",
          ],
        },
      ],
    });
  });

  test(`at most ${MAX_LISTED} bad events are listed, all are counted`, () => {
    const result = check(JSON.stringify(Array.from({ length: 250 }, () => ({ type: "a.b" }))));
    expect(result).toMatchObject({ ok: false, invalid: 250 });
    expect((result as { listed: unknown[] }).listed).toHaveLength(MAX_LISTED);
  });

  test("source: words of a-z 0-9 _ - joined by dots, at most 128 characters (it becomes NATS tokens)", () => {
    for (const ok of ["a", "node-check", "cni.calico_v3", "a.b.c", "x".repeat(128)]) expect(SOURCE.test(ok) && ok.length <= 128).toBe(true);
    for (const bad of ["", "A", "a..b", ".a", "a.", "a b", "a*", ">", "ü"]) expect(check(JSON.stringify({ source: bad, type: "a.b" }))).toMatchObject({ ok: false, invalid: 1 });
    expect(check(JSON.stringify({ source: "x".repeat(129), type: "a.b" }))).toMatchObject({ ok: false, invalid: 1 });
    expect(check(JSON.stringify({ source: 7, type: "a.b" }))).toMatchObject({ ok: false, listed: [{ problems: ["source: expected lower-case letters, digits, _ and -, in words joined by dots (up to 128 characters), like \"node-check\" or \"cni.calico\", got the number 7"] }] });
  });
});

// ------------------------------------------------------------ properties

const sourceArb = fc.stringMatching(/^[a-z0-9_-]{1,12}(\.[a-z0-9_-]{1,8}){0,2}$/);
const validEvent = fc.record(
  {
    source: sourceArb,
    type: fc.stringMatching(/^[a-z]{1,8}\.[a-z_]{1,8}$/),
    severity: fc.constantFrom(...SEVERITIES),
    event_data: fc.record({ custom: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }) }),
    metadata: fc.record({ pod_name: fc.string({ maxLength: 10 }), pid: fc.integer({ min: 0, max: 2 ** 31 - 1 }), tags: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ["source", "type"] },
);
/** Any JSON value, including ones shaped almost like an event. */
const anyValue = fc.oneof(fc.jsonValue(), validEvent.map((e) => ({ ...e, extra: 1 })), validEvent.map(({ source: _, ...e }) => e), validEvent);

describe("ingest body: properties", () => {
  test("never throws, whatever the bytes; a refusal always says why", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.array(anyValue).map((a) => a.map((x) => JSON.stringify(x)).join("\n"))), fc.boolean(), (text, ndjson) => {
        const result = check(text, ndjson);
        if ("error" in result) expect(result.error.length).toBeGreaterThan(0);
        else if (!result.ok) expect(result.listed.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });

  test("all or nothing: accepted only when every event is valid, and then every one of them, in order", () => {
    fc.assert(
      fc.property(fc.array(anyValue, { maxLength: 30 }), (values) => {
        const result = check(JSON.stringify(values));
        const items = parseBody(JSON.stringify(values), false);
        if (!items.ok) throw new Error("an array always parses");
        const bad = values.filter((_, i) => !checkEvents([items.items[i]!]).ok).length;
        if (bad === 0) {
          expect(result).toMatchObject({ ok: true });
          const emissions = (result as { emissions: Array<{ subjectSuffix: string; event: { type: string } }> }).emissions;
          expect(emissions.map((e) => [e.subjectSuffix, e.event.type])).toEqual(values.map((v) => [(v as { source: string }).source, (v as { type: string }).type]));
        } else {
          expect(result).toMatchObject({ ok: false, invalid: bad });
          const listed = (result as { listed: Array<{ index: number }> }).listed;
          expect(listed.length).toBe(Math.min(bad, MAX_LISTED));
          for (const { index } of listed) expect(index).toBeLessThan(values.length);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("the same events as one array or as NDJSON lines give the same result; NDJSON problems carry their line", () => {
    fc.assert(
      fc.property(fc.array(anyValue, { minLength: 1, maxLength: 20 }), fc.array(fc.constantFrom("", "  ", "\r"), { maxLength: 3 }), (values, blanks) => {
        const lines = values.map((v) => JSON.stringify(v));
        const ndjson = [...blanks, ...lines].join("\n");
        const asArray = check(JSON.stringify(values));
        const asLines = check(ndjson, true);
        expect(asLines.ok).toBe(asArray.ok);
        if (asArray.ok && asLines.ok) expect(asLines.emissions).toEqual(asArray.emissions);
        if (!asArray.ok && !asLines.ok && "listed" in asLines && "listed" in asArray) {
          expect(asLines.listed.map((p) => p.index)).toEqual(asArray.listed.map((p) => p.index));
          for (const p of asLines.listed) expect(p.line).toBe(p.index + blanks.length + 1);
        }
      }),
      { numRuns: 500 },
    );
  });
});
