// Resuming the kernel log where the last run stopped: the position saved in
// ctx.state (boot id and sequence number), records after it reported, the
// records just before it read again only as context, event ids derived from
// boot id and sequence number; another boot, or no boot id, starts as before.
import { afterAll, describe, expect, test } from "bun:test";
import { constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONTEXT_RECORDS, KernelCollector, kmsgEventId } from "../../../src/collectors/kernel/index.ts";
import type { KmsgRead, KmsgSource } from "../../../src/collectors/kernel/kmsg.ts";
import { runInBackground, runOnce, type Recording } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { asKmsg, can, countingOpen, kernelConfig, OOM_6_18, TESTDATA } from "./helpers.ts";

const dir = makeTempDir("kernel-resume");
afterAll(() => removeTempDir(dir));
let files = 0;

const BOOT = "0f6b1c5e-8c1e-4a57-9d0c-0d5e3b1f2a77";
const OTHER_BOOT = "5d0b7c55-2f0e-4c4e-8a43-5bd1d7b6f001";
const VMSTAT = readFileSync(join(TESTDATA, "proc/vmstat"), "utf8");
const OOM = readFileSync(OOM_6_18, "utf8");

function kmsgFile(content: string): string {
  const path = join(dir, `log-${files++}.kmsg`);
  writeFileSync(path, content);
  return path;
}

/** A /proc with vmstat and, unless null, sys/kernel/random/boot_id. */
function procRoot(bootId: string | null = BOOT): string {
  const root = join(dir, `proc-${files++}`);
  mkdirSync(join(root, "sys/kernel/random"), { recursive: true });
  writeFileSync(join(root, "vmstat"), VMSTAT);
  if (bootId !== null) writeFileSync(join(root, "sys/kernel/random/boot_id"), `${bootId}\n`);
  return root;
}

const position = (seq: number, bootId = BOOT) => JSON.stringify({ boot_id: bootId, seq });
const types = (rec: Recording) => rec.events.map((e) => e.type);
const custom = (rec: Recording, i: number) => rec.events[i]!.event_data.custom as Record<string, string>;

describe("kernel collector: resuming where the last run stopped", () => {
  test("no saved position: history skipped as before, and where the log ended is saved, so a quiet first run still resumes", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel");
    expect(rec.events).toEqual([]);
    expect(rec.saves).toEqual([position(415)]);
  });

  test("an empty log at the first start saves -1: after a restart everything in it is new", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(""), proc_root: procRoot() })), "kernel");
    expect(rec.saves).toEqual([position(-1)]);
    const resumed = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(-1));
    expect(types(resumed)).toEqual(["container.oom", "kernel.problem"]);
  });

  test("a saved position of this boot: records after it are reported (also with replay off), with ids from boot id, sequence number and place", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(400));
    expect(types(rec)).toEqual(["container.oom", "kernel.problem"]);
    // Both come from record 415, the kill line: the OOM first, then the rule's match.
    expect(rec.events.map((e) => e.event_id)).toEqual([kmsgEventId("kernel", BOOT, 415, 0), kmsgEventId("kernel", BOOT, 415, 1)]);
    expect(rec.events[0]!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(rec.saves).toEqual([position(415)]);
    expect(rec.parseErrors).toEqual([]);
  });

  test("the same record read twice (resumed from the same place) gives the same ids; another collector name or boot gives others", async () => {
    const run = (name: string) => runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), name, position(400));
    const [a, b, c] = await Promise.all([run("kernel"), run("kernel"), run("kernel-2")]);
    expect(a.events.map((e) => e.event_id)).toEqual(b.events.map((e) => e.event_id));
    expect(new Set([...a.events, ...c.events].map((e) => e.event_id)).size).toBe(4);
    expect(kmsgEventId("kernel", OTHER_BOOT, 415, 0)).not.toBe(kmsgEventId("kernel", BOOT, 415, 0));
  });

  test("nothing after the saved position: nothing reported, nothing saved", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(415));
    expect(rec.events).toEqual([]);
    expect(rec.saves).toEqual([]);
  });

  test("a save between an OOM report's summary and its kill line: the summary is read again as context, so the kill keeps its cgroup", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(414));
    expect(types(rec)).toEqual(["container.oom", "kernel.problem"]);
    expect(custom(rec, 0)).toMatchObject({ memory_cgroup: "/oomtest", oom_cgroup: "/oomtest", constraint: "CONSTRAINT_MEMCG" });
  });

  test(`context is the last ${CONTEXT_RECORDS} records up to the saved one, no more`, async () => {
    const summary = OOM.split("\n").find((l) => l.includes(";oom-kill:"))!.replace(/^(\d+),\d+,/, "$1,1,");
    const killed = OOM.split("\n").find((l) => l.includes("Killed process"))!;
    // The summary is record 1, the kill line record 301 (after 299 fillers).
    const log = `${summary}\n${asKmsg(Array.from({ length: 299 }, (_, i) => `filler ${i}`), 2)}${killed.replace(/^(\d+),\d+,/, "$1,301,")}\n`;
    const within = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(log), builtin_rules: false, proc_root: procRoot() })), "kernel", position(300 - CONTEXT_RECORDS + 2));
    expect(custom(within, 0).memory_cgroup).toBe("/oomtest");
    const beyond = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(log), builtin_rules: false, proc_root: procRoot() })), "kernel", position(300));
    expect(types(beyond)).toEqual(["container.oom"]);
    expect(custom(beyond, 0).memory_cgroup).toBeUndefined();
  });

  test("records overwritten while the collector was down are counted (kmsg.overrun) and reading goes on", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(100));
    expect(rec.parseErrors).toEqual([{ source: "kmsg.overrun", detail: `${join(dir, `log-${files - 2}.kmsg`)}: 236 record(s) after sequence number 100 were overwritten while the collector was down` }]);
    expect(types(rec)).toEqual(["container.oom", "kernel.problem"]);
  });

  test("a position saved in another boot: started as before (history skipped), and this boot's position saved", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", position(10, OTHER_BOOT));
    expect(rec.events).toEqual([]);
    expect(rec.saves).toEqual([position(415)]);
  });

  test("an unreadable saved value is ignored (started as before)", async () => {
    const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), proc_root: procRoot() })), "kernel", "{not json");
    expect(rec.events).toEqual([]);
    expect(rec.saves).toEqual([position(415)]);
  });

  test("no boot id (proc_root without it, or garbage in it): random ids, nothing saved, nothing resumed", async () => {
    for (const root of [procRoot(null), procRoot("not a boot id")]) {
      const rec = await runOnce(new KernelCollector(kernelConfig({ kmsg_path: kmsgFile(OOM), replay: true, proc_root: root })), "kernel", position(400));
      expect(types(rec)).toEqual(["container.oom", "kernel.problem"]);
      // UUIDv7, as for every other collector
      expect(rec.events[0]!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(rec.saves).toEqual([]);
    }
  });

  test("while running: each batch's last record is saved, and a record appended later moves it", async () => {
    const path = kmsgFile(OOM);
    const { open, reads } = countingOpen();
    const { rec, stop } = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: path, read_interval: "20ms", proc_root: procRoot() }), open), "kernel");
    await waitFor(() => reads.includes("idle"), "the log opened, its history skipped");
    expect(rec.saves).toEqual([position(415)]);
    writeFileSync(path, `${OOM}6,416,266300000,-;EXT4-fs (sda1): Remounting filesystem read-only\n`);
    await waitFor(() => rec.events.length > 0);
    await stop();
    expect(rec.saves).toEqual([position(415), position(416)]);
    expect(rec.events[0]!.event_id).toBe(kmsgEventId("kernel", BOOT, 416, 0));
  });

  test("the device, resumed: opened from its start, not from its end, and only what follows the saved record reported", async () => {
    const rules = join(dir, "marker-rules.json");
    writeFileSync(rules, JSON.stringify({ plugin: "kmsg", source: "test-monitor", rules: [{ type: "temporary", reason: "Marker", pattern: "tapio test \\d+" }] }));
    const opens: boolean[] = [];
    const steps: KmsgRead[] = [1, 2, 3, 4, 5].map((n) => ({ kind: "data", text: `6,${n},${n * 10},-;tapio test ${n}\n` }));
    const open = (_path: string, fromEnd: boolean): KmsgSource => {
      opens.push(fromEnd);
      return { device: true, read: () => steps.shift() ?? { kind: "idle" }, close: () => {} };
    };
    const rec = await runOnce(new KernelCollector(kernelConfig({ proc_root: procRoot(), builtin_rules: false, rule_files: [rules] }), open), "kernel", position(3));
    expect(opens).toEqual([false]);
    expect(rec.events.map((e) => e.event_id)).toEqual([kmsgEventId("kernel", BOOT, 4, 0), kmsgEventId("kernel", BOOT, 5, 0)]);
    expect(rec.saves).toEqual([position(5)]);
  });
});


