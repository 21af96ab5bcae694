// RouteTable: globs, severity ranges, first match, drop, no rules, dedupe,
// and the per-type cache (same answers as an uncached reference, bounded).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { SEVERITIES } from "../../src/event/event.ts";
import { globMatcher } from "../../src/routing/glob.ts";
import { MAX_CACHED_TYPES, RouteTable, type RouteDecision } from "../../src/routing/routes.ts";
import type { RouteRule } from "../../src/routing/schema.ts";

/** Destinations as the caller's objects: resolve is called once per rule and name. */
function table(rules: RouteRule[] | undefined) {
  const resolved: string[] = [];
  const routes = new RouteTable(rules, (name) => {
    resolved.push(name);
    return { name };
  });
  return { routes, resolved };
}

/** A decision as names: "to:a,b (rule)", "drop (rule)", "unrouted". */
function shown(decision: RouteDecision<{ name: string }>): string {
  if (decision.kind === "unrouted") return "unrouted";
  if (decision.kind === "drop") return `drop (${decision.rule})`;
  return `to:${decision.to.map((d) => d.name).join(",")} (${decision.rule})`;
}

describe("globs", () => {
  const matches = (glob: string, value: string) => globMatcher([glob])(value);

  test("* is any run of characters, ? one, the rest literal", () => {
    expect(matches("kernel", "kernel")).toBe(true);
    expect(matches("kernel", "kernel/a")).toBe(false);
    expect(matches("kernel", "kerne")).toBe(false);
    expect(matches("dns/*", "dns/a")).toBe(true);
    expect(matches("dns/*", "dns/")).toBe(true);
    expect(matches("dns/*", "dns")).toBe(false);
    expect(matches("kernel.*", "kernel.oom_kill")).toBe(true);
    expect(matches("kernel.*", "kernelXoom")).toBe(false); // "." is literal
    expect(matches("*", "")).toBe(true);
    expect(matches("*.crash_*", "kubelet.container.crash_loop")).toBe(true);
    expect(matches("dns/?", "dns/a")).toBe(true);
    expect(matches("dns/?", "dns/ab")).toBe(false);
    expect(matches("a+b(c)[d]{2}|^$\\", "a+b(c)[d]{2}|^$\\")).toBe(true);
    expect(matches("a+b", "aab")).toBe(false);
    expect(matches("?", "é")).toBe(true);
  });

  test("the items of a list are OR; an empty list matches nothing", () => {
    const m = globMatcher(["kernel", "dns/*"]);
    expect(["kernel", "dns/a", "dns/b", "kubelet"].map(m)).toEqual([true, true, true, false]);
    expect(globMatcher([])("anything")).toBe(false);
  });

  test("property: a glob matches exactly the strings a reference matcher says", () => {
    // Reference: recursive, character by character.
    const reference = (glob: string, s: string): boolean => {
      if (glob === "") return s === "";
      const [g, rest] = [glob[0], glob.slice(1)];
      if (g === "*") return reference(rest, s) || (s !== "" && reference(glob, s.slice(1)));
      if (s === "") return false;
      return (g === "?" || g === s[0]) && reference(rest, s.slice(1));
    };
    const chars = fc.constantFrom("a", "b", ".", "/", "*", "?", "+", "\\", "(", "[", "$");
    const glob = fc.string({ unit: chars, maxLength: 8 });
    const text = fc.string({ unit: fc.constantFrom("a", "b", ".", "/", "*", "?", "+", "\\", "(", "[", "$"), maxLength: 8 });
    fc.assert(fc.property(glob, text, (g, s) => matches(g, s) === reference(g, s)), { numRuns: 2000 });
  });
});

