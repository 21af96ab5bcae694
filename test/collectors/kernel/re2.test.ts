// Rule patterns: Go RE2 syntax and meaning, matched up to the end of the text
// as node-problem-detector does, in linear time.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { EndAnchoredPattern } from "../../../src/collectors/kernel/re2.ts";
import { compileRuleFile, RuleMatcher } from "../../../src/collectors/kernel/rules.ts";
import kernelMonitor from "../../../src/collectors/kernel/rules/kernel-monitor.json";
import readonlyMonitor from "../../../src/collectors/kernel/rules/readonly-monitor.json";

/** Whether `pattern` matches the whole of `text`: the leftmost match ending at the end starts at 0. */
function matchesWhole(pattern: string, text: string): boolean {
  return new EndAnchoredPattern(pattern).matchAtEnd(text) === 0;
}

describe("rule patterns", () => {
  test.each([
    // [RE2 pattern, strings it matches whole, strings it does not]
    ["a.c", ["abc", "a\rc", "a\u2028c"], ["a\nc"]],
    ["(?s)a.c", ["a\nc"], []],
    ["\\Qa.b*\\E", ["a.b*"], ["axb", "a.bb"]],
    ["\\Qa.b*", ["a.b*"], ["axb"]],
    ["[]a]+", ["]a]"], ["b"]],
    ["[^]a]", ["b"], ["]", "a"]],
    ["[[:digit:]x]+", ["12x"], ["a"]],
    ["[[:^alpha:]]+", ["12"], ["a"]],
    ["x{,2}", ["x{,2}"], ["xx"]],
    ["a{2,3}", ["aa", "aaa"], ["a", "aaaa"]],
    ["\\x41\\x{42}\\101", ["ABA"], []],
    ["(?i)abc", ["ABC", "abc"], ["abd"]],
    ["a(?i:b)c", ["aBc"], ["ABC", "abC"]],
    ["a(?i)bc", ["aBC"], ["ABC"]],
    ["(?i)a(?-i:b)", ["Ab"], ["AB"]],
    ["(?U)a+?", ["aaa"], []],
    ["\\pL+", ["héllo"], ["1"]],
    ["\\p{Greek}+", ["αβ"], ["ab"]],
    ["\\p{^Greek}", ["a"], ["α"]],
    ["\\PL", ["1"], ["a"]],
    ["a\\-b\\:c\\#d", ["a-b:c#d"], []],
    ["\\d+\\s\\w", ["12 a"], ["12a"]],
    ["(?P<pid>\\d+)|(?<name>x)", ["12", "x"], ["y"]],
    ["a\\nb", ["a\nb"], ["ab"]],
    ["task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.", ["task umount.aufs:21568 blocked for more than 120 seconds."], ["task x:1 blocked for more than 120 seconds"]],
  ] as Array<[string, string[], string[]]>)("%p", (pattern, yes, no) => {
    for (const s of yes) expect({ s, whole: matchesWhole(pattern, s) }).toEqual({ s, whole: true });
    for (const s of no) expect({ s, whole: matchesWhole(pattern, s) }).toEqual({ s, whole: false });
  });

  test("a match must reach the end of the text; the leftmost such match is found", () => {
    const p = new EndAnchoredPattern("b+");
    expect(p.matchAtEnd("abbb")).toBe(1);
    expect(p.matchAtEnd("abbba")).toBe(-1);
    // a|b, not a|(b\z): the whole pattern is anchored
    expect(new EndAnchoredPattern("a|b").matchAtEnd("xa")).toBe(1);
    expect(new EndAnchoredPattern("a|b").matchAtEnd("ax")).toBe(-1);
    // indexes count UTF-16 code units, as the line texts do
    expect(new EndAnchoredPattern("x").matchAtEnd("😀éx")).toBe(3);
  });

  test("^ and $ are start and end of the text, or of a line under (?m)", () => {
    const text = "x\nfoo\ny";
    expect(new EndAnchoredPattern("^foo$\\n.").matchAtEnd(text)).toBe(-1);
    expect(new EndAnchoredPattern("(?m)^foo$\\n.").matchAtEnd(text)).toBe(2);
    expect(new EndAnchoredPattern("\\Ax\\n(?s:.*)").matchAtEnd(text)).toBe(0);
    expect(new EndAnchoredPattern("\\Afoo(?s:.*)").matchAtEnd(text)).toBe(-1);
    // Go's (?m) knows "\n" only
    expect(new EndAnchoredPattern("(?m)^b").matchAtEnd("a\rb")).toBe(-1);
  });

  test.each([
    ["(?=a)", "(?="],
    ["(?!a)", "(?!"],
    ["(?<=a)b", "(?<="],
    ["(?<!a)b", "(?<!"],
    ["(a)\\1", "invalid escape sequence: `\\1`"],
    ["\\8", "invalid escape sequence"],
    ["\\q", "invalid escape sequence"],
    ["[[:nope:]]", "invalid character class range"],
    ["(a", "missing closing )"],
    ["a)", "unexpected )"],
    ["[a", "missing closing ]"],
    ["[z-a]", "invalid character class range"],
    ["a{1001}", "invalid repeat count"],
    ["a**", "invalid nested repetition operator"],
    ["a\\", "trailing backslash"],
    ["(?i-)a", "(?i-)"],
  ])("rejects %p, naming the problem (%s)", (pattern, why) => {
    expect(() => new EndAnchoredPattern(pattern)).toThrow(why);
  });

  // CPU time, not wall time: on a busy machine the test may wait for a core, and only the engine's own work counts.
  const cpuMs = (work: () => void): number => {
    const before = process.cpuUsage();
    work();
    const { user, system } = process.cpuUsage(before);
    return (user + system) / 1000;
  };

  test("a catastrophic pattern for a backtracking engine, (a+)+$ on 30 a's and a b, returns within 50 ms", () => {
    const pattern = new EndAnchoredPattern("(a+)+$");
    const text = `${"a".repeat(30)}b`;
    expect(cpuMs(() => expect(pattern.matchAtEnd(text)).toBe(-1))).toBeLessThan(50);

    // The same through a rule file, on every line of a full buffer.
    const set = compileRuleFile({ bufferSize: 10, rules: [{ type: "temporary", reason: "Slow", pattern: "(a+)+$" }] }, "slow.json").set!;
    const matcher = new RuleMatcher<number>(set);
    expect(cpuMs(() => {
      for (let i = 0; i < 10; i++) expect(matcher.push(i, text)).toEqual([]);
    })).toBeLessThan(50);
  });

  test("the literal every match starts with is known, so lines without it skip the engine", () => {
    const rules = [kernelMonitor, readonlyMonitor].flatMap((f) => compileRuleFile(f, "built-in").set!.rules);
    expect(Object.fromEntries(rules.map((r) => [r.pattern, r.matcher.prefix]))).toMatchObject({
      "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.": "task ",
      "EXT4-fs error .*": "EXT4-fs error ",
      "divide error: 0000 \\[#\\d+\\] SMP": "divide error: 0000 [#",
      ".*\\[Hardware Error\\]: event severity: fatal$": "",
    });
    expect(new EndAnchoredPattern("(?i)task").prefix).toBe("");
    const withPrefix = new EndAnchoredPattern("task \\d+");
    expect(withPrefix.matchAtEnd("no such word 12")).toBe(-1);
    expect(withPrefix.matchAtEnd("a task 12")).toBe(2);
  });

  test("a pattern whose matches cannot hold a line break nor need the text's start is matched within the last line: every built-in one", () => {
    const builtins = [kernelMonitor, readonlyMonitor].flatMap((f) => f.rules.map((r) => r.pattern));
    for (const pattern of builtins) expect({ pattern, within: new EndAnchoredPattern(pattern).withinLastLine }).toEqual({ pattern, within: true });
    const within = ["(?m)^foo", "foo\\Sbar", "a.c", "\\bword$", "[a-z]+"];
    const across = ["a\\nb", "^foo", "\\Afoo", "foo\\s+bar", "[^x]+", "(?s)a.c", "\\W", "[[:space:]]", "a\\x0ab", "(?i)a[\\x00-\\x{10}]"];
    for (const p of within) expect({ p, within: new EndAnchoredPattern(p).withinLastLine }).toEqual({ p, within: true });
    for (const p of across) expect({ p, within: new EndAnchoredPattern(p).withinLastLine }).toEqual({ p, within: false });
  });

  test("property: a pattern matched within the last line finds what it finds on the whole window, at the same place", () => {
    const patterns = ["(?m)^fo+", "o+ ba?r", "\\bbar$", ".*\\[x\\]: y$", "f.o", "\\Bo", "[a-z]+ \\d"].map((p) => new EndAnchoredPattern(p));
    for (const p of patterns) expect(p.withinLastLine).toBe(true);
    const line = fc.array(fc.constantFrom("f", "o", "b", "a", "r", " ", "1", "[x]: y", "\r"), { maxLength: 12 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), (lines) => {
        const window = lines.join("\n");
        const last = lines.at(-1)!;
        const offset = window.length - last.length;
        for (const p of patterns) {
          const inWindow = p.matchAtEnd(window);
          const inLine = p.matchAtEnd(last);
          expect(inLine < 0 ? -1 : inLine + offset).toBe(inWindow);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("every pattern of node-problem-detector's configs compiles, journald ones included", () => {
    const patterns = [
      ...[kernelMonitor, readonlyMonitor].flatMap((f) => f.rules.map((r) => r.pattern)),
      // from config/docker-monitor.json and systemd-monitor.json (same NPD commit)
      "Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/(.+) /var/lib/docker/image/(.+): directory not empty.*",
      "returned error: readlink /var/lib/docker/overlay2.*: invalid argument.*",
      "Started (Kubernetes kubelet|kubelet.service|kubelet.service - Kubernetes kubelet|kubelet.service - .*).",
    ];
    for (const pattern of patterns) expect(new EndAnchoredPattern(pattern).matchAtEnd("x")).toBe(-1);
  });

  test("property: where RE2 and JavaScript syntax agree, the match found is the one a JavaScript RegExp finds", () => {
    // Patterns over a, b, "." (neither engine's "." matches "\n"), classes, groups, alternation, repetition and ^ $.
    const { pattern } = fc.letrec<{ pattern: string; atom: string }>((tie) => ({
      atom: fc.oneof(
        // Two levels of groups at most: the reference, a backtracking RegExp, is exponential in nested repetition.
        { depthSize: "small", withCrossShrink: true, maxDepth: 2 },
        fc.constantFrom("a", "b", ".", "[ab]", "[^a]", "\\n", "^", "$"),
        tie("pattern").map((p) => `(${p})`),
      ),
      pattern: fc
        .array(
          fc.tuple(tie("atom"), fc.constantFrom("", "", "*", "+", "?", "{1,2}", "*?")).map(([atom, q]) => (atom === "^" || atom === "$" ? atom : atom + q)),
          { minLength: 1, maxLength: 4 },
        )
        .chain((parts) => fc.boolean().map((alt) => (alt && parts.length > 1 ? `${parts[0]}|${parts.slice(1).join("")}` : parts.join("")))),
    }));
    const text = fc.string({ unit: fc.constantFrom("a", "b", "\n"), maxLength: 12 });
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        const js = new RegExp(`(?:${p})$`).exec(t);
        expect(new EndAnchoredPattern(p).matchAtEnd(t)).toBe(js ? js.index : -1);
      }),
      { numRuns: 1000 },
    );
  });

  test("property: any string is either refused with an Error or compiled into a pattern that can be matched", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(..."ab(?:)[]^$\\{},*+|.-PpQEdsxz0179<>=!im", "\n") }),
        fc.string({ unit: fc.constantFrom("a", "b", "\n", ")", "\\"), maxLength: 8 }),
        (p, t) => {
          let compiled: EndAnchoredPattern;
          try {
            compiled = new EndAnchoredPattern(p);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
            expect((err as Error).message).not.toBe("");
            return;
          }
          const start = compiled.matchAtEnd(t);
          expect(start).toBeGreaterThanOrEqual(-1);
          expect(start).toBeLessThanOrEqual(t.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
