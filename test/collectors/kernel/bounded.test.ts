// Every pattern applied to a kernel record costs time linear in its length:
// a file standing in for /dev/kmsg can hold forged records, and the
// collector shares the event loop with the whole agent.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { KernelCollector } from "../../../src/collectors/kernel/index.ts";
import { MAX_RECORD_BYTES, parseKmsgLine } from "../../../src/collectors/kernel/kmsg.ts";
import { OomTracker, parseSummary } from "../../../src/collectors/kernel/oom.ts";
import kernelMonitor from "../../../src/collectors/kernel/rules/kernel-monitor.json";
import readonlyMonitor from "../../../src/collectors/kernel/rules/readonly-monitor.json";
import { compileRuleFile, RuleMatcher } from "../../../src/collectors/kernel/rules.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { runOnce } from "../../helpers/collector-context.ts";
import { kernelConfig, TESTDATA } from "./helpers.ts";

/** The expression parseSummary replaces: the reference for what it must read, on texts short enough for it. */
const SUMMARY_REFERENCE = /^oom-kill:constraint=(\w+),.*?(?:,oom_memcg=(.*?)|,global_oom),task_memcg=(.*),task=(.*),pid=(\d+),uid=(\d+)$/;

function reference(message: string) {
  const m = SUMMARY_REFERENCE.exec(message);
  if (!m) return undefined;
  return { pid: Number(m[5]), summary: { constraint: m[1]!, memcg: m[3]!, uid: Number(m[6]), ...(m[2] !== undefined ? { oomMemcg: m[2] } : {}) } };
}

/** Milliseconds `f` takes, the least of a few runs (the machine is shared). */
function millis(f: () => void): number {
  let least = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    f();
    least = Math.min(least, performance.now() - started);
  }
  return least;
}

// Forged summaries: every field name the expression's wildcards can span, repeated, with no valid end.
const FORGED = [
  (n: number) => `oom-kill:constraint=X${",oom_memcg=,task_memcg=,task=".repeat(n / 30)}x`,
  (n: number) => `oom-kill:constraint=X${",global_oom,task_memcg=,task=,pid=1".repeat(n / 36)},uid=x`,
  (n: number) => `oom-kill:constraint=X,${",task=".repeat(n / 6)}`,
];

describe("the oom-kill summary", () => {
  test("reads as the expression it replaces, on real and scrambled summaries", () => {
    const real = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/burstable/podX,task_memcg=/kubepods/burstable/podX/abc,task=python3,pid=6854,uid=0";
    expect(parseSummary(real)).toEqual(reference(real));
    expect(parseSummary(real)).toBeDefined();
    const global = "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/kubepods/pod1/c,task=stress,pid=12,uid=1000";
    expect(parseSummary(global)).toEqual(reference(global));
    expect(parseSummary(global)!.summary.oomMemcg).toBeUndefined();
    const pieces = ["oom-kill:constraint=", "C", ",", ",oom_memcg=", ",global_oom", ",task_memcg=", ",task=", ",pid=", ",uid=", "1", "/a", "x", "="];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 14 }), fc.boolean(), (parts, head) => {
        const message = (head ? "oom-kill:constraint=C," : "") + parts.join("");
        expect(parseSummary(message)).toEqual(reference(message));
      }),
      { numRuns: 20_000 },
    );
  });

  test.each(FORGED.map((f, i) => [i, f] as const))("forged summary %d of 8 KiB: milliseconds, and 4x the text costs far less than 16x the time", (_, forge) => {
    // Before: the expression took 1.8 s on 5.8 KB of the first kind, growing ~N^4.
    const small = millis(() => parseSummary(forge(MAX_RECORD_BYTES / 4)));
    const large = millis(() => parseSummary(forge(MAX_RECORD_BYTES)));
    expect(large).toBeLessThan(50);
    expect(large).toBeLessThan(Math.max(16 * small, 5));
  });
});

describe("every pattern on a record of the kernel's largest size", () => {
  const fillers = ["x", "a ", ",oom_memcg=,task_memcg=", "Killed process 1 (", ") total-vm:1kB, ", "Task in ", " killed as a result of limit of ", "INFO: task ", "\r", "0,1,2,"];

  test.each(fillers)("built-in rules and the OOM tracker, text made of %j: at most 100 ms per record", (filler) => {
    const rules = [compileRuleFile(kernelMonitor, "kernel-monitor"), compileRuleFile(readonlyMonitor, "readonly-monitor")].map((f) => new RuleMatcher<number>(f.set!));
    const tracker = new OomTracker();
    const text = filler.repeat(Math.floor((MAX_RECORD_BYTES - 16) / filler.length));
    // The rules see the last lines joined: several such records at once.
    const elapsed = millis(() => {
      for (let i = 0; i < 4; i++) {
        // The header's pattern too, though a message with a line break in it is no record.
        try {
          parseKmsgLine(`3,${i},0,-;${text}`);
        } catch {}
        tracker.push(text);
        for (const matcher of rules) matcher.push(i, text);
      }
    });
    expect(elapsed / 4).toBeLessThan(100);
  });

  test("a rule starting with .* (RE2, linear) on 8 KiB records", () => {
    const file = compileRuleFile({ source: "test", conditions: [], rules: [{ type: "temporary", reason: "R", pattern: ".*a.*b.*c.*d" }] }, "test");
    const matcher = new RuleMatcher<number>(file.set!);
    const text = "abc".repeat(Math.floor((MAX_RECORD_BYTES - 16) / 3));
    expect(millis(() => matcher.push(0, text))).toBeLessThan(100);
  });
});

test("a file of forged long records: each counted as a parse error, the collector goes on, the next OOM kill is reported", async () => {
  const dir = makeTempDir("kmsg-bounded");
  try {
    const path = join(dir, "kmsg");
    const forged = `3,1,0,-;oom-kill:constraint=X${",oom_memcg=,task_memcg=,task=".repeat(2000)}x`;
    const longSummary = `3,2,0,-;oom-kill:constraint=X${",oom_memcg=,task_memcg=,task=".repeat(270)}x`;
    const kill = [
      "3,3,0,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/pod6c3a2e8e-3f9b-11e8-8f1c-42010a800002,task_memcg=/kubepods/pod6c3a2e8e-3f9b-11e8-8f1c-42010a800002/c1,task=stress,pid=77,uid=0",
      "3,4,0,-;Memory cgroup out of memory: Killed process 77 (stress) total-vm:1000kB, anon-rss:900kB, file-rss:4kB, shmem-rss:0kB, UID:0",
    ];
    writeFileSync(path, `${forged}\n${longSummary}\n3,5,0,-;${"x".repeat(200_000)}\n${kill.join("\n")}\n`);
    // vmstat as the 6.18 recording has it: the collector reads it alongside.
    mkdirSync(join(dir, "proc"));
    copyFileSync(join(TESTDATA, "proc/vmstat"), join(dir, "proc/vmstat"));
    const started = performance.now();
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: path, replay: true, proc_root: join(dir, "proc") })));
    // Before: the first record alone (60 KB) kept the event loop busy for longer than anyone waited.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(rec.parseErrors.map((e) => e.source)).toEqual(["kmsg", "kmsg"]);
    for (const error of rec.parseErrors) expect(error.detail).toContain(`a record longer than the kernel's ${MAX_RECORD_BYTES} bytes`);
    expect(rec.events.filter((e) => e.type === "container.oom").map((e) => e.metadata.pid)).toEqual([77]);
  } finally {
    removeTempDir(dir);
  }
}, 30_000);
