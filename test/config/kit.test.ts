import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { Duration } from "../../src/config/duration.ts";
import {
  bool,
  byteSize,
  duration,
  fallbackMessage,
  integer,
  nonEmptyString,
  number,
  picklist,
  strictObject,
  stringOrList,
  text,
} from "../../src/config/kit.ts";
import { editDistance, suggest } from "../../src/config/suggest.ts";

/** The output, or the messages with their dotted paths. */
function run(schema: v.GenericSchema, input: unknown): unknown {
  const result = v.safeParse(schema, input, { abortEarly: false, message: fallbackMessage });
  if (result.success) return result.output;
  return result.issues.map((issue) => `${v.getDotPath(issue) ?? ""}: ${issue.message}`);
}

describe("kit", () => {
  test("integer", () => {
    expect(run(integer(1, 64), 8)).toBe(8);
    expect(run(integer(1, 64), 1.5)).toEqual([": expected an integer from 1 to 64, got 1.5"]);
    expect(run(integer(1, 64), "8")).toEqual([': expected an integer from 1 to 64, got "8"']);
    expect(run(integer(-1), 0)).toBe(0);
    expect(run(integer(-1), -5)).toEqual([": expected an integer of at least -1, got -5"]);
  });

  test("number", () => {
    expect(run(number(0, 1), 0.25)).toBe(0.25);
    expect(run(number(0), Infinity)).toEqual([": expected a number of at least 0, got Infinity"]);
    expect(run(number(0), Number.NaN)).toEqual([": expected a number of at least 0, got NaN"]);
  });

  test("duration", () => {
    expect(run(duration(), "1m30s")).toEqual(new Duration(90_000));
    expect(run(duration(), "250ms")).toEqual(new Duration(250));
    expect(run(duration(), 0)).toEqual(new Duration(0));
    for (const bad of ["30", "-1s", "1d", "", 30, true]) {
      expect(run(duration(), bad)).toEqual([`: expected a duration like 250ms, 30s, 5m or 1h, got ${JSON.stringify(bad)}`]);
    }
  });

  test("duration above 0", () => {
    const positive = duration({ positive: true });
    expect(run(positive, "1ms")).toEqual(new Duration(1));
    for (const zero of [0, "0", "0s", "0ms", "0m0s", "0.0001ms"]) {
      expect(run(positive, zero)).toEqual([`: expected a duration above 0 like 250ms, 30s, 5m or 1h, got ${JSON.stringify(zero)}`]);
    }
    expect(run(positive, "soon")).toEqual([': expected a duration above 0 like 250ms, 30s, 5m or 1h, got "soon"']);
  });

  test("byteSize", () => {
    expect(run(byteSize(), 1024)).toBe(1024);
    expect(run(byteSize(), "512KB")).toBe(512_000);
    expect(run(byteSize(), "512KiB")).toBe(524_288);
    expect(run(byteSize(), "64MiB")).toBe(67_108_864);
    expect(run(byteSize(), "1GB")).toBe(1_000_000_000);
    expect(run(byteSize(), "1G")).toBe(1_000_000_000);
    expect(run(byteSize(), "1Gi")).toBe(1_073_741_824);
    expect(run(byteSize(), "100 B")).toBe(100);
    expect(run(byteSize(), "1.5K")).toBe(1500);
    expect(run(byteSize(), -1)).toEqual([": expected a byte size like 512KB, 64MiB or 1GB, got -1"]);
    expect(run(byteSize({ unlimited: true }), -1)).toBe(-1);
    expect(run(byteSize({ unlimited: true }), "2XB")).toEqual([': expected a byte size like 512KB, 64MiB or 1GB, or -1 for unlimited, got "2XB"']);
    expect(run(byteSize({ min: 1 }), 0)).toEqual([": expected a byte size like 512KB, 64MiB or 1GB (at least 1 bytes), got 0"]);
  });

  test("picklist", () => {
    const mode = picklist(["core", "jetstream"]);
    const output: "core" | "jetstream" = v.parse(mode, "core");
    expect(output).toBe("core");
    expect(run(mode, "js")).toEqual([': expected one of core, jetstream, got "js"']);
  });

  test("nonEmptyString, text, bool", () => {
    expect(run(nonEmptyString(), "  ")).toEqual([': expected a non-empty string, got "  "']);
    expect(run(text("a word", (s) => /^\w+$/.test(s)), "a b")).toEqual([': expected a word, got "a b"']);
    expect(run(bool(), false)).toBe(false);
    expect(run(bool(), "yes")).toEqual([': expected true or false, got "yes"']);
  });

  test("stringOrList", () => {
    expect(run(stringOrList(), "a")).toEqual(["a"]);
    expect(run(stringOrList(), ["a", "b"])).toEqual(["a", "b"]);
    expect(run(stringOrList(), { a: 1 })).toEqual([": expected a string or a list of strings, got a mapping"]);
    expect(run(stringOrList(), ["a", 2])).toEqual(["1: expected a non-empty string, got 2"]);
  });

  describe("strictObject", () => {
    const schema = strictObject({ workers: v.optional(integer(1, 64), 4), name: nonEmptyString() }, { hints: { nats: "not here" } });

    test("fills defaults and infers the output type", () => {
      const output: { workers: number; name: string } = v.parse(schema, { name: "x" });
      expect(output).toEqual({ workers: 4, name: "x" });
    });

    test("reports every unknown key, a missing key and bad values together", () => {
      expect(run(schema, { workers: 0, wrkers: 1, nmae: "x", zzz: 1, nats: {} })).toEqual([
        "workers: expected an integer from 1 to 64, got 0",
        'name: missing required key "name"',
        'wrkers: unknown key "wrkers" (did you mean "workers"?)',
        'nmae: unknown key "nmae" (did you mean "name"?)',
        'zzz: unknown key "zzz" (known keys: workers, name)',
        'nats: unknown key "nats": not here',
      ]);
    });

    test("a list or a scalar is not a mapping", () => {
      expect(run(schema, ["name"])).toEqual([": expected a mapping, got a list"]);
      expect(run(schema, "x")).toEqual([': expected a mapping, got "x"']);
    });

    test("keys that are Object.prototype names are ordinary unknown keys", () => {
      const input = JSON.parse('{"name": "x", "constructor": 1, "__proto__": 2}');
      expect(run(schema, input)).toEqual(['constructor: unknown key "constructor" (known keys: workers, name)', '__proto__: unknown key "__proto__" (known keys: workers, name)']);
    });

    test("another noun", () => {
      expect(run(strictObject({}, { noun: "collector" }), { kafka: {} })).toEqual(['kafka: unknown collector "kafka" (no collectors are known)']);
    });
  });

  test("plain valibot schemas get messages in the same style", () => {
    const schema = v.strictObject({ port: v.number(), host: v.string() });
    expect(run(schema, { port: "80" })).toEqual(['port: expected a number, got "80"', 'host: missing required key "host"']);
    expect(run(schema, { port: 80, host: "h", extra: 1 })).toEqual(['extra: unknown key "extra"']);
  });
});

describe("suggestions", () => {
  test("edit distance counts a swap of neighbours as one edit", () => {
    expect(editDistance("wokers", "workers")).toBe(1);
    expect(editDistance("wrokers", "workers")).toBe(1);
    expect(editDistance("abc", "abc")).toBe(0);
    expect(editDistance("", "abc")).toBe(3);
  });

  test("suggests only close candidates", () => {
    const keys = ["workers", "buffer_size", "buffer_bytes", "log_level"];
    expect(suggest("wokers", keys)).toBe("workers");
    expect(suggest("Workers", keys)).toBe("workers");
    expect(suggest("bufferSize", keys)).toBe("buffer_size");
    expect(suggest("loglevel", keys)).toBe("log_level");
    expect(suggest("nats", keys)).toBeUndefined();
    expect(suggest("x", ["y"])).toBeUndefined();
    expect(suggest("anything", [])).toBeUndefined();
  });
});
