// Event mode: /dev/kmsg read as records come (a worker waits in poll(2) on the
// fd), and the fallback to polling every read_interval where that cannot be
// done. The live tests need root (or CAP_SYSLOG, and write access to write
// records) and are skipped otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { constants, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KernelCollector } from "../../../src/collectors/kernel/index.ts";
import { recordingContext, runInBackground } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";
import { can, countingOpen, kernelConfig } from "./helpers.ts";

const KMSG = "/dev/kmsg";
const readable = can(KMSG, constants.R_OK);
const writable = readable && can(KMSG, constants.W_OK);

const dir = makeTempDir("kernel-event");
afterAll(() => removeTempDir(dir));
const nonce = `${process.pid}-${Date.now()}`;

function markerRules(): string {
  const path = join(dir, "event-rules.json");
  writeFileSync(path, JSON.stringify({ plugin: "kmsg", source: "event", rules: [{ type: "temporary", reason: "EventMarker", pattern: `tapio event ${nonce} \\d+` }] }));
  return path;
}

/** This process's threads named `name` (a Bun Worker's thread is "Worker"). */
function threadsNamed(name: string): number {
  return readdirSync("/proc/self/task").filter((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() === name;
    } catch {
      return false; // ended meanwhile
    }
  }).length;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe("kernel collector, event mode", () => {
  test("a regular file as kmsg_path is polled every read_interval, and says why; vmstat is polled", async () => {
    const path = join(dir, "file.kmsg");
    writeFileSync(path, "");
    const { rec, stop } = runInBackground(new KernelCollector(kernelConfig({ kmsg_path: path, read_interval: "250ms", proc_root: "/proc" })));
    await waitFor(() => rec.sourceModes.has("kmsg") && rec.sourceModes.has("vmstat"), "both sources' modes");
    await stop();
    expect(rec.sourceModes.get("kmsg")).toEqual({ mode: "poll", reason: `${path} is a regular file, not the kernel's device: read every 250ms` });
    expect(rec.sourceModes.get("vmstat")).toEqual({ mode: "poll", reason: "the kernel tells no one when /proc/vmstat changes: read every 10s" });
  });

  test.skipIf(!writable)(
    "records written to /dev/kmsg are emitted as they come: 20 records, p99 far below the 1 s read_interval",
    async () => {
      const { open, reads } = countingOpen();
      const rec = recordingContext({ once: false });
      // When each marker's event reached ctx.emit, what the queue would see (the machine's own kills and records are not ours).
      const emittedAt: number[] = [];
      const emit = rec.ctx.emit;
      rec.ctx.emit = (event, options) => {
        if ((event.event_data.custom as Record<string, string> | undefined)?.reason === "EventMarker") emittedAt.push(performance.now());
        return emit(event, options);
      };
      // read_interval stays 1 s: polling could not pass this test.
      const done = new KernelCollector(kernelConfig({ rule_files: [markerRules()], builtin_rules: false }), open).run(rec.ctx);
      try {
        // The worker started, then the first round read to idle: the worker waits.
        await waitFor(() => rec.sourceModes.get("kmsg")?.mode === "event" && reads.includes("idle"), "the worker waiting on the device");
        const latencies: number[] = [];
        for (let i = 0; i < 20; i++) {
          const written = performance.now();
          writeFileSync(KMSG, `<3>tapio event ${nonce} ${i}\n`);
          await waitFor(() => emittedAt.length > i, `record ${i} emitted`, 5000, 1);
          latencies.push(emittedAt[i]! - written);
        }
        const sorted = latencies.toSorted((a, b) => a - b);
        console.log(`kmsg write -> emit, 20 records: p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms`);
        expect(percentile(sorted, 99)).toBeLessThan(50);
        const markers = rec.events.filter((e) => (e.event_data.custom as Record<string, string>).reason === "EventMarker");
        expect(markers.map((e) => (e.event_data.custom as Record<string, string>).message)).toEqual(latencies.map((_, i) => `tapio event ${nonce} ${i}`));
        expect(rec.sourceModes.get("kmsg")).toEqual({ mode: "event" });
      } finally {
        rec.stop();
        await done;
      }
    },
    30_000,
  );

  test.skipIf(!readable)("stopping while the worker waits in poll(2) returns promptly and ends the worker's thread", async () => {
    const workersBefore = threadsNamed("Worker");
    const { open, reads } = countingOpen();
    const { rec, stop } = runInBackground(new KernelCollector(kernelConfig({ builtin_rules: false }), open));
    await waitFor(() => rec.sourceModes.get("kmsg")?.mode === "event" && reads.includes("idle"), "the worker waiting on the device");
    await waitFor(() => threadsNamed("Worker") === workersBefore + 1, "the worker's thread");
    const stopMs = await stop();
    expect(stopMs).toBeLessThan(PROMPTLY_MS);
    await waitFor(() => threadsNamed("Worker") === workersBefore, "the worker's thread gone");
  });

  test.skipIf(!readable)("without Workers the device is polled, and says why", async () => {
    const worker = globalThis.Worker;
    // @ts-expect-error: a runtime without Workers
    globalThis.Worker = undefined;
    try {
      const { open, reads } = countingOpen();
      const { rec, stop } = runInBackground(new KernelCollector(kernelConfig({ builtin_rules: false, read_interval: "20ms" }), open));
      await waitFor(() => rec.sourceModes.has("kmsg") && reads.filter((r) => r === "idle").length >= 2, "two polling rounds");
      await stop();
      expect(rec.sourceModes.get("kmsg")).toEqual({ mode: "poll", reason: "cannot wait for records (Workers are unavailable): read every 20ms" });
    } finally {
      globalThis.Worker = worker;
    }
  });
});
