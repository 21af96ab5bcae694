import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { translateRe2 } from "../../../src/collectors/kernel/re2.ts";
import { compileRuleFile } from "../../../src/collectors/kernel/rules.ts";
import kernelMonitor from "../../../src/collectors/kernel/rules/kernel-monitor.json";
import readonlyMonitor from "../../../src/collectors/kernel/rules/readonly-monitor.json";

/** The translation as a search (unanchored), as RE2's FindString uses it. */
function search(pattern: string): RegExp {
  return new RegExp(translateRe2(pattern).source, "u");
}

/** The translation as a whole-string match. */
function whole(pattern: string): RegExp {
  return new RegExp(`^(?:${translateRe2(pattern).source})$`, "u");
}

describe("Go RE2 to JavaScript", () => {
  test.each([
    // [RE2 pattern, strings it matches whole, strings it does not]
    ["a.c", ["abc", "a\rc"], ["a\nc"]],
    ["(?s)a.c", ["a\nc"], []],
    ["\\Qa.b*\\E", ["a.b*"], ["axb", "a.bb"]],
    ["[]a]+", ["]a]"], ["b"]],
    ["[^]a]", ["b"], ["]", "a"]],
    ["[[:digit:]x]+", ["12x"], ["a"]],
    ["[[:alpha:]_-]+", ["a_b-C"], ["1"]],
    ["x{,2}", ["x{,2}"], ["xx"]],
    ["a{2,3}", ["aa", "aaa"], ["a", "aaaa"]],
    ["\\x41\\x{42}\\101\\0", ["ABA\0"], []],
    ["(?i)abc", ["ABC", "abc"], ["abd"]],
    ["a(?i:b)c", ["aBc"], ["ABC", "abC"]],
    ["((?i)b|c)d", ["Bd", "Cd"], ["BD"]],
    ["(?i)a(?-i:b)", ["Ab"], ["AB"]],
    ["\\pL+", ["héllo"], ["1"]],
    ["\\p{Greek}+", ["αβ"], ["ab"]],
    ["\\p{^Greek}", ["a"], ["α"]],
    ["\\PL", ["1"], ["a"]],
    ["a\\-b\\:c\\#d", ["a-b:c#d"], []],
    ["[\\-\\]]+", ["-]"], ["a"]],
    ["[a-]+", ["a-"], ["b"]],
    ["\\d+\\s\\w", ["12 a"], ["12a"]],
    ["(?P<pid>\\d+)|(?<name>x)", ["12", "x"], ["y"]],
    ["a\\nb", ["a\nb"], ["ab"]],
    ["task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.", ["task umount.aufs:21568 blocked for more than 120 seconds."], ["task x:1 blocked for more than 120 seconds"]],
  ] as Array<[string, string[], string[]]>)("%p", (pattern, yes, no) => {
    const re = whole(pattern);
    for (const s of yes) expect(re.test(s)).toBe(true);
    for (const s of no) expect(re.test(s)).toBe(false);
  });

  test("^ and $ are start and end of the text, or of a line under (?m)", () => {
    const text = "x\nfoo\ny";
    expect(search("^foo$").test(text)).toBe(false);
    expect(search("(?m)^foo$").test(text)).toBe(true);
    expect(search("\\Ax").test(text)).toBe(true);
    expect(search("\\Afoo").test(text)).toBe(false);
    expect(search("y\\z").test(text)).toBe(true);
    expect(search("foo\\z").test(text)).toBe(false);
    // Go's (?m) knows "\n" only; JavaScript's m flag would also split at "\r".
    expect(search("(?m)^b").test("a\rb")).toBe(false);
  });

  test.each([
    ["(?=a)", "lookaround"],
    ["(?!a)", "lookaround"],
    ["(?<=a)b", "lookaround"],
    ["(?<!a)b", "lookaround"],
    ["(a)\\1", "backreferences"],
    ["a(?i)b", "middle of a group"],
    ["(?U)a+", "(?U)"],
    ["\\8", "invalid escape"],
    ["\\q", "invalid escape"],
    ["[[:^alpha:]]", "negated POSIX"],
    ["[[:nope:]]", "unknown class"],
    ["(a", "missing )"],
    ["a)", "unexpected )"],
    ["[a", "missing ]"],
    ["[z-a]", "invalid class range"],
    ["a{1001}", "repetition over 1000"],
    ["a\\", "trailing backslash"],
    ["(?i-)a", "invalid group"],
  ])("rejects %p (%s)", (pattern, why) => {
    expect(() => translateRe2(pattern)).toThrow(why);
  });

  test.each([
    ["foo", false, false],
    ["a\\nb", true, false],
    ["a\nb", true, false],
    ["[^x]", true, false],
    ["[^\\n]+", false, false],
    ["[^\\s]", false, false],
    ["[^\\S]", true, false],
    ["\\s", true, false],
    ["\\S+", false, false],
    ["\\D", true, false],
    ["[\\d\\w]", false, false],
    ["(?s).", true, false],
    [".*", false, false],
    ["[\\x00-\\x1f]", true, false],
    ["[[:space:]]", true, false],
    ["[[:print:]]", false, false],
    ["\\pL", false, false],
    ["\\PL", true, false],
    ["\\p{Cc}", true, false],
    ["\\x0a", true, false],
    ["^x", false, true],
    ["\\Ax", false, true],
    ["(?m)^x", false, false],
  ] as Array<[string, boolean, boolean]>)("%p: crosses lines %p, anchors at the text start %p", (pattern, crosses, anchors) => {
    const t = translateRe2(pattern);
    expect(t.crossesLines).toBe(crosses);
    expect(t.anchorsText).toBe(anchors);
  });

  test("every pattern of node-problem-detector's configs translates, journald ones included", () => {
    const patterns = [
      ...[kernelMonitor, readonlyMonitor].flatMap((f) => f.rules.map((r) => r.pattern)),
      // from config/docker-monitor.json and systemd-monitor.json (same NPD commit)
      "Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/(.+) /var/lib/docker/image/(.+): directory not empty.*",
      "returned error: readlink /var/lib/docker/overlay2.*: invalid argument.*",
      "Started (Kubernetes kubelet|kubelet.service|kubelet.service - Kubernetes kubelet|kubelet.service - .*).",
    ];
    for (const pattern of patterns) expect(() => new RegExp(translateRe2(pattern).source, "u")).not.toThrow();
  });

  test("property: a rule that cannot span lines matches the newest line alone exactly as it matches the window", () => {
    const rules = [kernelMonitor, readonlyMonitor].flatMap((f) => compileRuleFile(f, "built-in").set!.rules).filter((r) => r.newestLineOnly);
    expect(rules.length).toBe(15);
    const fragment = fc.constantFrom(
      "task ",
      "docker",
      ":",
      "12",
      " blocked for more than ",
      " seconds.",
      "EXT4-fs error ",
      "XFS ",
      " Shutting down filesystem",
      "[Hardware Error]: event severity: fatal",
      "Remounting filesystem read-only",
      "Killed process 1 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB",
      " ",
      "x",
      "\t",
    );
    const line = fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 10 }), (lines) => {
        const newest = lines.at(-1)!;
        const window = lines.join("\n");
        for (const rule of rules) {
          const alone = rule.regex.exec(newest);
          const inWindow = rule.regex.exec(window);
          expect(alone === null).toBe(inWindow === null);
          if (alone && inWindow) expect(inWindow.index - (window.length - newest.length)).toBe(alone.index);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("property: any string either translates to a RegExp source or is refused with an Error", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."ab(?:)[]^$\\{},*+|.-PpQEdsxz0179<>=!im", "\n") }), (pattern) => {
        try {
          translateRe2(pattern);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
