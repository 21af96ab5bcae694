import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { isKernelThread, parseBootTime, parseCgroup, parseCmdline, parseStat } from "../../../src/collectors/process/procfs.ts";

const FIXTURES = resolve(import.meta.dir, "testdata");
const fixture = (path: string) => readFileSync(join(FIXTURES, path), "utf8");
const testdata = (name: string) => readFileSync(join(import.meta.dir, "testdata", name), "utf8");

/** Runs a parser, collecting what it reports. */
function parse<T>(run: (fail: (d: string) => void) => T): { value: T; errors: string[] } {
  const errors: string[] = [];
  const value = run((d) => errors.push(d));
  return { value, errors };
}

const KUBEPODS = /kubepods/;
const POD_UID = "6b2d5c4e-1b0a-4f0e-9c9f-2f0a7e6d8c11";
const CONTAINER_ID = "3f1c2e4d5b6a7988a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8";

describe("parseStat", () => {
  test("the three procfs layouts and a 6.18 kernel's", () => {
    const vim = parse((f) => parseStat(fixture("procfs/proc/26231/stat"), f));
    expect(vim.errors).toEqual([]);
    expect(vim.value).toEqual({ pid: 26231, comm: "vim", ppid: 5392, flags: 4218880, startTicks: 82375 });
    expect(isKernelThread(vim.value!)).toBe(false);

    // A kernel thread whose fields hold i64 extremes (-9223372036854775808) and whose stat names pid 33.
    const ata = parse((f) => parseStat(fixture("procfs/proc/26232/stat"), f));
    expect(ata.errors).toEqual([]);
    expect(ata.value).toMatchObject({ pid: 33, comm: "ata_sff", ppid: 2, startTicks: 5 });
    expect(isKernelThread(ata.value!)).toBe(true);

    const load = parse((f) => parseStat(fixture("procfs/proc/27079/stat"), f));
    expect(load.value).toMatchObject({ pid: 27079, comm: "pthread_load", ppid: 1, startTicks: 4289574 });
    expect(isKernelThread(load.value!)).toBe(false);

    const bash = parse((f) => parseStat(fixture("local/proc/pid-stat.txt"), f));
    expect(bash.value).toMatchObject({ pid: 2187, comm: "bash", ppid: 2186, startTicks: 19388 });
  });

  test("a comm with spaces, parentheses and a newline does not shift the fields", () => {
    const line = fixture("procfs/proc/26231/stat");
    for (const comm of ["my proc", "a) b (c", "(sd-pam)", ") R 1 2 3", "x\ny", ""]) {
      const { value, errors } = parse((f) => parseStat(line.replace("(vim)", `(${comm})`), f));
      expect(errors).toEqual([]);
      expect(value).toEqual({ pid: 26231, comm, ppid: 5392, flags: 4218880, startTicks: 82375 });
    }
  });

  test("every truncation fails: short of field 22, or without the final newline", () => {
    const line = fixture("procfs/proc/26231/stat");
    for (let cut = 0; cut < line.length; cut++) {
      const { value, errors } = parse((f) => parseStat(line.slice(0, cut), f));
      expect(value).toBeUndefined();
      expect(errors.length).toBe(1);
    }
    // Cut after field 22 but newline-terminated: the fields it needs are whole, so it parses.
    const fields = line.trim().split(" ");
    expect(parse((f) => parseStat(`${fields.slice(0, 22).join(" ")}\n`, f)).value?.startTicks).toBe(82375);
    expect(parse((f) => parseStat(`${fields.slice(0, 21).join(" ")}\n`, f)).value).toBeUndefined();
  });

  test("garbage", () => {
    for (const text of ["", "\n", "hello\n", "12 vim R 1\n", "x (vim) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n", "1 (a) R -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n"]) {
      const { value, errors } = parse((f) => parseStat(text, f));
      expect(value).toBeUndefined();
      expect(errors.length).toBe(1);
    }
  });
});

