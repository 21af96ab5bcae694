// The cgroups bench:detect creates in the v1 memory hierarchy, all under one
// top cgroup of its own (tapio-detect-<nonce>), and removed again, with
// every process in them killed, even when a case fails:
//   <top>/kubepods/burstable/pod<uid>/<container id>   a pod laid out as kubelet's cgroupfs driver
//                                                      lays one out (process and OOM cases)
//   <top>-psi                                          the memory-pressure generator, outside kubepods
// The memory collector is pointed at a cgroup root of its own (a folder whose
// `memory` links to <top>), so it sees only this pod, not the node's.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const MEMCG_V1 = "/sys/fs/cgroup/memory";

/** Why cgroup v1 memory cases cannot run here, or undefined when they can. */
export function memcgV1Problem(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  if (!existsSync(join(MEMCG_V1, "memory.limit_in_bytes"))) return `no cgroup v1 memory controller at ${MEMCG_V1}`;
  return undefined;
}

/** Why the v2 OOM case is not measured: bench:detect measures v1, where this machine has the memory controller. */
export function memcgV2Note(): string {
  for (const root of ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]) {
    const controllers = join(root, "cgroup.controllers");
    if (!existsSync(controllers)) continue;
    if (readFileSync(controllers, "utf8").split(/\s+/).includes("memory")) return `cgroup v2 at ${root} has the memory controller, but bench:detect has no v2 OOM case yet`;
    return `the cgroup v2 mount ${root} has no memory controller on this machine (it is on v1)`;
  }
  return "no cgroup v2 mount";
}

const hex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");

export class DetectCgroups {
  readonly top: string;
  readonly pod: string;
  readonly podUid = crypto.randomUUID();
  /** created, in order: removed deepest first */
  readonly #created: string[] = [];

  constructor(
    readonly nonce: string,
    /** the folder made to look like a cgroup root holding only <top> */
    readonly fakeRoot: string,
  ) {
    this.top = join(MEMCG_V1, `tapio-detect-${nonce}`);
    this.pod = join(this.top, "kubepods", "burstable", `pod${this.podUid}`);
    for (const dir of [this.top, join(this.top, "kubepods"), join(this.top, "kubepods", "burstable"), this.pod]) this.mkdir(dir);
    mkdirSync(fakeRoot, { recursive: true });
    symlinkSync(this.top, join(fakeRoot, "memory"));
  }

  /** The pattern that marks this run's container cgroups in /proc/<pid>/cgroup (process collector). */
  get cgroupPattern(): string {
    return `tapio-detect-${this.nonce}/kubepods`;
  }

  mkdir(dir: string, limitBytes?: number): string {
    mkdirSync(dir);
    this.#created.push(dir);
    if (limitBytes !== undefined) writeFileSync(join(dir, "memory.limit_in_bytes"), String(limitBytes));
    return dir;
  }

  /** A new container cgroup in the pod: its id (64 hex, as containerd's) and folder. */
  container(limitBytes?: number): { id: string; dir: string } {
    const id = hex(32);
    return { id, dir: this.mkdir(join(this.pod, id), limitBytes) };
  }

  /** A cgroup beside <top>, outside the pod tree. */
  sibling(name: string, limitBytes?: number): string {
    return this.mkdir(`${this.top}-${name}`, limitBytes);
  }

  /** Kills every process in `dir` (they are the benchmark's own) and removes it. */
  async remove(dir: string): Promise<void> {
    await emptyCgroup(dir);
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const i = this.#created.indexOf(dir);
    if (i >= 0) this.#created.splice(i, 1);
  }

  async removeAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const dir of [...this.#created].reverse()) {
      try {
        await this.remove(dir);
      } catch (err) {
        problems.push(`${dir}: ${(err as Error).message}`);
      }
    }
    return problems;
  }
}

/** The pids in a cgroup now. */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILLs what runs in `dir` until nothing does (a shell may fork while it is being killed). */
export async function emptyCgroup(dir: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = cgroupPids(dir);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(", ")} in ${dir} did not die`);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await Bun.sleep(10);
  }
}

/**
 * Removes what an earlier run that was killed outright left behind: the
 * cgroups of a tapio-detect-<pid>-... top whose process is gone.
 */
export async function sweepStale(): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(MEMCG_V1);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = /^tapio-detect-(\d+)-/.exec(name)?.[1];
    if (!pid || existsSync(`/proc/${pid}`)) continue;
    const dirs: string[] = [];
    const walk = (dir: string) => {
      dirs.push(dir);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    };
    walk(join(MEMCG_V1, name));
    for (const dir of dirs.reverse()) {
      await emptyCgroup(dir);
      rmdirSync(dir);
    }
    removed.push(name);
  }
  return removed;
}
