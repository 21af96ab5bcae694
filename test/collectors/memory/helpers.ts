// Shared by the memory collector tests: a fake /proc and fake cgroup roots
// (v1 and v2 layouts as kubelet makes them) built in temp dirs from the
// recorded files in testdata/.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as v from "valibot";
import { memoryConfigSchema, type MemoryConfig } from "../../../src/collectors/memory/schema.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";

export const TESTDATA = join(import.meta.dir, "testdata");
export const POD_UID = "0d5d6b4a-7d2c-4c43-9a55-0b7e9c1e2f3a";
export const CONTAINER_A = "a1".repeat(32);
export const CONTAINER_B = "b2".repeat(32);

let made = 0;

export function write(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

/** A /proc holding pressure/{cpu,io,memory} and meminfo of one of the recordings. */
export function fakeProc(parent: string, recording: "procfs" | "local"): string {
  const root = join(parent, `proc-${made++}`);
  mkdirSync(root);
  cpSync(join(TESTDATA, recording, "pressure"), join(root, "pressure"), { recursive: true });
  cpSync(join(TESTDATA, recording, "meminfo"), join(root, "meminfo"));
  return root;
}

export interface FakeCgroups {
  root: string;
  /** the directory of a pod's cgroup, or of one of its containers', in a hierarchy (v1: "memory" or "cpu"; v2: "") */
  dir(hierarchy: string, container?: string): string;
}

const V1_CPU_IDLE = "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n";

/**
 * A cgroup v1 root (memory and cpu hierarchies) with one burstable pod of the
 * cgroupfs driver, `kubepods/burstable/pod<uid>/<container>`: every cgroup
 * starts as the recorded fresh memory cgroup, with a cpu.stat at zero.
 */
export function cgroupV1(parent: string, containers: string[]): FakeCgroups {
  const root = join(parent, `cgroup-v1-${made++}`);
  const pod = `kubepods/burstable/pod${POD_UID}`;
  const cgroups = { root, dir: (hierarchy: string, container?: string) => join(root, hierarchy, pod, container ?? "") };
  for (const container of [undefined, ...containers]) {
    cpSync(join(TESTDATA, "cgroup-v1-memory"), cgroups.dir("memory", container), { recursive: true });
    write(join(cgroups.dir("cpu", container), "cpu.stat"), V1_CPU_IDLE);
  }
  return cgroups;
}

export const V2_EVENTS_ZERO = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n";
export const V2_CPU_IDLE = "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n";

/**
 * A cgroup v2 root (the recorded root files, with the cpu and memory
 * controllers) with one burstable pod of the systemd driver:
 * `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`.
 */
export function cgroupV2(parent: string, containers: string[]): FakeCgroups {
  const root = join(parent, `cgroup-v2-${made++}`);
  cpSync(join(TESTDATA, "cgroup-v2-root"), root, { recursive: true });
  write(join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
  const pod = `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll("-", "_")}.slice`;
  const cgroups = { root, dir: (_: string, container?: string) => join(root, pod, container ? `cri-containerd-${container}.scope` : "") };
  for (const container of [undefined, ...containers]) {
    const dir = cgroups.dir("", container);
    write(join(dir, "memory.current"), "0\n");
    write(join(dir, "memory.max"), "max\n");
    write(join(dir, "memory.events"), V2_EVENTS_ZERO);
    write(join(dir, "cpu.stat"), V2_CPU_IDLE);
  }
  return cgroups;
}

export function recorded(path: string): string {
  return readFileSync(join(TESTDATA, path), "utf8");
}

export function memoryConfig(input: Record<string, unknown> = {}): MemoryConfig {
  return v.parse(memoryConfigSchema, { node_name: "node-1", ...input });
}

export function custom(event: CollectorEvent | undefined): Record<string, string> {
  return event!.event_data.custom as Record<string, string>;
}