describe("parseCgroup", () => {
  test("v1 cgroupfs, v2 containerd and CRI-O: pod uid and container id", () => {
    for (const name of ["cgroup-v1-kubepods", "cgroup-v2-containerd", "cgroup-v2-crio"]) {
      const { value, errors } = parse((f) => parseCgroup(testdata(name), KUBEPODS, f));
      expect(errors).toEqual([]);
      expect(value?.podUid).toBe(POD_UID);
      expect(value?.containerId).toBe(CONTAINER_ID);
      expect(value?.path).toContain("kubepods");
    }
  });

  test("a pod cgroup without a container, a host service, this VM's v1 hierarchy", () => {
    const pod = parse((f) => parseCgroup(testdata("cgroup-v2-pod-only"), KUBEPODS, f)).value;
    expect(pod).toEqual({ path: expect.stringContaining("kubepods-burstable-pod"), podUid: POD_UID });
    expect(parse((f) => parseCgroup(testdata("cgroup-v2-host"), KUBEPODS, f)).value).toEqual({ path: "/system.slice/containerd.service" });
    // No line matches: the v2 line ("0::/") is the process's cgroup.
    expect(parse((f) => parseCgroup(fixture("local/proc/self-cgroup.txt"), KUBEPODS, f)).value).toEqual({ path: "/" });
    // A pattern of the operator's choosing picks the line it names.
    expect(parse((f) => parseCgroup(fixture("local/proc/self-cgroup.txt"), /process_api/, f)).value).toEqual({ path: "/process_api/405d9f2463178402037445b2d057d83b" });
  });

  test("garbage and truncation", () => {
    for (const text of ["", "\n", "garbage\n", "0::relative\n", testdata("cgroup-v1-kubepods").slice(0, 40)]) {
      const { value, errors } = parse((f) => parseCgroup(text, KUBEPODS, f));
      expect(value).toBeUndefined();
      expect(errors.length).toBe(1);
    }
  });
});

test("parseCmdline splits argv on NUL", () => {
  expect(parseCmdline(fixture("procfs/proc/26231/cmdline"))).toEqual(["vim", "test.go", "+10"]);
  expect(parseCmdline("")).toEqual([]);
  expect(parseCmdline("a b\0\0c\0")).toEqual(["a b", "", "c"]);
});

test("parseBootTime", () => {
  expect(parse((f) => parseBootTime(fixture("procfs/proc/stat"), f)).value).toBe(1418183276);
  expect(parse((f) => parseBootTime(fixture("local/proc/stat"), f)).value).toBe(1795643552);
  for (const text of ["", "cpu 1 2 3\n", "btime 1795643552", "btime x\n"]) {
    const { value, errors } = parse((f) => parseBootTime(text, f));
    expect(value).toBeUndefined();
    expect(errors).toEqual(["no btime line"]);
  }
});

describe("properties: any input parses or is reported, never throws", () => {
  const stat = fixture("procfs/proc/26231/stat");
  const cgroup = testdata("cgroup-v1-kubepods");
  /** Arbitrary text, and fixture text cut, spliced or overwritten at random. */
  const mangled = (base: string) =>
    fc.oneof(
      fc.string({ unit: "binary", maxLength: 400 }),
      fc.nat({ max: base.length }).map((n) => base.slice(0, n)),
      fc.tuple(fc.nat({ max: base.length }), fc.string({ maxLength: 20 })).map(([n, s]) => base.slice(0, n) + s + base.slice(n)),
      fc.tuple(fc.nat({ max: base.length }), fc.nat({ max: 30 }), fc.string({ maxLength: 30 })).map(([n, k, s]) => base.slice(0, n) + s + base.slice(n + k)),
    );

  test("parseStat: a result, or exactly one reported error", () => {
    fc.assert(
      fc.property(mangled(stat), (text) => {
        const { value, errors } = parse((f) => parseStat(text, f));
        expect(value === undefined ? errors.length : errors.length + 1).toBe(1);
        if (value) expect(Number.isSafeInteger(value.startTicks) && Number.isSafeInteger(value.ppid)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test("parseCgroup: a result, or exactly one reported error", () => {
    fc.assert(
      fc.property(mangled(cgroup), (text) => {
        const { value, errors } = parse((f) => parseCgroup(text, KUBEPODS, f));
        expect(value === undefined ? errors.length : errors.length + 1).toBe(1);
        if (value?.containerId) expect(value.containerId).toMatch(/^[0-9a-f]{64}$/);
      }),
      { numRuns: 2000 },
    );
  });

  test("parseBootTime and parseCmdline never throw", () => {
    fc.assert(
      fc.property(mangled(fixture("local/proc/stat")), (text) => {
        const { value, errors } = parse((f) => parseBootTime(text, f));
        expect(value === undefined ? errors.length : errors.length + 1).toBe(1);
        expect(Array.isArray(parseCmdline(text))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
