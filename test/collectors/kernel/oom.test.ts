import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { parseKmsgLine } from "../../../src/collectors/kernel/kmsg.ts";
import { OomTracker, type OomKill } from "../../../src/collectors/kernel/oom.ts";
import { ownerOf } from "../../../src/collectors/common/kubepods.ts";
import { messages, OOM_6_18, OOM_PRE_5, PROBLEMS } from "./helpers.ts";

function kills(lines: string[]): OomKill[] {
  const tracker = new OomTracker();
  return lines.flatMap((line) => tracker.push(line.trim()) ?? []);
}

const POD = "6c3a2e8e-3f9b-11e8-8f1c-42010a800002";
const CONTAINER = "4f3c1a5d9b2e7c8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

describe("OOM kills in the kernel log", () => {
  test("Linux 6.18, v1 memcg: the oom-kill summary and the Killed process line make one kill", () => {
    const lines = readFileSync(OOM_6_18, "utf8").trimEnd().split("\n").map((l) => parseKmsgLine(l).message);
    expect(kills(lines)).toEqual([
      {
        pid: 6854,
        command: "python3",
        uid: 0,
        memcg: "/oomtest",
        oomMemcg: "/oomtest",
        constraint: "CONSTRAINT_MEMCG",
        scope: "memcg",
        totalVmKb: 75160,
        anonRssKb: 65152,
        fileRssKb: 4748,
        shmemRssKb: 0,
      },
    ]);
  });

  test("before 5.0: 'Task in ... killed as a result of limit of ...' gives the cgroup of the pod's container", () => {
    const [kill] = kills(messages(OOM_PRE_5));
    expect(kill).toEqual({
      pid: 1012,
      command: "heapster",
      memcg: `/kubepods/burstable/pod${POD}/${CONTAINER}`,
      oomMemcg: `/kubepods/burstable/pod${POD}/${CONTAINER}`,
      scope: "memcg",
      totalVmKb: 327128,
      anonRssKb: 306328,
      fileRssKb: 11132,
      shmemRssKb: 12345,
    });
    expect(ownerOf(kill!.memcg!)).toEqual({ podUid: POD, containerId: CONTAINER });
  });

  test("npd's oom_kill problem alone (header lines rate-limited away): a kill without cgroup", () => {
    expect(kills(messages(join(PROBLEMS, "oom_kill")))).toEqual([
      { pid: 1012, command: "heapster", scope: "memcg", totalVmKb: 327128, anonRssKb: 306328, fileRssKb: 11132, shmemRssKb: 12345 },
    ]);
  });

  test("systemd cgroup driver: pod uid with underscores, runtime from the scope name", () => {
    const memcg = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replaceAll("-", "_")}.slice/cri-containerd-${CONTAINER}.scope`;
    const [kill] = kills([
      `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-${CONTAINER}.scope,mems_allowed=0-1,3,oom_memcg=${memcg},task_memcg=${memcg},task=java, worker,pid=4242,uid=1000`,
      "Memory cgroup out of memory: Killed process 4242 (java, worker) total-vm:1000kB, anon-rss:900kB, file-rss:10kB, shmem-rss:0kB, UID:1000 pgtables:184kB oom_score_adj:986",
    ]);
    expect(kill).toMatchObject({ pid: 4242, command: "java, worker", uid: 1000, memcg, scope: "memcg" });
    expect(ownerOf(kill!.memcg!)).toEqual({ podUid: POD, containerId: CONTAINER, runtime: "containerd" });
  });

  test("a system-wide OOM: global_oom, no oom_memcg", () => {
    const [kill] = kills([
      "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/big.service,task=big,pid=77,uid=0",
      "Out of memory: Killed process 77 (big) total-vm:10kB, anon-rss:9kB, file-rss:1kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
    ]);
    expect(kill).toMatchObject({ pid: 77, memcg: "/system.slice/big.service", constraint: "CONSTRAINT_NONE", scope: "global" });
    expect(kill!.oomMemcg).toBeUndefined();
    expect(ownerOf(kill!.memcg!)).toEqual({});
  });

  test("a child sacrificed for the chosen process is the one reported", () => {
    const [kill] = kills([
      "Out of memory: Kill process 100 (parent) score 900 or sacrifice child",
      "Killed process 101 (child) total-vm:10kB, anon-rss:9kB, file-rss:1kB",
    ]);
    expect(kill).toMatchObject({ pid: 101, command: "child", scope: "global" });
  });

  test("what a report whose kill line was lost said does not stick to the next report", () => {
    const lines = messages(OOM_PRE_5);
    const withoutKill = lines.slice(0, -1);
    const [kill] = kills([...withoutKill, "other invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0", "Killed process 5 (other) total-vm:1kB, anon-rss:1kB, file-rss:0kB"]);
    expect(kill).toEqual({ pid: 5, command: "other", totalVmKb: 1, anonRssKb: 1, fileRssKb: 0 });
  });

  test("property: any message sequence is followed without throwing", () => {
    const real = [...messages(OOM_PRE_5), "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/a,task_memcg=/a,task=x,pid=1,uid=0"];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom(...real))), (lines) => {
        for (const kill of kills(lines)) expect(Number.isSafeInteger(kill.pid)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
