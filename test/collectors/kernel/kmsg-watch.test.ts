// The kmsg reader worker on this machine's /dev/kmsg (root, or CAP_SYSLOG and
// write access; skipped otherwise): it reads the records itself and posts
// them, in order and none lost across a pause (backpressure), and posts the
// record that completes an OOM kill at once, so the collector emits the kill
// before it takes what follows it in the log or runs any rule on the report.
import { afterAll, describe, expect, test } from "bun:test";
import { constants, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KernelCollector } from "../../../src/collectors/kernel/index.ts";
import { openKmsg, type KmsgRecord } from "../../../src/collectors/kernel/kmsg.ts";
import { KmsgWatch } from "../../../src/collectors/kernel/kmsg-watch.ts";
import { MAX_RECORDS_PER_MESSAGE, type WatchRecords } from "../../../src/collectors/kernel/kmsg-watch-protocol.ts";
import { completesKill } from "../../../src/collectors/kernel/oom.ts";
import { recordingContext } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { can, countingOpen, kernelConfig, OOM_6_18 } from "./helpers.ts";

const KMSG = "/dev/kmsg";
const writable = can(KMSG, constants.R_OK) && can(KMSG, constants.W_OK);

const dir = makeTempDir("kernel-watch");
afterAll(() => removeTempDir(dir));
const nonce = `${process.pid}-${Date.now()}`;

/** One record written to /dev/kmsg; a new open each time, as the kernel rate-limits writers per open file. */
function writeRecord(message: string, level = 4): void {
  writeFileSync(KMSG, `<${level}>${message}\n`);
}

/** The real Linux 6.18 OOM report of the test data, its messages only (the test writes them as records of its own). */
function oomReport(): string[] {
  return readFileSync(OOM_6_18, "utf8")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith(" "))
    .map((line) => line.slice(line.indexOf(";") + 1));
}

describe("kmsg reader worker", () => {
  test.skipIf(!writable)(
    "posts the records in the order written, none lost while it is paused by records the collector has not taken",
    async () => {
      const source = openKmsg(KMSG, true);
      const watch = await KmsgWatch.start(source.fd!);
      const received: WatchRecords[] = [];
      try {
        watch.read();
        const ours = (): string[] => received.flatMap((m) => m.records).filter((r) => r.message.startsWith(`tapio watch ${nonce} `)).map((r) => r.message);
        // The collector takes nothing meanwhile: after MAX_WAITING messages the worker is paused and the kernel buffers.
        let count = 0;
        while (watch.pauses === 0) {
          writeRecord(`tapio watch ${nonce} ${count++}`);
          // Let the worker's messages in (they come on this thread's event loop).
          await new Promise((resolve) => setImmediate(resolve));
        }
        // Written while it is paused: more than a message holds, so after the pause it reads them in several,
        // each of which the collector takes in an event-loop turn of its own.
        for (const end = count + 600; count < end; ) writeRecord(`tapio watch ${nonce} ${count++}`);
        const abort = new AbortController();
        while (ours().length < count) {
          const next = await Promise.race([watch.next(abort.signal), Bun.sleep(5000).then(() => "timeout" as const)]);
          if (next === "timeout" || next === undefined) throw new Error(`only ${ours().length} of ${count} records arrived`);
          received.push(next);
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(ours()).toEqual(Array.from({ length: count }, (_, i) => `tapio watch ${nonce} ${i}`));
        // Every record the worker read, whoever wrote it: consecutive sequence numbers, nothing overwritten.
        const seqs = received.flatMap((m) => m.records).map((r: KmsgRecord) => r.seq);
        expect(seqs.every((seq, i) => i === 0 || seq === seqs[i - 1]! + 1)).toBe(true);
        expect(received.reduce((n, m) => n + m.overruns, 0)).toBe(0);
        expect(received.flatMap((m) => m.errors)).toEqual([]);
        expect(watch.pauses).toBeGreaterThan(0);
        expect(Math.max(...received.map((m) => m.records.length))).toBe(MAX_RECORDS_PER_MESSAGE);
      } finally {
        await watch.stop();
        source.close();
      }
    },
    30_000,
  );

  test.skipIf(!writable)("the record that completes an OOM kill ends the message it is posted in", async () => {
    const source = openKmsg(KMSG, true);
    const watch = await KmsgWatch.start(source.fd!);
    const received: WatchRecords[] = [];
    try {
      watch.read();
      // The report and records after it, written in one go: the worker reads them together.
      for (const message of oomReport()) writeRecord(message);
      writeRecord(`tapio watch after ${nonce}`);
      const abort = new AbortController();
      while (!received.some((m) => m.records.some((r) => r.message === `tapio watch after ${nonce}`))) {
        const next = await Promise.race([watch.next(abort.signal), Bun.sleep(5000).then(() => "timeout" as const)]);
        if (next === "timeout" || next === undefined) throw new Error("the record after the report did not arrive");
        received.push(next);
      }
      const withKill = received.filter((m) => m.records.some((r) => completesKill(r.message.trim())));
      expect(withKill.length).toBeGreaterThan(0);
      for (const m of withKill) expect(completesKill(m.records.at(-1)!.message.trim())).toBe(true);
    } finally {
      await watch.stop();
      source.close();
    }
  });

  test.skipIf(!writable)(
    "the collector emits an OOM kill before any rule runs on its report or the record after it is taken; the worker read them",
    async () => {
      const rulesPath = join(dir, "watch-rules.json");
      writeFileSync(rulesPath, JSON.stringify({ plugin: "kmsg", source: "watch", rules: [{ type: "temporary", reason: "WatchMarker", pattern: `tapio watch marker ${nonce}` }] }));
      const { open, reads } = countingOpen();
      const rec = recordingContext({ once: false });
      /** what had been emitted when the kill was, and how often this thread had read the device by then */
      let atKill: { emitted: string[]; reads: number } | undefined;
      const emit = rec.ctx.emit;
      rec.ctx.emit = (event, options) => {
        if (event.type === "container.oom" && event.metadata?.command === "python3" && !atKill) {
          atKill = { emitted: rec.events.map((e) => `${(e.event_data.custom as Record<string, string>).reason}: ${(e.event_data.custom as Record<string, string>).message}`), reads: reads.length };
        }
        return emit(event, options);
      };
      const done = new KernelCollector(kernelConfig({ rule_files: [rulesPath] }), open).run(rec.ctx);
      try {
        await waitFor(() => rec.sourceModes.get("kmsg")?.mode === "event" && reads.includes("idle"), "the worker reading the device");
        const readsBefore = reads.length;
        for (const message of oomReport()) writeRecord(message);
        writeRecord(`tapio watch marker ${nonce}`);
        const reasons = () => rec.events.map((e) => (e.event_data.custom as Record<string, string>).reason);
        await waitFor(() => reasons().includes("WatchMarker") && reasons().includes("OOMKilling"), "the rules' events");
        expect(atKill).toBeDefined();
        // Nothing of the report's rules nor the marker's came before the kill; this thread read nothing.
        expect(atKill!.emitted.filter((e) => e.includes("Killed process 6854 (python3)") || e.includes(nonce))).toEqual([]);
        expect(atKill!.reads).toBe(readsBefore);
        expect(reads.length).toBe(readsBefore);
      } finally {
        rec.stop();
        await done;
      }
    },
    20_000,
  );
});
