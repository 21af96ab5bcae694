// The cgroup side: where the memory and cpu controllers are mounted (v1, v2
// or hybrid), the pod and container cgroups kubelet created under them, and
// what their memory and cpu files say. Reads are synchronous: cgroupfs
// files are built in memory, and a node's hundreds of them are read each
// poll (the collector lets the event loop run between pods). The cgroups
// found are kept from poll to poll with their files' paths and last parse,
// so a poll allocates little more than the texts it reads.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { under } from "../common/paths.ts";
import { containerOf, podUidOf } from "../common/kubepods.ts";
import { parseValue } from "./parse.ts";
import { parseKeyed } from "../common/keyed.ts";

export interface CgroupLayout {
  version: 1 | 2;
  /** the hierarchy holding the memory controller (the cgroup root on v2) */
  memory: string | undefined;
  /** the hierarchy holding the cpu controller (the cgroup root on v2) */
  cpu: string | undefined;
}

function isDir(path: string): boolean {
  try {
    // A missing path is the usual answer (v1 hierarchies on a v2 host, `kubepods` beside
    // `kubepods.slice`), asked every poll: undefined costs a fifth of a thrown error.
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/**
 * v1 when a memory or cpu hierarchy is mounted below the root (also on hybrid
 * hosts, where the cgroup2 mount under `unified` holds no controllers), v2
 * when the root itself is a cgroup2 mount; undefined when it is neither.
 */
export function detectLayout(root: string): CgroupLayout | undefined {
  const memory = under(root, "memory");
  // systemd mounts cpu and cpuacct together; `cpu` is then a symlink to the pair, or absent.
  const cpu = ["cpu", "cpu,cpuacct", "cpuacct,cpu"].map((name) => under(root, name)).find(isDir);
  if (isDir(memory) || cpu) return { version: 1, memory: isDir(memory) ? memory : undefined, cpu };
  if (existsSync(under(root, "cgroup.controllers"))) return { version: 2, memory: root, cpu: root };
  return undefined;
}

export interface ContainerCgroup {
  /** path below the hierarchy root: the same in every v1 hierarchy, so it keys the state */
  path: string;
  files: CgroupFiles;
  /** the container id, or the cgroup's name when it is not one a known runtime gives */
  id: string;
  runtime?: string;
}

export interface PodCgroup {
  path: string;
  files: CgroupFiles;
  podUid: string;
  containers: ContainerCgroup[];
}

/** kubelet's top cgroup: `kubepods.slice` with the systemd driver, `kubepods` with cgroupfs. */
const KUBEPODS = ["kubepods.slice", "kubepods"];

function subdirs(dir: string): string[] {
  try {
    const names: string[] = [];
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) names.push(e.name);
    return names;
  } catch (err) {
    // A pod or container removed while we walk: it is simply gone.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Finds the pod cgroups under a hierarchy, with their container cgroups.
 * Pods sit directly under kubepods (Guaranteed) or one level down in a QoS
 * cgroup (burstable, besteffort). A cgroup seen in the last walk is the same
 * object again (its name is not parsed again, its files keep their last
 * parse); one gone from the walk is forgotten.
 */
export class PodFinder {
  readonly #hierarchy: string;
  #pods = new Map<string, PodCgroup>();
  #containers = new Map<string, ContainerCgroup>();
  /** where the last find() looked: kubepods roots, QoS folders and pods, where new pods and containers appear */
  #dirs: string[] = [];

  constructor(hierarchy: string) {
    this.#hierarchy = hierarchy;
  }

  /** Undefined when the hierarchy has no kubepods cgroup at all (not a Kubernetes node, or the host path is not mounted). */
  find(): PodCgroup[] | undefined {
    const hierarchy = this.#hierarchy;
    const roots = KUBEPODS.filter((name) => isDir(under(hierarchy, name)));
    if (roots.length === 0) return undefined;
    const pods: PodCgroup[] = [];
    const seenPods = new Map<string, PodCgroup>();
    const seenContainers = new Map<string, ContainerCgroup>();
    const dirs: string[] = [];
    const visit = (path: string, depth: number): void => {
      dirs.push(under(hierarchy, path));
      for (const name of subdirs(under(hierarchy, path))) {
        const child = `${path}/${name}`;
        let pod = this.#pods.get(child);
        if (!pod) {
          const podUid = podUidOf(name);
          if (podUid) pod = { path: child, files: new CgroupFiles(under(hierarchy, child)), podUid, containers: [] };
        }
        if (pod) {
          pod.containers = subdirs(pod.files.dir).map((c) => {
            const path = `${child}/${c}`;
            const known = this.#containers.get(path) ?? container(hierarchy, path, c);
            seenContainers.set(path, known);
            return known;
          });
          seenPods.set(child, pod);
          pods.push(pod);
          dirs.push(pod.files.dir);
        } else if (depth === 0) visit(child, 1);
      }
    };
    for (const root of roots) visit(root, 0);
    this.#pods = seenPods;
    this.#containers = seenContainers;
    this.#dirs = dirs;
    return pods;
  }

  /** The folders the last find() listed: a new pod or container cgroup appears in one of them. */
  get dirs(): readonly string[] {
    return this.#dirs;
  }
}

function container(hierarchy: string, path: string, name: string): ContainerCgroup {
  const owner = containerOf(name);
  const c: ContainerCgroup = { path, files: new CgroupFiles(under(hierarchy, path)), id: owner?.id ?? name };
  if (owner?.runtime) c.runtime = owner.runtime;
  return c;
}

/**
 * Reads a cgroup file; undefined when it does not exist (the cgroup went
 * away, or this kernel does not have the file). Other errors are thrown.
 */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || !existsSync(path)) return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
}

export interface MemoryReading {
  usage?: number;
  /** Infinity when unlimited */
  limit?: number;
  /**
   * Monotonic event counters: v2 memory.events (low, high, max, oom,
   * oom_kill, ...), v1 failcnt (limit hits) and oom_kill. Read-only.
   */
  counters: ReadonlyMap<string, number>;
  /** v1 memory.oom_control: the cgroup is under OOM right now (only with the OOM killer disabled) */
  underOom?: boolean;
}

/**
 * v1 page counters cap at PAGE_COUNTER_MAX pages, which reads as about 2^63
 * bytes: anything this large means "no limit".
 */
const UNLIMITED = 2 ** 60;

const NO_COUNTERS: ReadonlyMap<string, number> = new Map();

/** Told about a cgroup file that does not parse: which kind of file (the parse error's source) and why. */
export type ParseErrorSink = (file: string, detail: string) => void;

/**
 * The files of one cgroup, each with its path and its last text and parse:
 * a text equal to the last one is not parsed again (memory.max and
 * memory.events change rarely). Callers must not change what they get.
 */
export class CgroupFiles {
  readonly dir: string;
  readonly #files = new Map<string, PolledFile>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** One file parsed; undefined when it is missing, or does not parse (told to onError each time it is read so). */
  read<T>(file: string, parse: (text: string) => T, onError: ParseErrorSink): T | undefined {
    let f = this.#files.get(file);
    if (!f) this.#files.set(file, (f = { path: `${this.dir}/${file}`, text: undefined, value: undefined }));
    const text = readOptional(f.path);
    if (text !== undefined && text === f.text) return f.value as T;
    f.text = undefined;
    f.value = undefined;
    if (text === undefined) return undefined;
    try {
      f.value = parse(text);
    } catch (err) {
      onError(file, `${f.path}: ${(err as Error).message}`);
      return undefined;
    }
    f.text = text;
    return f.value as T;
  }
}

interface PolledFile {
  readonly path: string;
  /** the text of the last read that parsed; undefined after one that did not (or a missing file) */
  text: string | undefined;
  value: unknown;
}

/** The memory files of one cgroup; undefined when the cgroup is gone. */
export function readMemory(files: CgroupFiles, version: 1 | 2, onError: ParseErrorSink): MemoryReading | undefined {
  if (version === 2) {
    const usage = files.read("memory.current", parseValue, onError);
    const limit = files.read("memory.max", parseValue, onError);
    const events = files.read("memory.events", parseKeyed, onError);
    // Nothing read: the cgroup may be gone (checked only then: one stat less per cgroup and poll).
    if (usage === undefined && limit === undefined && events === undefined && !existsSync(files.dir)) return undefined;
    return { usage, limit, counters: events ?? NO_COUNTERS };
  }
  const usage = files.read("memory.usage_in_bytes", parseValue, onError);
  const limit = files.read("memory.limit_in_bytes", parseValue, onError);
  const failcnt = files.read("memory.failcnt", parseValue, onError);
  const oomControl = files.read("memory.oom_control", parseKeyed, onError);
  if (usage === undefined && limit === undefined && failcnt === undefined && oomControl === undefined && !existsSync(files.dir)) return undefined;
  const counters = new Map<string, number>();
  if (failcnt !== undefined) counters.set("failcnt", failcnt);
  // oom_kill is in memory.oom_control since Linux 4.13
  const oomKill = oomControl?.get("oom_kill");
  if (oomKill !== undefined) counters.set("oom_kill", oomKill);
  const reading: MemoryReading = { usage, limit: limit !== undefined && limit >= UNLIMITED ? Infinity : limit, counters };
  // With the OOM killer on, the kernel also marks the cgroup under OOM, for the moment it signals
  // the OOM eventfd and before it kills (memcg1_oom_prepare): a reader woken by that signal can
  // see under_oom 1 with the kill still to come. Only a cgroup whose killer is off is held there.
  const underOom = oomControl?.get("under_oom");
  if (underOom !== undefined) reading.underOom = underOom > 0 && oomControl!.get("oom_kill_disable") !== 0;
  return reading;
}

export interface CpuReading {
  /** enforcement periods in which the cgroup was runnable */
  periods: number;
  /** periods in which it ran out of quota */
  throttled: number;
  throttledNs: number;
}

/** cpu.stat of one cgroup (v1 throttled_time in ns, v2 throttled_usec); undefined when it has none. */
export function readCpu(files: CgroupFiles, onError: ParseErrorSink): CpuReading | undefined {
  const stat = files.read("cpu.stat", parseKeyed, onError);
  if (!stat) return undefined;
  const periods = stat.get("nr_periods");
  const throttled = stat.get("nr_throttled");
  const ns = stat.get("throttled_time") ?? mul(stat.get("throttled_usec"), 1000);
  // The v2 root and cgroups without the cpu controller have no bandwidth fields.
  if (periods === undefined || throttled === undefined || ns === undefined) return undefined;
  return { periods, throttled, throttledNs: ns };
}

function mul(value: number | undefined, by: number): number | undefined {
  return value === undefined ? undefined : value * by;
}
