import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import fc from "fast-check";
import { KernelCollector, kernelFactory, priorityOf } from "../../../src/collectors/kernel/index.ts";
import { parseKmsgLine, type KmsgRead, type KmsgSource } from "../../../src/collectors/kernel/kmsg.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { recordingContext, runInBackground, runOnce, type Recording } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { asKmsg, countingOpen, kernelConfig, messages, OOM_6_18, OOM_PRE_5, PROBLEMS, TESTDATA } from "./helpers.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const dir = makeTempDir("kernel");
afterAll(() => removeTempDir(dir));
let files = 0;

/** A kmsg file in the temp dir. */
function kmsgFile(content: string): string {
  const path = join(dir, `log-${files++}.kmsg`);
  writeFileSync(path, content);
  return path;
}

/** A /proc with only the files given. */
function procRoot(entries: Record<string, string>): string {
  const root = join(dir, `proc-${files++}`);
  mkdirSync(root);
  for (const [name, content] of Object.entries(entries)) writeFileSync(join(root, name), content);
  return root;
}

const VMSTAT = readFileSync(join(TESTDATA, "proc/vmstat"), "utf8");
const vmstat = (oomKills: number) => VMSTAT.replace(/^oom_kill \d+$/m, `oom_kill ${oomKills}`);
const quietProc = () => procRoot({ vmstat: vmstat(0) });

/** A rule file matching "tapio test <n>", to see which records made it through. */
function markerRules(): string {
  const path = join(dir, `rules-${files++}.json`);
  writeFileSync(path, JSON.stringify({ plugin: "kmsg", source: "test-monitor", rules: [{ type: "temporary", reason: "Marker", pattern: "tapio test \\d+" }] }));
  return path;
}

const types = (rec: Recording) => rec.events.map((e) => e.type);
const reasons = (rec: Recording) => rec.events.filter((e) => e.type === "kernel.problem").map((e) => (e.event_data.custom as Record<string, string>).reason);
const custom = (e: CollectorEvent | undefined) => e!.event_data.custom as Record<string, string>;

/** A device that plays a script, one step per read; each open plays the next script. */
function scriptedDevice(scripts: Array<Array<KmsgRead | Error>>) {
  const opens: boolean[] = [];
  const open = (_path: string, fromEnd: boolean): KmsgSource => {
    opens.push(fromEnd);
    const steps = scripts.shift();
    if (!steps) throw Object.assign(new Error("EACCES: permission denied, open '/dev/kmsg'"), { code: "EACCES" });
    return {
      device: true,
      read: () => {
        const step = steps.shift() ?? { kind: "idle" };
        if (step instanceof Error) throw step;
        return step;
      },
      close: () => {},
    };
  };
  return { open, opens };
}
const data = (text: string): KmsgRead => ({ kind: "data", text });

