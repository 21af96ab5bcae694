// Live, on this machine's kernel: /dev/kmsg as the collector reads it in
// production, lines written to it, and a real OOM kill in a memory cgroup laid
// out as kubelet lays out a pod's. Each test is skipped where the machine
// does not allow it (no root, no v1 memory controller).
import { afterAll, describe, expect, test } from "bun:test";
import { constants, existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KernelCollector } from "../../../src/collectors/kernel/index.ts";
import { openKmsg } from "../../../src/collectors/kernel/kmsg.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { runInBackground, runOnce } from "../../helpers/collector-context.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../../helpers/cleanup.ts";
import { can, countingOpen, kernelConfig } from "./helpers.ts";
import { waitFor } from "../../helpers/wait-for.ts";


const KMSG = "/dev/kmsg";
const readable = can(KMSG, constants.R_OK);
const writable = can(KMSG, constants.W_OK);
const MEMCG_V1 = "/sys/fs/cgroup/memory";
const memcgWritable = existsSync(join(MEMCG_V1, "memory.oom_control")) && can(MEMCG_V1, constants.W_OK);

const dir = makeTempDir("kernel-live");
afterAll(() => removeTempDir(dir));
const nonce = `${process.pid}-${Date.now()}`;

function markerRules(): string {
  const path = join(dir, "live-rules.json");
  writeFileSync(path, JSON.stringify({ plugin: "kmsg", source: "live", rules: [{ type: "temporary", reason: "LiveMarker", pattern: `tapio live (before|after) ${nonce}` }] }));
  return path;
}

describe("kernel collector, live", () => {
  test.skipIf(!readable)("/dev/kmsg: opened as the device, history skipped, one --once round reads cleanly", async () => {
    const source = openKmsg(KMSG, true);
    expect(source.device).toBe(true);
    source.close();
    const replay = await runOnce(new KernelCollector(kernelConfig({ replay: true })));
    expect(replay.parseErrors).toEqual([]);
    expect(replay.degraded).toEqual([]);
  });

  test.skipIf(!writable)("a line written to /dev/kmsg after the start is reported, dated and leveled; one written before is not", async () => {
    writeFileSync(KMSG, `<6>tapio live before ${nonce}\n`);
    const { open, reads } = countingOpen();
    const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ rule_files: [markerRules()], builtin_rules: false, read_interval: "20ms" }), open));
    await waitFor(() => reads.includes("idle"), "the device opened, its history skipped");
    writeFileSync(KMSG, `<6>tapio live after ${nonce}\n`);
    await waitFor(() => rec.events.length > 0);
    await Bun.sleep(50);
    await finish();
    expect(rec.events.map((e) => (e.event_data.custom as Record<string, string>).message)).toEqual([`tapio live after ${nonce}`]);
    expect(rec.events[0]!.metadata.priority).toBe("low");
    expect((rec.events[0]!.event_data.custom as Record<string, string>).syslog_level).toBe("6");
    expect(Math.abs(Date.parse(rec.events[0]!.timestamp) - Date.now())).toBeLessThan(5000);
  });

  test.skipIf(!readable || !memcgWritable)(
    "a real OOM kill in a pod's container cgroup: container.oom with the pod and container, NPD's OOMKilling, and the vmstat count",
    async () => {
      const podUid = crypto.randomUUID();
      const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
      const top = join(MEMCG_V1, `tapio-test-${process.pid}`);
      const dirs = [top, `${top}/kubepods`, `${top}/kubepods/burstable`, `${top}/kubepods/burstable/pod${podUid}`, `${top}/kubepods/burstable/pod${podUid}/${containerId}`];
      const container = dirs.at(-1)!;
      const { open, reads } = countingOpen();
      const { rec, stop: finish } = runInBackground(new KernelCollector(kernelConfig({ read_interval: "20ms", vmstat_interval: "50ms" }), open));
      try {
        for (const d of dirs) mkdirSync(d);
        writeFileSync(join(container, "memory.limit_in_bytes"), String(32 * 1024 * 1024));
        // Before the kill: the device read past its history, and a vmstat round for the baseline. The device
        // opens once (its open is one healthy call), so a second healthy call is a vmstat round.
        await waitFor(() => reads.includes("idle") && rec.healthyCalls >= 2, "the device opened and the first vmstat round");
        // tail keeps every byte of a line it has not seen the end of: this one has no end.
        const victim = Bun.spawn(["sh", "-c", `echo $$ > ${container}/cgroup.procs && head -c 300M /dev/zero | tail`], { stdout: "ignore", stderr: "ignore" });
        killAtExit(victim.pid);
        await victim.exited;
        spare(victim.pid);
        const oom = () => rec.events.find((e) => e.type === "container.oom" && e.metadata.pod_uid === podUid);
        await waitFor(() => oom() !== undefined && rec.events.some((e) => e.type === "kernel.oom_kill"), "the OOM kill event", 10_000);
        const event = oom() as CollectorEvent;
        expect(event.metadata).toMatchObject({ pod_uid: podUid, container_id: containerId, command: "tail" });
        expect((event.event_data.custom as Record<string, string>).memory_cgroup).toBe(`/tapio-test-${process.pid}/kubepods/burstable/pod${podUid}/${containerId}`);
        expect(rec.events.some((e) => e.type === "kernel.problem" && (e.event_data.custom as Record<string, string>).reason === "OOMKilling")).toBe(true);
      } finally {
        await finish();
        for (const d of dirs.reverse()) if (existsSync(d)) rmdirSync(d);
      }
    },
    20_000,
  );
});
