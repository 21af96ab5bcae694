// The kernel telling the collector that a pod's memory counters moved, so it
// re-reads that pod at once instead of at the next poll:
// - cgroup v2: inotify on each cgroup's memory.events (the kernel raises a
//   modify event on every change, at most one per 20 ms and file);
// - cgroup v1: memory.oom_control's OOM notification, an eventfd registered
//   through cgroup.event_control (Documentation/admin-guide/cgroup-v1/memory.rst
//   §10), polled by the FdPoller's worker. The kernel signals it when the
//   cgroup or an ancestor goes OOM (before the victim is killed), and once more
//   when the cgroup is removed.
// The set follows the cgroups each poll of the tree finds.
import { closeSync, openSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import { EFD_CLOEXEC, EFD_NONBLOCK, POLLIN } from "../../libc.ts";
import { CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, errno, fsType, libc } from "./libc.ts";
import type { FdPoller } from "./poller.ts";

/** A cgroup to watch: its path below the hierarchy (the key), its directory, and the path of the pod it belongs to. */
export interface NotifiedCgroup {
  path: string;
  dir: string;
  pod: string;
}

export interface CgroupNotifier {
  readonly version: 1 | 2;
  /** Watches the cgroups not watched yet and forgets those not in `cgroups`; an error means it cannot (then it watches nothing). */
  sync(cgroups: readonly NotifiedCgroup[]): string | undefined;
  /** The pod whose cgroup's eventfd this is (v1), if it is one of ours. */
  podOf(id: number): string | undefined;
  close(): void;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

/** cgroup v2: one inotify watch per memory.events. */
export class MemoryEventsWatcher implements CgroupNotifier {
  readonly version = 2;
  readonly #watchers = new Map<string, FSWatcher>();

  constructor(readonly onChange: (pod: string) => void) {}

  sync(cgroups: readonly NotifiedCgroup[]): string | undefined {
    const wanted = new Set<string>();
    for (const cgroup of cgroups) {
      wanted.add(cgroup.path);
      if (this.#watchers.has(cgroup.path)) continue;
      try {
        const watcher = watch(`${cgroup.dir}/memory.events`, { persistent: false }, () => this.onChange(cgroup.pod));
        // The file went away with its cgroup: the next sync forgets it.
        watcher.on("error", () => watcher.close());
        this.#watchers.set(cgroup.path, watcher);
      } catch (err) {
        if (gone(err)) continue;
        // Out of inotify watches (fs.inotify.max_user_watches), or no inotify at all.
        this.close();
        return `cannot watch ${cgroup.dir}/memory.events: ${message(err)}`;
      }
    }
    for (const [path, watcher] of this.#watchers) {
      if (wanted.has(path)) continue;
      watcher.close();
      this.#watchers.delete(path);
    }
    return undefined;
  }

  podOf(): undefined {
    return undefined;
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }
}

/** cgroup v1: one OOM eventfd per memory cgroup, handed to the poller. */
export class OomEventfds implements CgroupNotifier {
  readonly version = 1;
  /** by cgroup path: the poller's id of its eventfd */
  readonly #ids = new Map<string, number>();
  readonly #pods = new Map<number, string>();
  #checked = false;

  constructor(
    readonly poller: FdPoller,
    readonly hierarchy: string,
  ) {}

  sync(cgroups: readonly NotifiedCgroup[]): string | undefined {
    const loaded = libc();
    if ("error" in loaded) return loaded.error;
    const c = loaded.libc;
    if (!this.#checked) {
      // A regular file (a test's fake tree) would take the registration as its content.
      const type = fsType(c, this.hierarchy);
      if (type !== CGROUP_SUPER_MAGIC) return `${this.hierarchy} is not a cgroup v1 mount${type === CGROUP2_SUPER_MAGIC ? "" : " (a plain directory?)"}: no OOM notifications`;
      this.#checked = true;
    }
    const wanted = new Set<string>();
    for (const cgroup of cgroups) {
      wanted.add(cgroup.path);
      if (this.#ids.has(cgroup.path)) continue;
      const efd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (efd < 0) {
        this.close();
        return `eventfd(2) failed: errno ${errno(c)}`;
      }
      try {
        // The registration holds the cgroup, not the file: memory.oom_control is closed at once.
        const control = openSync(`${cgroup.dir}/memory.oom_control`, "r");
        try {
          writeFileSync(`${cgroup.dir}/cgroup.event_control`, `${efd} ${control}`);
        } finally {
          closeSync(control);
        }
      } catch (err) {
        c.close(efd);
        if (gone(err)) continue;
        this.close();
        return `cannot register an OOM eventfd with ${cgroup.dir}/cgroup.event_control: ${message(err)}`;
      }
      const id = this.poller.add(efd, POLLIN, true);
      this.#ids.set(cgroup.path, id);
      this.#pods.set(id, cgroup.pod);
    }
    for (const [path, id] of this.#ids) {
      if (wanted.has(path)) continue;
      // The poller closes the eventfd, which ends the registration.
      this.poller.remove(id);
      this.#ids.delete(path);
      this.#pods.delete(id);
    }
    return undefined;
  }

  podOf(id: number): string | undefined {
    return this.#pods.get(id);
  }

  close(): void {
    for (const id of this.#ids.values()) this.poller.remove(id);
    this.#ids.clear();
    this.#pods.clear();
  }
}

/**
 * Watches the folders where pod and container cgroups appear (the kubepods
 * roots, the QoS folders, each pod: cgroupfs reports a mkdir to inotify), so
 * that a new cgroup is read, and its OOM notification set up, at once rather
 * than at the next interval: a container that runs out of memory seconds
 * after it starts is one a crash loop repeats.
 */
export class CgroupFolderWatcher {
  readonly #watchers = new Map<string, FSWatcher>();

  constructor(readonly onNewOrGone: () => void) {}

  sync(dirs: readonly string[]): void {
    const wanted = new Set(dirs);
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        // "rename": a cgroup made or removed; "change" events are its files' counters moving.
        const watcher = watch(dir, { persistent: false }, (event) => {
          if (event === "rename") this.onNewOrGone();
        });
        watcher.on("error", () => watcher.close());
        this.#watchers.set(dir, watcher);
      } catch {
        // Gone already, or out of inotify watches: the interval's walk still finds what appears there.
      }
    }
    for (const [dir, watcher] of this.#watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.#watchers.delete(dir);
    }
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }
}
