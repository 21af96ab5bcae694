// Every kind of syntax error the yaml package reports, located where the
// problem starts: the line and column an editor should jump to.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { ConfigError } from "../../src/config/errors.ts";
import { parseConfigYaml, YAML_OPTIONS } from "../../src/config/parse.ts";
import { REPO } from "../helpers/agent.ts";

/** The yaml package's error codes, read from its type declarations, so a new code in an update shows up here. */
function yamlErrorCodes(): string[] {
  const declarations = readFileSync(join(REPO, "node_modules/yaml/dist/errors.d.ts"), "utf8");
  const union = /export type ErrorCode = ([^;]+);/.exec(declarations)![1]!;
  return [...union.matchAll(/'([A-Z_0-9]+)'/g)].map((m) => m[1]!).sort();
}

/** The codes the yaml package reports for `text`, parsed as the config loader parses it. */
function codesOf(text: string): string[] {
  const doc = parseDocument(text, { lineCounter: new LineCounter(), ...YAML_OPTIONS });
  return [...doc.errors, ...doc.warnings].map((e) => e.code);
}

function issuesOf(text: string): Array<{ line: number; column: number; message: string }> {
  try {
    parseConfigYaml(text, "test.yaml", {});
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(({ line, column, message }) => ({ line, column, message }));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

// [code, the YAML, where the problem starts: line, column, what the message says]
const CASES: Array<[string, string, number, number, string]> = [
  ["ALIAS_PROPS", "a: &x 1\nb: !!str *x\n", 2, 10, "alias node must not specify any properties"],
  ["BAD_ALIAS", "a: 1\nb: * \n", 2, 4, "Alias cannot be an empty string"],
  ["BAD_DIRECTIVE", "%FOO\n---\na: 1\n", 1, 1, "Unknown directive"],
  ["BAD_DQ_ESCAPE", 'a: 1\nb: "x\\q"\n', 2, 6, "Invalid escape sequence"],
  ["BAD_INDENT", "a:\n  b: 1\n c: 2\n", 3, 1, "same column"],
  ["BAD_PROP_ORDER", "a: 1\n? &x\n: 1\n&y ? b : c\n", 4, 4, "Anchors and tags must be after the ? indicator"],
  ["BAD_SCALAR_START", "a: 1\nb: @x\n", 2, 4, "reserved character @"],
  ["BLOCK_AS_IMPLICIT_KEY", "a: 1\nb: c: d\n", 2, 4, "Nested mappings are not allowed in compact mappings"],
  ["BLOCK_IN_FLOW", "a: 1\nb: [ - x ]\n", 2, 6, "on a single line"],
  ["KEY_OVER_1024_CHARS", `a: 1\n${"k".repeat(1100)}: 1\n`, 2, 1, "at most 1024 chars"],
  ["MISSING_CHAR", 'a: 1\nb: [ "x" "y" ]\n', 2, 10, "Missing , or :"],
  ["MULTILINE_IMPLICIT_KEY", 'a: 1\n"b\n c": 2\n', 2, 1, "Implicit keys need to be on a single line"],
  ["MULTIPLE_ANCHORS", "a: 1\nb: &x &y 1\n", 2, 7, "at most one anchor"],
  ["MULTIPLE_DOCS", "a: 1\n---\nb: 2\n", 2, 1, "multiple documents"],
  ["MULTIPLE_TAGS", "a: 1\nb: !!str !!str 1\n", 2, 10, "at most one tag"],
  ["TAB_AS_INDENT", "a:\n\tb: 1\n", 2, 1, "Tabs are not allowed as indentation"],
  ["TAG_RESOLVE_FAILED", "a: 1\nb: !!binary x\n", 2, 4, "Unresolved tag"],
  ["UNEXPECTED_TOKEN", "a: 1\n]\n", 2, 1, "Unexpected flow-seq-end token"],
];

/** Codes no config can produce, and why. */
const NOT_PRODUCED: Record<string, string> = {
  IMPOSSIBLE: "an internal inconsistency of the yaml package, not of the text",
  NON_STRING_KEY: "only with the stringKeys option, which the loader does not set (the walker refuses such keys itself)",
  BAD_COLLECTION_TYPE: "only for custom collection tags; with resolveKnownTags: false a tag fails as TAG_RESOLVE_FAILED",
  DUPLICATE_KEY: "only with uniqueKeys, which the loader turns off (it is quadratic); the walker reports duplicate keys itself (tested in load.test.ts)",
  RESOURCE_EXHAUSTION: "only from toJS(); the loader walks the document itself and limits alias expansions (tested below)",
};

describe("YAML syntax errors", () => {
  test("every code the yaml package has is covered here, or said why no config can produce it", () => {
    expect([...CASES.map(([code]) => code), ...Object.keys(NOT_PRODUCED)].sort()).toEqual(yamlErrorCodes());
  });

  test.each(CASES)("%s: reported at the line where the problem is", (code, text, line, column, says) => {
    expect(codesOf(text)).toContain(code);
    const issues = issuesOf(text);
    expect(issues[0]).toEqual({ line, column, message: expect.stringContaining(says) });
    for (const issue of issues) expect(issue.line).toBe(line);
  });

  test.each([
    ["a double-quoted string", 'a: 1\nb: "abc\nc: 2\nd: 3\n', 2, 4, 'this "quoted string is never closed'],
    ["a single-quoted string", "a: 1\nb: 'abc\nc: 2\n", 2, 4, "this 'quoted string is never closed"],
    ["a quoted key", 'a: 1\n"b: 2\nc: 3\n', 2, 1, 'this "quoted string is never closed'],
    ["a quoted string in a list", "a: [1, \"x\n  ]\nb: 2\n", 1, 8, 'this "quoted string is never closed'],
    ["a whole file that is one quoted string", '"a: 1\nb: 2\n', 1, 1, 'this "quoted string is never closed'],
    ["a flow list", "a: 1\nb: [1, 2\nc: 3\nd: 4\n", 2, 4, "this [ list is never closed"],
    ["a flow mapping", "a: 1\nb: { x: 1\nc: 3\n", 2, 4, "this { mapping is never closed"],
    ["a flow mapping inside a flow list", "a:\n  b: [1, {c: 2]\n  d: 3\n", 2, 10, "this { mapping is never closed"],
  ])("%s left open is reported where it opens", (_what, text, line, column, says) => {
    expect(issuesOf(text)).toEqual([{ line, column, message: expect.stringContaining(`invalid YAML: ${says}`) }]);
  });

  test("an error before an unclosed string stays where it is", () => {
    expect(issuesOf('a:\n  b: 1\n c: "x\n').map((i) => [i.line, i.column])).toEqual([[3, 1], [3, 5]]);
  });

  test("too many alias expansions: at the alias where the limit is passed", () => {
    const text = "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
    // a: no expansions, b: 10, c: 110 (120 so far); each *c of d expands 111: the 8th passes 1000.
    expect(issuesOf(text)).toEqual([{ line: 4, column: 26, message: "more than 1000 alias expansions" }]);
  });
});