describe("kernel collector", () => {
  test("replaying the 6.18 recording: one container.oom and NPD's OOMKilling, nothing unparsed", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: OOM_6_18, replay: true, proc_root: quietProc() })));
    expect(types(rec)).toEqual(["container.oom", "kernel.problem"]);
    const [oom, problem] = rec.events;
    expect(oom!.severity).toBe("error");
    expect(oom!.event_data.container).toEqual({ container_id: "", state: "oom_killed", action: "oom_kill", pid: 6854 });
    expect(oom!.event_data.kernel).toEqual({ event_type: "oom_kill", pid: 6854, command: "python3", uid: 0 });
    expect(custom(oom)).toMatchObject({ memory_cgroup: "/oomtest", oom_cgroup: "/oomtest", constraint: "CONSTRAINT_MEMCG", scope: "memcg", anon_rss_bytes: String(65152 * 1024) });
    // The record's syslog level 3 (err): Go's priority enum says high, custom keeps the number.
    expect(oom!.metadata).toMatchObject({ node_name: "node-1", pid: 6854, command: "python3", uid: 0, priority: "high" });
    expect(custom(oom).syslog_level).toBe("3");
    expect(problem!.severity).toBe("warning");
    expect(custom(problem)).toEqual({
      reason: "OOMKilling",
      rule_type: "temporary",
      monitor: "kernel-monitor",
      message: "Memory cgroup out of memory: Killed process 6854 (python3) total-vm:75160kB, anon-rss:65152kB, file-rss:4748kB, shmem-rss:0kB, UID:0 pgtables:184kB oom_score_adj:0",
      syslog_level: "3",
    });
    expect(problem!.metadata.priority).toBe("high");
    expect(rec.parseErrors).toEqual([]);
    expect(rec.degraded).toEqual([]);
  });

  test("a uid past Go's int32 (user namespaces) goes to custom.uid, not to the int32 uid fields", async () => {
    const recording = readFileSync(OOM_6_18, "utf8").replaceAll("uid=0", "uid=3000000000").replaceAll("UID:0", "UID:3000000000");
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(recording), replay: true, proc_root: quietProc() })));
    const oom = rec.events.find((e) => e.type === "container.oom")!;
    expect(oom.metadata.uid).toBeUndefined();
    expect((oom.event_data.kernel as Record<string, unknown>).uid).toBeUndefined();
    expect(custom(oom).uid).toBe("3000000000");
  });

  test("a pre-5.0 OOM of a pod's container: pod uid and container id in metadata and correlation hints", async () => {
    const path = kmsgFile(asKmsg(messages(OOM_PRE_5)));
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: path, replay: true, proc_root: quietProc() })));
    const oom = rec.events.find((e) => e.type === "container.oom");
    const pod = "6c3a2e8e-3f9b-11e8-8f1c-42010a800002";
    const container = "4f3c1a5d9b2e7c8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
    expect(oom!.metadata).toMatchObject({ pod_uid: pod, container_id: container, pid: 1012, command: "heapster" });
    expect(oom!.correlation_hints).toEqual({ pod_uid: pod, container_id: container });
    expect((oom!.event_data.container as Record<string, unknown>).container_id).toBe(container);
    expect(custom(oom).memory_cgroup).toBe(`/kubepods/burstable/pod${pod}/${container}`);
  });

  test("a problem's priority is the most severe level of its lines, as Go's enum; the level itself is in custom", async () => {
    // Go consumers read metadata.priority as low|normal|high|critical: err (3) and worse are high or critical.
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(priorityOf)).toEqual(["critical", "critical", "critical", "high", "normal", "normal", "low", "low"]);
    const lines = asKmsg(["tapio test 1"], 1, 6) + asKmsg(["tapio test 2"], 2, 2);
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(lines), replay: true, builtin_rules: false, rule_files: [markerRules()], proc_root: quietProc() })));
    expect(rec.events.map((e) => [e.metadata.priority, custom(e).syslog_level])).toEqual([
      ["low", "6"],
      ["critical", "2"],
    ]);
  });

  test("NPD's problem logs, one after the other: the reasons NPD would report", async () => {
    const lines = readdirSync(PROBLEMS).sort().flatMap((file) => messages(join(PROBLEMS, file)));
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(asKmsg(lines)), replay: true, proc_root: quietProc() })));
    expect(reasons(rec)).toEqual(["TaskHung", "KernelOops", "KernelOops", "OOMKilling"]);
    expect(rec.events.filter((e) => e.type === "container.oom").length).toBe(1);
    expect(rec.parseErrors).toEqual([]);
  });

  test("without replay, history is skipped; lines appended later are read, even when written in pieces", async () => {
    const path = kmsgFile(readFileSync(OOM_6_18, "utf8"));
    expect((await runOnce(new KernelCollector(kernelConfig({ kmsg_path: path, proc_root: quietProc() })))).events).toEqual([]);

    const { open, reads } = countingOpen();
    const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: path, read_interval: "20ms", proc_root: quietProc() }), open));
    await waitFor(() => reads.includes("idle"), "the log opened, its history skipped");
    const beforeFirstHalf = reads.length;
    appendFileSync(path, "3,500,300000000,-;EXT4-fs (sda1): Remounting files");
    // Read ("data"), then idle, then idle again one read_interval later: the first half went through the whole loop.
    await waitFor(() => reads.slice(beforeFirstHalf).join(" ").includes("data idle idle"), "the first half read and handled");
    expect(rec.events).toEqual([]);
    appendFileSync(path, "ystem read-only\n SUBSYSTEM=block\n DEVICE=b8:1\n");
    await waitFor(() => rec.events.length > 0);
    await finish();
    expect(reasons(rec)).toEqual(["FilesystemIsReadOnly"]);
    expect(custom(rec.events[0])).toMatchObject({ condition: "ReadonlyFilesystem", condition_status: "True", rule_type: "permanent", monitor: "readonly-monitor" });
    expect(rec.events[0]!.severity).toBe("error");
    expect(rec.parseErrors).toEqual([]);
  });

  test("property: garbage and truncated lines are counted as parse errors and the records around them still count", async () => {
    const oomRecords = readFileSync(OOM_6_18, "utf8");
    const unparsable = (line: string) => {
      try {
        parseKmsgLine(line);
        return false;
      } catch {
        return true;
      }
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(..."0123456789,;- \n") }))), async (garbage) => {
        const text = `${garbage.join("\n")}\n`;
        const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(text + oomRecords), replay: true, builtin_rules: false, proc_root: quietProc() })));
        // Every line that is neither blank, nor a continuation line, nor a record is counted: none is dropped unseen.
        const bad = text.split("\n").filter((line) => line !== "" && !line.startsWith(" ") && unparsable(line));
        expect(rec.parseErrors.length).toBe(bad.length);
        expect(types(rec)).toContain("container.oom");
        expect(rec.degraded).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  test("property: the recording cut anywhere yields a subset of its events and at most one parse error", async () => {
    const whole = readFileSync(OOM_6_18, "utf8");
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: whole.length }), async (cut) => {
        const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(whole.slice(0, cut)), replay: true, proc_root: quietProc() })));
        expect(rec.parseErrors.length).toBeLessThanOrEqual(1);
        expect(rec.events.length).toBeLessThanOrEqual(2);
        expect(rec.degraded).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  test("an empty log: nothing to say, nothing wrong", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(""), replay: true, proc_root: quietProc() })));
    expect(rec.events).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
    expect(rec.degraded).toEqual([]);
  });

  test("an OOM kill is emitted as soon as its record is read: before the rules run on the report, and before what the kernel writes next is read", async () => {
    // The 6.18 report one record per read, as the device gives it; the reader catches up with the
    // kernel after the kill line (idle), and the oom_reaper line comes after.
    const report = readFileSync(OOM_6_18, "utf8").trimEnd().split("\n").map((line) => data(`${line}\n`));
    const afterKill = data("6,1000,7530000,-;oom_reaper: reaped process 6854 (python3), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n");
    const device = scriptedDevice([[...report, { kind: "idle" }, afterKill]]);
    /** what had been emitted when the record after the kill was read */
    let emittedBeforeNext: string[] | undefined;
    const open = (path: string, fromEnd: boolean): KmsgSource => {
      const source = device.open(path, fromEnd);
      return { ...source, read: () => {
        const read = source.read();
        if (read === afterKill) emittedBeforeNext = types(rec);
        return read;
      } };
    };
    // A rule on the report's first line: its event must not hold the kill back.
    const rules = join(dir, `rules-${files++}.json`);
    writeFileSync(rules, JSON.stringify({ plugin: "kmsg", source: "test-monitor", rules: [{ type: "temporary", reason: "OomInvoked", pattern: "invoked oom-killer: .*" }] }));
    const rec = recordingContext({ once: true });
    await new KernelCollector(kernelConfig({ rule_files: [rules], replay: true, proc_root: quietProc() }), open).run(rec.ctx);
    expect(emittedBeforeNext).toEqual(["container.oom"]);
    expect(types(rec)).toEqual(["container.oom", "kernel.problem", "kernel.problem"]);
    expect(reasons(rec)).toEqual(["OomInvoked", "OOMKilling"]);
  });

  test("records overwritten before they were read (EPIPE) are counted; reading goes on", async () => {
    const device = scriptedDevice([[data("6,1,10,-;tapio test 1\n"), { kind: "overrun" }, data("6,9,90,-;tapio test 9\n")]]);
    const rec = await runOnce(new KernelCollector(kernelConfig({ rule_files: [markerRules()], builtin_rules: false, replay: true, proc_root: quietProc() }), device.open));
    expect(rec.events.map((e) => custom(e).message)).toEqual(["tapio test 1", "tapio test 9"]);
    expect(rec.parseErrors).toEqual([{ source: "kmsg.overrun", detail: "/dev/kmsg: records were overwritten before they were read" }]);
  });

  test("after a read error the device is opened again and records already read are not reported twice", async () => {
    const device = scriptedDevice([
      [data("6,1,10,-;tapio test 1\n"), data("6,2,20,-;tapio test 2\n"), Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" })],
      [data("6,1,10,-;tapio test 1\n"), data("6,2,20,-;tapio test 2\n"), data("6,3,30,-;tapio test 3\n")],
    ]);
    const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ rule_files: [markerRules()], builtin_rules: false, read_interval: "10ms", retry_interval: "10ms", proc_root: quietProc() }), device.open));
    await waitFor(() => rec.events.length >= 3);
    await Bun.sleep(50);
    await finish();
    expect(rec.events.map((e) => custom(e).message)).toEqual(["tapio test 1", "tapio test 2", "tapio test 3"]);
    // History is skipped at the first open only; the reopen reads on from the start.
    expect(device.opens.slice(0, 2)).toEqual([true, false]);
    expect(rec.degraded.some((d) => d.includes("reading /dev/kmsg: EIO"))).toBe(true);
  });

  test("the device's records are dated from boot time (/proc/uptime)", async () => {
    const device = scriptedDevice([[data("6,1,5000000,-;tapio test 1\n")]]);
    const proc = procRoot({ vmstat: vmstat(0), uptime: "100.00 50.00\n" });
    const rec = await runOnce(new KernelCollector(kernelConfig({ rule_files: [markerRules()], builtin_rules: false, replay: true, proc_root: proc }), device.open));
    const at = Date.parse(rec.events[0]!.timestamp);
    expect(Math.abs(at - (Date.now() - 95_000))).toBeLessThan(2000);
    expect(rec.events[0]!.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  test("a log that cannot be opened: degraded, retried, and read once it can be", async () => {
    const path = join(dir, "appears-later.kmsg");
    const once = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: path, proc_root: quietProc() })));
    expect(once.degraded[0]).toContain(`cannot open ${path}: ENOENT`);

    const denied = await runOnce(new KernelCollector(kernelConfig({ proc_root: quietProc() }), scriptedDevice([]).open));
    expect(denied.degraded[0]).toContain("needs root or CAP_SYSLOG");

    const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: path, read_interval: "10ms", retry_interval: "20ms", proc_root: quietProc() })));
    await waitFor(() => rec.degraded.length >= 2);
    writeFileSync(path, "");
    const healthyBefore = rec.healthyCalls;
    await waitFor(() => rec.healthyCalls > healthyBefore);
    appendFileSync(path, "3,7,70,-;XFS (sdb1): Corruption detected. Shutting down filesystem\n");
    await waitFor(() => rec.events.length > 0);
    await finish();
    expect(reasons(rec)).toEqual(["XfsHasShutdown"]);
  });

  test("/proc/vmstat oom_kill: a kernel.oom_kill event per increase, none at start", async () => {
    // vmstat is missing at first, so the first good poll is the one that ends the collector's "degraded".
    const proc = procRoot({});
    const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(""), vmstat_interval: "20ms", proc_root: proc })));
    await waitFor(() => rec.degraded.some((d) => d.includes("vmstat")), "the first vmstat poll to fail");
    const healthyBefore = rec.healthyCalls;
    writeFileSync(join(proc, "vmstat"), vmstat(2));
    await waitFor(() => rec.healthyCalls > healthyBefore, "the first good vmstat poll");
    expect(rec.events).toEqual([]);
    writeFileSync(join(proc, "vmstat"), vmstat(5));
    await waitFor(() => rec.events.length > 0);
    await finish();
    expect(rec.events.map((e) => [e.type, e.severity, custom(e)])).toEqual([["kernel.oom_kill", "warning", { source: "vmstat", oom_kill_delta: "3", oom_kill_total: "5" }]]);
  });

  test("/proc/vmstat missing, without oom_kill, or garbage: degraded or a parse error, never a failure", async () => {
    const kmsg = kmsgFile("");
    const missing = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsg, proc_root: procRoot({}) })));
    expect(missing.degraded.at(-1)).toContain("vmstat does not exist");
    const old = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsg, proc_root: procRoot({ vmstat: "nr_free_pages 1\n" }) })));
    expect(old.degraded.at(-1)).toContain("has no oom_kill counter");
    const garbage = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsg, proc_root: procRoot({ vmstat: "oom_kill two\n" }) })));
    expect(garbage.parseErrors.map((p) => p.source)).toEqual(["vmstat"]);
    expect(garbage.degraded).toEqual([]);
  });

  test("rule files: extra ones, the built-ins off, and a broken one (degraded, the rest still applies)", async () => {
    const lines = asKmsg(["tapio test 1", "EXT4-fs error (device sda1): bad", "Killed process 1 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"]);
    const only = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(lines), replay: true, builtin_rules: false, rule_files: markerRules(), proc_root: quietProc() })));
    expect(reasons(only)).toEqual(["Marker"]);
    expect(types(only)).toContain("container.oom");

    const broken = join(dir, "broken-rules.json");
    writeFileSync(broken, "{");
    const both = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(lines), replay: true, rule_files: [markerRules(), broken], proc_root: quietProc() })));
    expect(reasons(both)).toEqual(["Marker", "Ext4Error", "OOMKilling"]);
    expect(both.degraded.at(-1)).toContain(`${broken}: not JSON`);
  });

  test("config: defaults, and unknown keys named", () => {
    expect(v.parse(kernelFactory.configSchema, undefined)).toEqual({
      kmsg_path: "/dev/kmsg",
      replay: false,
      read_interval: expect.anything(),
      retry_interval: expect.anything(),
      proc_root: "/proc",
      vmstat_interval: expect.anything(),
      builtin_rules: true,
      rule_files: [],
      node_name: expect.any(String),
    });
    const bad = v.safeParse(kernelFactory.configSchema, { kmsg_pth: "/host/dev/kmsg" });
    expect(bad.issues?.[0]?.message).toContain('did you mean "kmsg_path"');
    expect(kernelFactory.quietPeriodMs!(kernelConfig())).toBeUndefined();
  });
});
