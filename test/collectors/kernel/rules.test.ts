import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileRuleFile, loadRuleFile, RuleMatcher, type RuleSet } from "../../../src/collectors/kernel/rules.ts";
import kernelMonitor from "../../../src/collectors/kernel/rules/kernel-monitor.json";
import readonlyMonitor from "../../../src/collectors/kernel/rules/readonly-monitor.json";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { messages, PROBLEMS } from "./helpers.ts";

const dir = makeTempDir("rules");
afterAll(() => removeTempDir(dir));

function builtIn(): RuleSet[] {
  return [compileRuleFile(kernelMonitor, "kernel-monitor.json"), compileRuleFile(readonlyMonitor, "readonly-monitor.json")].map((f) => {
    expect(f.problems).toEqual([]);
    return f.set!;
  });
}

/** Feeds lines through matchers of the sets, as the collector does (trimmed), and returns the reasons matched. */
function reasons(sets: RuleSet[], lines: string[]): string[] {
  const matchers = sets.map((set) => new RuleMatcher<string>(set));
  return lines.flatMap((line) => matchers.flatMap((m) => m.push(line, line.trim()).map((match) => match.rule.reason)));
}

describe("node-problem-detector rules", () => {
  test("the built-in rule files compile whole", () => {
    const [kernel, readonly] = builtIn();
    expect(kernel!.source).toBe("kernel-monitor");
    expect(kernel!.bufferSize).toBe(10);
    expect(kernel!.rules.length).toBe(14);
    expect(readonly!.rules.map((r) => [r.type, r.condition, r.reason])).toEqual([["permanent", "ReadonlyFilesystem", "FilesystemIsReadOnly"]]);
  });

  // The reason each of NPD's problem logs must raise, read off its file name; au_opts_verify is
  // an aufs notice NPD's generator uses as harmless noise: it raises nothing.
  const EXPECTED: Record<string, string[]> = {
    au_opts_verify: [],
    aufs_umount_hung: ["TaskHung"],
    divide_zero: ["KernelOops"],
    null_pointer: ["KernelOops"],
    oom_kill: ["OOMKilling"],
  };

  test("the test data holds exactly the problem files expected", () => {
    expect(readdirSync(PROBLEMS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  test.each(Object.entries(EXPECTED))("npd problem %p raises %p", (file, expected) => {
    expect(reasons(builtIn(), messages(join(PROBLEMS, file)))).toEqual(expected);
  });

  test("a message is trimmed as NPD trims it: 'divide error: 0000 [#1] SMP ' ends in a blank", () => {
    const [kernel] = builtIn();
    const matcher = new RuleMatcher<string>(kernel!);
    expect(matcher.push("x", "divide error: 0000 [#1] SMP ").length).toBe(0);
    expect(matcher.push("x", "divide error: 0000 [#1] SMP").map((m) => m.rule.reason)).toEqual(["KernelOops"]);
  });

  test("a single-line pattern must match up to the end of the newest line", () => {
    const [kernel] = builtIn();
    expect(reasons([kernel!], ["EXT4-fs error (device sda1): bad block", "something else"])).toEqual(["Ext4Error"]);
    expect(reasons([kernel!], ["ok: task x:1 blocked for more than 120 seconds. (not really)"])).toEqual([]);
  });

  test("a multi-line pattern matches consecutive lines within the buffer; the match names them all", () => {
    const set = compileRuleFile(
      {
        plugin: "kmsg",
        source: "hung-with-taint",
        bufferSize: 3,
        rules: [{ type: "temporary", reason: "TaintedHang", pattern: "INFO: task \\S+ blocked for more than \\d+ seconds\\.\\nTainted: .*" }],
      },
      "test",
    ).set!;
    const lines = messages(join(PROBLEMS, "aufs_umount_hung")).map((l) => l.trim());
    const matcher = new RuleMatcher<number>(set);
    const matches = lines.flatMap((line, i) => matcher.push(i, line));
    expect(matches.length).toBe(1);
    expect(matches[0]!.lines).toEqual([0, 1]);
    expect(matches[0]!.message).toBe(`${lines[0]}\n${lines[1]}`);

    // With room for one line only, a two-line pattern can never match.
    const small = new RuleMatcher<number>({ ...set, bufferSize: 1 });
    expect(lines.flatMap((line, i) => small.push(i, line))).toEqual([]);
  });

  test("a permanent rule reports when it sets its condition or changes its reason, not again", () => {
    const [kernel, readonly] = builtIn();
    const lines = [
      "EXT4-fs (sda1): Remounting filesystem read-only",
      "EXT4-fs (sda1): Remounting filesystem read-only",
      "INFO: task docker:1234 blocked for more than 120 seconds.",
      "INFO: task docker:1234 blocked for more than 120 seconds.",
    ];
    // TaskHung is temporary (every time); DockerHung sets KernelDeadlock once.
    expect(reasons([kernel!, readonly!], lines)).toEqual(["FilesystemIsReadOnly", "TaskHung", "DockerHung", "TaskHung"]);
  });

  test("what is wrong with a rule file is reported; its good rules still apply", async () => {
    const file = compileRuleFile(
      {
        plugin: "kmsg",
        rules: [
          { type: "temporary", reason: "Good", pattern: "good" },
          { type: "temporary", reason: "Lookahead", pattern: "(?=x)" },
          { type: "temporary", reason: "NestedRepeat", pattern: "a**" },
          { type: "permanent", reason: "NoCondition", pattern: "x" },
        ],
      },
      "/etc/npd/custom.json",
    );
    expect(file.set!.source).toBe("custom");
    expect(file.set!.rules.map((r) => r.reason)).toEqual(["Good"]);
    expect(file.problems.length).toBe(3);
    expect(file.problems[0]).toContain("rule 1 (Lookahead): error parsing regexp: invalid or unsupported Perl syntax: `(?=`");
    expect(file.problems[1]).toContain("rule 2 (NestedRepeat)");
    expect(file.problems[2]).toContain("needs a condition");

    expect(compileRuleFile({ plugin: "journald", rules: [] }, "docker-monitor.json").problems[0]).toContain('plugin "journald"');
    expect(compileRuleFile({ rules: [{ type: "sometimes", reason: "x", pattern: "x" }] }, "bad.json").problems[0]).toContain("bad.json");
    expect(compileRuleFile("not an object", "bad.json").set).toBeUndefined();

    writeFileSync(join(dir, "broken.json"), "{ not json");
    expect((await loadRuleFile(join(dir, "broken.json"))).problems[0]).toContain("not JSON");
    expect((await loadRuleFile(join(dir, "missing.json"))).problems[0]).toContain("does not exist");
    writeFileSync(join(dir, "ok.json"), JSON.stringify(readonlyMonitor));
    expect((await loadRuleFile(join(dir, "ok.json"))).set!.rules.length).toBe(1);
  });
});