describe("RouteTable", () => {
  test("no rules (undefined or []): everything to default, one decision for all", () => {
    for (const rules of [undefined, []]) {
      const { routes, resolved } = table(rules);
      const a = routes.forCollector("kernel").decide("container.oom", "critical");
      const b = routes.forCollector("dns/x").decide("anything", "not-a-severity");
      expect(a).toEqual({ kind: "to", rule: "", to: [{ name: "default" }] });
      expect(b).toBe(a);
      expect(resolved).toEqual(["default"]);
    }
  });

  test("the issue's example: first match wins, drop, collectors by name or glob, types by glob", () => {
    const { routes } = table([
      { name: "drop-debug", match: { severity_below: "info" }, drop: true },
      { name: "problems", match: { collector: ["kernel", "kubelet", "dns/*"], type: ["container.oom", "kernel.*"], severity_at_least: "warning" }, to: ["default", "central"] },
      { name: "rest", to: ["default"] },
    ]);
    const kernel = routes.forCollector("kernel");
    expect(shown(kernel.decide("container.oom", "debug"))).toBe("drop (drop-debug)");
    expect(shown(kernel.decide("container.oom", "warning"))).toBe("to:default,central (problems)");
    expect(shown(kernel.decide("kernel.oom_kill", "critical"))).toBe("to:default,central (problems)");
    expect(shown(kernel.decide("kernel.oom_kill", "medium"))).toBe("to:default (rest)"); // below warning
    expect(shown(kernel.decide("network.tcp.retransmits", "error"))).toBe("to:default (rest)"); // other type
    expect(shown(routes.forCollector("dns/a").decide("kernel.x", "high"))).toBe("to:default,central (problems)");
    // `kernel` is a name, not a prefix: kernel/b is another instance
    expect(shown(routes.forCollector("kernel/b").decide("container.oom", "critical"))).toBe("to:default (rest)");
    expect(shown(routes.forCollector("synthetic").decide("container.oom", "critical"))).toBe("to:default (rest)");
  });

  test("severity ranges: at_least inclusive, below exclusive, in SEVERITIES order", () => {
    const { routes } = table([{ name: "mid", match: { severity_at_least: "low", severity_below: "high" }, to: ["default"] }]);
    const r = routes.forCollector("x");
    expect(SEVERITIES.filter((s) => r.decide("t", s).kind === "to")).toEqual(["low", "medium", "warning"]);
    // a severity outside the list is in no range
    expect(r.decide("t", "loud").kind).toBe("unrouted");
  });

  test("keys are AND: a rule needs its collector, type and severity all to match", () => {
    const { routes } = table([{ name: "r", match: { collector: ["kernel"], type: ["a"], severity_at_least: "error" }, to: ["default"] }]);
    expect(routes.forCollector("kernel").decide("a", "error").kind).toBe("to");
    expect(routes.forCollector("kernel").decide("b", "error").kind).toBe("unrouted");
    expect(routes.forCollector("kernel").decide("a", "high").kind).toBe("unrouted");
    expect(routes.forCollector("dns").decide("a", "error").kind).toBe("unrouted");
  });

  test("no rule matches: unrouted; a rule without match takes the rest, the rules after it are never tried", () => {
    const { routes } = table([
      { name: "a", match: { type: ["a"] }, drop: true },
      { name: "all", to: ["default"] },
      { name: "never", match: { type: ["b"] }, drop: true },
    ]);
    expect(shown(routes.forCollector("x").decide("b", "info"))).toBe("to:default (all)");
    const only = table([{ name: "a", match: { collector: ["kernel"] }, to: ["default"] }]).routes;
    expect(only.forCollector("dns").decide("x", "info")).toEqual({ kind: "unrouted" });
  });

  test("decisions are made once per rule; the same destination twice is delivered once", () => {
    const { routes, resolved } = table([
      { name: "twice", match: { type: ["a"] }, to: ["central", "default", "central"] },
      { name: "rest", to: ["default"] },
    ]);
    expect(resolved).toEqual(["central", "default", "default"]); // once per rule and distinct name
    const x = routes.forCollector("x");
    const first = x.decide("a", "info");
    expect(shown(first)).toBe("to:central,default (twice)");
    expect(x.decide("a", "error")).toBe(first);
    expect(routes.forCollector("y").decide("a", "debug")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  test("property: cached decisions are those of an uncached reference, however often asked", () => {
    const types = ["kernel.oom", "kernel.panic", "container.oom", "dns.query", "k8s.pod", "x"];
    const collectors = ["kernel", "kubelet", "dns/a", "dns/b", "synthetic"];
    const severities = [...SEVERITIES, "bogus"];
    const globs = (pool: string[]) => fc.array(fc.oneof(fc.constantFrom(...pool), fc.constantFrom("*", "kernel.*", "dns/*", "k*", "?ns/a", "*.oom")), { minLength: 1, maxLength: 3 });
    const rule = fc.record(
      {
        collector: globs(collectors),
        type: globs(types),
        severity_at_least: fc.constantFrom(...SEVERITIES),
        severity_below: fc.constantFrom(...SEVERITIES),
        drop: fc.boolean(),
        to: fc.array(fc.constantFrom("default", "central"), { minLength: 1, maxLength: 3 }),
      },
      { requiredKeys: ["drop", "to"] },
    );
    const reference = (rules: RouteRule[], instance: string, type: string, severity: string): string => {
      const rank = (s: string) => SEVERITIES.indexOf(s as never);
      for (const r of rules) {
        const m = r.match ?? {};
        if (m.collector && !m.collector.some((g) => globMatcher([g])(instance))) continue;
        if (m.type && !m.type.some((g) => globMatcher([g])(type))) continue;
        if (m.severity_at_least && !(rank(severity) >= rank(m.severity_at_least))) continue;
        if (m.severity_below && !(rank(severity) !== -1 && rank(severity) < rank(m.severity_below))) continue;
        return r.drop ? `drop (${r.name})` : `to:${[...new Set(r.to)].join(",")} (${r.name})`;
      }
      return "unrouted";
    };
    const event = fc.record({ instance: fc.constantFrom(...collectors), type: fc.constantFrom(...types), severity: fc.constantFrom(...severities) });
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 6 }), fc.array(event, { minLength: 1, maxLength: 40 }), (generated, events) => {
        const rules: RouteRule[] = generated.map(({ drop, to, ...match }, i) => ({
          name: `r${i}`,
          ...(Object.keys(match).length > 0 ? { match } : {}),
          ...(drop ? { drop: true as const } : { to }),
        }));
        const { routes } = table(rules);
        const byInstance = new Map(collectors.map((c) => [c, routes.forCollector(c)]));
        for (const e of [...events, ...events]) {
          const expected = rules.length === 0 ? "to:default ()" : reference(rules, e.instance, e.type, e.severity);
          expect(shown(byInstance.get(e.instance)!.decide(e.type, e.severity))).toBe(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("the cache is bounded: past MAX_CACHED_TYPES types it starts over, answers unchanged", () => {
    const { routes } = table([
      { name: "odd", match: { type: ["*1", "*3", "*5", "*7", "*9"] }, to: ["default"] },
      { name: "low", match: { severity_below: "warning" }, drop: true },
    ]);
    const r = routes.forCollector("ingest");
    let most = 0;
    for (let i = 0; i < MAX_CACHED_TYPES * 2 + 10; i++) {
      expect(r.decide(`t${i}`, "error").kind).toBe(i % 2 === 1 ? "to" : "unrouted");
      expect(r.decide(`t${i}`, "info").kind).toBe(i % 2 === 1 ? "to" : "drop");
      most = Math.max(most, r.cachedTypes);
    }
    expect(most).toBe(MAX_CACHED_TYPES);
    expect(r.cachedTypes).toBeLessThanOrEqual(MAX_CACHED_TYPES);
    expect(r.cachedTypes).toBeGreaterThan(0);
  });

  test("a collector its rules cannot distinguish gets one decision, nothing cached", () => {
    const { routes } = table([
      { name: "kernel-only", match: { collector: ["kernel"], type: ["a"] }, drop: true },
      { name: "dns", match: { collector: ["dns/*"] }, to: ["default"] },
    ]);
    const dns = routes.forCollector("dns/a");
    for (const t of ["a", "b", "c"]) expect(shown(dns.decide(t, "info"))).toBe("to:default (dns)");
    expect(dns.cachedTypes).toBe(0);
    const other = routes.forCollector("synthetic");
    expect(other.decide("a", "info").kind).toBe("unrouted");
    expect(other.cachedTypes).toBe(0);
  });
});

describe("destinationsOf (what `check` probes per destination)", () => {
  const names = (rules: RouteRule[] | undefined, instance: string) => new RouteTable(rules, (name) => name).destinationsOf(instance);

  test("no rules: default alone, for every instance", () => {
    expect(names(undefined, "kernel")).toEqual(["default"]);
    expect(names([], "dns/a")).toEqual(["default"]);
  });

  test("every destination of a rule the instance can meet, up to the first that takes all; drops and unmatched collectors add none", () => {
    const rules: RouteRule[] = [
      { name: "drop-debug", match: { severity_below: "info" }, drop: true },
      { name: "problems", match: { collector: ["kernel", "dns/*"], type: ["kernel.*"] }, to: ["default", "central"] },
      { name: "dns-all", match: { collector: ["dns/*"] }, to: ["regional"] },
      { name: "severe", match: { severity_at_least: "error" }, to: ["pager"] },
      { name: "rest", to: ["default"] },
    ];
    expect(names(rules, "kernel")).toEqual(["default", "central", "pager"]);
    // dns-all takes every dns event after problems: severe and rest are never reached
    expect(names(rules, "dns/a")).toEqual(["default", "central", "regional"]);
    expect(names(rules, "synthetic")).toEqual(["pager", "default"]);
    expect(names([{ name: "k", match: { collector: ["kernel"] }, to: ["central"] }], "synthetic")).toEqual([]);
  });
});
