import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseMeminfo, parsePsi, parseValue } from "../../../src/collectors/memory/parse.ts";
import { parseKeyed } from "../../../src/collectors/common/keyed.ts";
import { recorded } from "./helpers.ts";

describe("PSI", () => {
  test("procfs: memory with some and full; cpu with some only (kernels before 5.13)", () => {
    expect(parsePsi(recorded("procfs/pressure/memory"))).toEqual({
      some: { avg10: 0.1, avg60: 2, avg300: 3.85, total: 15 },
      full: { avg10: 0.2, avg60: 3, avg300: 4.95, total: 25 },
    });
    expect(parsePsi(recorded("procfs/pressure/cpu"))).toEqual({ some: { avg10: 0.1, avg60: 2, avg300: 3.85, total: 15 } });
  });

  test("Linux 6.18: all three resources, cpu with its full line", () => {
    expect(parsePsi(recorded("local/pressure/cpu")).some.avg10).toBe(88.4);
    expect(parsePsi(recorded("local/pressure/cpu")).full).toEqual({ avg10: 0, avg60: 0, avg300: 0, total: 0 });
    expect(parsePsi(recorded("local/pressure/io")).full!.total).toBe(3793379);
    // A cgroup's memory.pressure has the same shape.
    expect(parsePsi(recorded("cgroup-v2-root/memory.pressure")).some.total).toBe(24192);
  });

  test.each([
    ["", 'no "some" line'],
    ["full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 'no "some" line'],
    ["some avg10=0.00 avg60=0.00 avg300=0.00\n", "not a PSI line"],
    ["some avg10=x avg60=0.00 avg300=0.00 total=1\n", "not a PSI line"],
    ["some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=1\n", 'two "some" lines'],
  ])("%p is refused: %s", (text, why) => {
    expect(() => parsePsi(text)).toThrow(why);
  });
});

describe("meminfo", () => {
  test("procfs: no MemAvailable (before Linux 3.14); kB multiplied out, counts kept", () => {
    const m = parseMeminfo(recorded("procfs/meminfo"));
    expect(m.get("MemTotal")).toBe(15666184 * 1024);
    expect(m.has("MemAvailable")).toBe(false);
    expect(m.get("Active(anon)")).toBe(267256 * 1024);
    expect(m.get("HugePages_Total")).toBe(0);
  });

  test("Linux 6.18", () => {
    const m = parseMeminfo(recorded("local/meminfo"));
    expect(m.get("MemAvailable")).toBe(24015576 * 1024);
    expect(m.get("VmallocTotal")).toBe(34359738367 * 1024);
  });

  test.each([
    ["", "no MemTotal"],
    ["MemFree: 1 kB\n", "no MemTotal"],
    ["MemTotal: lots\n", "not a meminfo line"],
  ])("%p is refused: %s", (text, why) => {
    expect(() => parseMeminfo(text)).toThrow(why);
  });
});

describe("cgroup files", () => {
  test("keyed files: memory.oom_control, memory.stat, cpu.stat (v1 throttled, v2 root), cgroup.stat", () => {
    expect(parseKeyed(recorded("cgroup-v1-memory/memory.oom_control"))).toEqual(new Map([["oom_kill_disable", 0], ["under_oom", 0], ["oom_kill", 0]]));
    expect(parseKeyed(recorded("cgroup-v1-memory/memory.stat")).get("hierarchical_memory_limit")).toBe(9223372036854771712);
    expect(parseKeyed(recorded("cgroup-v1-cpu.stat.throttled"))).toEqual(
      new Map([["nr_periods", 24], ["nr_throttled", 16], ["throttled_time", 893798447], ["nr_bursts", 0], ["burst_time", 0]]),
    );
    expect(parseKeyed(recorded("cgroup-v2-root/cpu.stat")).get("usage_usec")).toBe(454318554);
    expect(parseKeyed(recorded("cgroup-v2-root/cgroup.stat")).get("nr_descendants")).toBe(0);
    expect(() => parseKeyed(recorded("cgroup-v2-root/cpu.stat.local"))).toThrow("empty");
    // a kernel with CONFIG_SCHED_CORE (Ubuntu's) adds a dotted key to every cpu.stat
    const coreSched = "usage_usec 100\nuser_usec 60\nsystem_usec 40\ncore_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 500\n";
    expect(parseKeyed(coreSched).get("core_sched.force_idle_usec")).toBe(0);
    expect(parseKeyed(coreSched).get("nr_throttled")).toBe(2);
  });

  test("single values: usage, the v1 'no limit', v2 max", () => {
    expect(parseValue(recorded("cgroup-v1-memory/memory.usage_in_bytes"))).toBe(0);
    expect(parseValue(recorded("cgroup-v1-memory/memory.limit_in_bytes"))).toBe(9223372036854771712);
    expect(parseValue("max\n")).toBe(Infinity);
    expect(() => parseValue("")).toThrow("not a number");
    expect(() => parseValue("-1")).toThrow("not a number");
  });
});

describe("property: every parser refuses bad input with an Error and never returns nonsense", () => {
  const parsers = { parsePsi, parseMeminfo, parseKeyed, parseValue } as const;
  const files = [
    "procfs/pressure/memory",
    "procfs/pressure/cpu",
    "local/pressure/io",
    "procfs/meminfo",
    "local/meminfo",
    "cgroup-v1-memory/memory.oom_control",
    "cgroup-v1-memory/memory.limit_in_bytes",
    "cgroup-v1-cpu.stat.throttled",
  ].map(recorded);

  /** The numbers in whatever a parser returned. */
  function numbers(value: unknown): number[] {
    if (typeof value === "number") return [value];
    if (value instanceof Map) return [...value.values()];
    return Object.values(value as object).flatMap(numbers);
  }

  const input = fc.oneof(
    fc.string(),
    fc.string({ unit: fc.constantFrom(..."0123456789 .=:\nsomefulavgtkB") }),
    // the recordings, truncated anywhere
    fc.tuple(fc.constantFrom(...files), fc.nat()).map(([text, n]) => text.slice(0, n % (text.length + 1))),
  );

  for (const [name, parse] of Object.entries(parsers)) {
    test(name, () => {
      fc.assert(
        fc.property(input, (text) => {
          let value: unknown;
          try {
            value = parse(text);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
            return;
          }
          for (const n of numbers(value)) expect(n >= 0 && !Number.isNaN(n)).toBe(true);
        }),
        { numRuns: 1000 },
      );
    });
  }
});

describe("the scanning parsers agree with the regular expressions they replaced", () => {
  // parseKeyed and parseValue as they were (a split and a regular expression per line; a trim and
  // one for the value): the reference for any text.
  const keyedReference = (text: string): Map<string, number> => {
    const values = new Map<string, number>();
    for (const line of text.split("\n").filter((l) => l !== "")) {
      const m = /^([\w.]+) (\d+)$/.exec(line);
      if (!m) throw new Error(`not a "key value" line: ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)}`);
      values.set(m[1]!, Number(m[2]));
    }
    if (values.size === 0) throw new Error("empty");
    return values;
  };
  const valueReference = (text: string): number => {
    const value = text.trim();
    if (value === "max") return Infinity;
    if (!/^\d+$/.test(value)) throw new Error(`not a number: ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`);
    return Number(value);
  };
  const outcome = (parse: () => unknown) => {
    try {
      const value = parse();
      return { value: value instanceof Map ? [...value] : value };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  const text = fc.oneof(
    fc.string({ unit: fc.constantFrom(..."0123456789 ._-\n\r\tazAZ\u00a0é") }),
    fc.string({ unit: "binary" }),
    fc.constantFrom("usage_usec 1\nnr_periods 2\n", "core_sched.force_idle_usec 0\n", "a 1", "\n\na 1\n\n", "a  1\n", " a 1\n", "a 1 \n", "a 99999999999999999999\n"),
    fc.constantFrom("123\n", "max\n", "0\n", " 7 \n", "12", "\n", "", "-1\n", "1\r\n"),
  );

  test("parseKeyed: the same map, or the same error, for any text", () => {
    fc.assert(fc.property(text, (t) => expect(outcome(() => parseKeyed(t))).toEqual(outcome(() => keyedReference(t)))), { numRuns: 3000 });
  });

  test("parseValue: the same number, or the same error, for any text", () => {
    fc.assert(fc.property(text, (t) => expect(outcome(() => parseValue(t))).toEqual(outcome(() => valueReference(t)))), { numRuns: 3000 });
  });
});