describe("kernel collector: resuming on this machine's /dev/kmsg", () => {
  const writable = can("/dev/kmsg", constants.W_OK) && can("/proc/sys/kernel/random/boot_id", constants.R_OK);
  test.skipIf(!writable)("lines written while the collector was stopped are reported by the next start, once; lines before the stop are not", async () => {
    const nonce = `${process.pid}-${Date.now()}`;
    const rules = join(dir, "live-rules.json");
    writeFileSync(rules, JSON.stringify({ plugin: "kmsg", source: "live", rules: [{ type: "temporary", reason: "LiveMarker", pattern: `tapio resume (\\w+) ${nonce}` }] }));
    const config = kernelConfig({ rule_files: [rules], builtin_rules: false, read_interval: "20ms", vmstat_interval: "1h" });
    const messages = (rec: Recording) => rec.events.map((e) => (e.event_data.custom as Record<string, string>).message);

    const first = runInBackground(new KernelCollector(config), "kernel");
    await waitFor(() => first.rec.saves.length > 0, "the device opened and its end saved");
    writeFileSync("/dev/kmsg", `<6>tapio resume running ${nonce}\n`);
    await waitFor(() => first.rec.events.length > 0);
    await first.stop();
    writeFileSync("/dev/kmsg", `<6>tapio resume stopped ${nonce}\n`);

    const second = runInBackground(new KernelCollector(config), "kernel", first.rec.saves.at(-1));
    await waitFor(() => second.rec.events.length > 0);
    writeFileSync("/dev/kmsg", `<6>tapio resume again ${nonce}\n`);
    await waitFor(() => second.rec.events.length > 1);
    await Bun.sleep(50);
    await second.stop();
    expect(messages(first.rec)).toEqual([`tapio resume running ${nonce}`]);
    expect(messages(second.rec)).toEqual([`tapio resume stopped ${nonce}`, `tapio resume again ${nonce}`]);
    const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const saved = JSON.parse(second.rec.saves.at(-1)!) as { boot_id: string; seq: number };
    expect(saved.boot_id).toBe(bootId);
    expect(second.rec.events[1]!.event_id).toBe(kmsgEventId("kernel", bootId, saved.seq, 0));
  });
});
