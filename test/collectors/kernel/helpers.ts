// Shared by the kernel collector tests: test data, kmsg records from plain
// kernel messages, configs, waiting.
import { accessSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import type { OpenKmsg } from "../../../src/collectors/kernel/index.ts";
import { openKmsg, type KmsgRead } from "../../../src/collectors/kernel/kmsg.ts";
import { kernelConfigSchema, type KernelConfig } from "../../../src/collectors/kernel/schema.ts";

export const TESTDATA = join(import.meta.dir, "testdata");
export const OOM_6_18 = join(TESTDATA, "kmsg/oom-memcg-v1-kernel-6.18.kmsg");
export const OOM_PRE_5 = join(TESTDATA, "oom-pre-5.0-kubepods.log");
export const PROBLEMS = join(TESTDATA, "npd-problems");

/** The lines of a plain-text kernel log (no kmsg header), as the npd problem files hold them. */
export function messages(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line !== "");
}

/** Plain kernel messages as /dev/kmsg records, numbered from `seq`. */
export function asKmsg(lines: string[], seq = 1, level = 4): string {
  return lines.map((line, i) => `${level},${seq + i},${(seq + i) * 1000},-;${line}\n`).join("");
}

export function kernelConfig(input: Record<string, unknown> = {}): KernelConfig {
  return v.parse(kernelConfigSchema, { node_name: "node-1", ...input });
}

/** openKmsg, recording the kind of every read, so a test can wait until the collector has read what is there. */
export function countingOpen(): { open: OpenKmsg; reads: Array<KmsgRead["kind"]> } {
  const reads: Array<KmsgRead["kind"]> = [];
  const open: OpenKmsg = (path, fromEnd) => {
    const source = openKmsg(path, fromEnd);
    return {
      device: source.device,
      skippedThrough: source.skippedThrough,
      fd: source.fd,
      read: () => {
        const read = source.read();
        reads.push(read.kind);
        return read;
      },
      close: () => source.close(),
    };
  };
  return { open, reads };
}

/** Whether this process may access `path` with `mode` (tests that need /dev/kmsg skip otherwise). */
export function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}
