// Node and pod resource pressure without eBPF: PSI (/proc/pressure/*),
// /proc/meminfo, and the memory and cpu files of each pod's cgroups. Every
// reading goes through a threshold or a counter delta, so events mark
// changes: pressure starting or ending, a limit hit, an OOM kill. PSI and the
// cgroups' memory events are read when the kernel says they changed (PSI
// triggers, inotify, v1 OOM eventfds) where it can; the rest every interval.
import { closeSync, existsSync } from "node:fs";
import type { EventInput, EventMetadata, Severity } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { readTextSync, under, yieldToEventLoop } from "../common/paths.ts";
import { readableDirectory, readableFile } from "../common/source-checks.ts";
import { emitAll, poll, PollNudge } from "../common/poll.ts";
import { detectLayout, PodFinder, readCpu, readMemory, type ContainerCgroup, type CpuReading, type ParseErrorSink, type PodCgroup } from "./cgroup.ts";
import { parseMeminfo, parsePsi } from "./parse.ts";
import { memoryConfigSchema, type MemoryConfig } from "./schema.ts";
import { Counters, Levels } from "./state.ts";
import { memoryEvents } from "./events.ts";
import { FdPoller, type Fired } from "./poller.ts";
import { openPsiTriggers, PSI_WINDOW_US, type PsiKind } from "./psi-triggers.ts";
import { CgroupFolderWatcher, MemoryEventsWatcher, OomEventfds, type CgroupNotifier } from "./cgroup-notify.ts";
import { POLLERR, POLLHUP, POLLNVAL, POLLPRI } from "../../libc.ts";

const PSI_RESOURCES = ["memory", "cpu", "io"] as const;
type PsiResource = (typeof PSI_RESOURCES)[number];
const PSI_KINDS = ["some", "full"] as const;
/** PSI's averages are recomputed every 2 s: after a trigger, the file is read at that pace until the level is decided. */
const PSI_FOLLOW_MS = 2000;
/**
 * cgroup v1 signals an OOM before the kernel has picked and killed the victim
 * (oom_kill grows after its report is written: well under a millisecond on
 * 6.18, longer on a slow console): a notified pod whose read shows nothing
 * yet is read again after each of these delays, until it does. Every
 * millisecond for 20 ms, so the kill is seen within a millisecond of the
 * counter; then twice more for an OOM that takes longer (or kills nothing:
 * oom_kill_disable). Only after a notification: nothing runs otherwise.
 */
export const OOM_RECHECK_MS: readonly number[] = [...Array.from({ length: 20 }, () => 1), 100, 500];
/** The actions that end an OOM's re-reads: the kill counted, or the cgroup held under OOM (no killer). */
const OOM_OUTCOMES = new Set(["oom_kill", "oom_group_kill", "under_oom"]);

/** Whether `event` shows the outcome of an OOM: a container.memory_pressure of one of OOM_OUTCOMES. */
export function isOomOutcome(event: EventInput): boolean {
  const action = (event.event_data.container as { action?: unknown } | undefined)?.action;
  return typeof action === "string" && OOM_OUTCOMES.has(action);
}

/** Pods read between two turns of the event loop (each pod: a few files per cgroup, read synchronously). */
const PODS_PER_CHUNK = 32;
/**
 * Node-wide pressure is about the node, read from the kernel: `node.*`, not
 * `kubelet.*` (which is for what the kubelet's API reports). Memory PSI and
 * MemAvailable share one type; custom.source tells them apart.
 */
const NODE_PRESSURE_TYPES = { memory: "node.memory_pressure", cpu: "node.cpu_pressure", io: "node.io_pressure" } as const;
/** The state scope of node-wide readings (PSI, meminfo); cgroups are scoped by their path. */
const NODE = "node";

/** The memory counters reported, worst first: the worst that grew sets the event's action and severity. */
const COUNTERS: ReadonlyArray<readonly [string, Severity]> = [
  ["oom_kill", "error"],
  ["oom_group_kill", "error"],
  ["oom", "high"],
  ["max", "warning"],
  ["failcnt", "warning"],
  ["high", "medium"],
  ["low", "low"],
];
/**
 * v1 failcnt counts the limit hits of the cgroup itself; the other counters
 * also count its descendants', so a pod's share is what its containers do
 * not explain.
 */
const LOCAL_COUNTERS = new Set(["failcnt"]);

/** A cgroup the events are about: a pod's, or one of its containers'. */
interface Subject {
  path: string;
  podUid: string;
  container?: ContainerCgroup;
}

function percent(value: number): string {
  return value.toFixed(2);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class MemoryCollector implements Collector {
  readonly #levels = new Levels();
  readonly #counters = new Counters();
  /** The first walk of the pod cgroups takes baselines; cgroups that appear later count from zero. */
  #baselined = false;
  readonly #cgroupRoot: string;
  readonly #nodeName: string;
  /** by hierarchy: the cgroups found there, kept from poll to poll */
  readonly #finders = new Map<string, PodFinder>();
  /** the kernel's notifications are used (not --once, notify on) */
  #notifying = false;
  /** poll(2) in a worker, for PSI triggers and v1 OOM eventfds: started on first need */
  #poller: Promise<FdPoller | { error: string }> | undefined;
  /** by the poller's id: the resource of a PSI trigger. While set, PSI is not polled. */
  #psiTriggers: Map<number, PsiResource> | undefined;
  /** per resource: until when a fired trigger is followed (performance.now()), and the next read's timer */
  readonly #psiFollow = new Map<PsiResource, { until: number; timer?: ReturnType<typeof setTimeout> }>();
  #cgroupNotifier: CgroupNotifier | undefined;
  /** a new or removed cgroup asks for the next round now (event mode) */
  readonly #nudge = new PollNudge();
  #folders: CgroupFolderWatcher | undefined;
  /** why the cgroups are polled instead, once that is settled */
  #cgroupNotifyFailed: string | undefined;
  /** the memory hierarchy's pods of the last walk, by path: what a notification about one of them re-reads */
  #walk: { version: 1 | 2; hierarchy: string; pods: Map<string, PodCgroup> } | undefined;
  /** pods notified and not read yet */
  readonly #dirty = new Set<string>();
  /** v1 pods notified of an OOM whose reads showed no kill yet: the re-reads done, and the next one's timer */
  readonly #oomRechecks = new Map<string, { done: number; timer?: ReturnType<typeof setTimeout> }>();
  #draining: Promise<void> | undefined;
  /** the mode last reported per source */
  readonly #modes = new Map<string, string>();

  constructor(readonly config: MemoryConfig) {
    this.#cgroupRoot = config.cgroup_root ?? under(config.sys_root, "fs/cgroup");
    this.#nodeName = config.node_name;
  }

  async run(ctx: CollectorContext): Promise<void> {
    // A --once round reads everything once.
    if (ctx.once) return poll(ctx, this.config.interval.ms, () => this.#round(ctx));
    if (!this.config.notify) {
      if (this.#psiThresholds().length > 0) this.#mode(ctx, "psi", "poll", "notify: false");
      this.#mode(ctx, "memory.events", "poll", "notify: false");
      return poll(ctx, this.config.interval.ms, () => this.#round(ctx));
    }
    this.#notifying = true;
    try {
      await this.#startPsiTriggers(ctx);
      await poll(ctx, this.config.interval.ms, () => this.#round(ctx), this.#nudge);
    } finally {
      await this.#stopNotifications();
    }
  }

  #mode(ctx: CollectorContext, source: string, mode: "event" | "poll", reason?: string): void {
    const key = `${mode} ${reason ?? ""}`;
    if (this.#modes.get(source) === key) return;
    this.#modes.set(source, key);
    ctx.sourceMode(source, mode, reason);
  }

  /** The PSI thresholds that are on. */
  #psiThresholds(): Array<{ resource: PsiResource; kind: PsiKind; percent: number }> {
    return PSI_RESOURCES.flatMap((resource) =>
      PSI_KINDS.map((kind) => ({ resource, kind, percent: this.config.psi[resource][`${kind}_avg10`] })).filter((t) => t.percent > 0),
    );
  }

  #startPoller(ctx: CollectorContext): Promise<FdPoller | { error: string }> {
    this.#poller ??= FdPoller.start(
      (fired) => this.#fired(ctx, fired),
      (reason) => this.#pollerFailed(ctx, reason),
    );
    return this.#poller;
  }

  async #startPsiTriggers(ctx: CollectorContext): Promise<void> {
    const thresholds = this.#psiThresholds();
    if (thresholds.length === 0) return;
    const triggers = openPsiTriggers(this.config.proc_root, thresholds);
    if ("error" in triggers) return this.#mode(ctx, "psi", "poll", triggers.error);
    const poller = await this.#startPoller(ctx);
    if ("error" in poller) {
      for (const trigger of triggers) closeSync(trigger.fd);
      return this.#mode(ctx, "psi", "poll", poller.error);
    }
    this.#psiTriggers = new Map(triggers.map((t) => [poller.add(t.fd, POLLPRI, false), t.resource]));
    this.#mode(ctx, "psi", "event");
    // Pressure that is there at start is reported: read now, and followed while it lasts.
    await Promise.all([...new Set(triggers.map((t) => t.resource))].map((resource) => this.#readPsi(ctx, resource, 0)));
  }

  /** What the poller's worker saw fire: PSI triggers and v1 OOM eventfds. The worker waits until this is done. */
  async #fired(ctx: CollectorContext, fired: Fired[]): Promise<void> {
    if (ctx.signal.aborted) return;
    const resources = new Set<PsiResource>();
    const pods: string[] = [];
    for (const { id, revents } of fired) {
      const resource = this.#psiTriggers?.get(id);
      if (resource && revents & (POLLERR | POLLHUP | POLLNVAL)) this.#psiToPolling(ctx, `the kernel dropped the PSI trigger on ${resource} (poll revents 0x${revents.toString(16)})`);
      else if (resource) resources.add(resource);
      const pod = this.#cgroupNotifier?.podOf(id);
      if (pod === undefined) continue;
      pods.push(pod);
      // A new OOM: its own schedule of re-reads, from the start.
      clearTimeout(this.#oomRechecks.get(pod)?.timer);
      this.#oomRechecks.set(pod, { done: 0 });
    }
    const window = PSI_WINDOW_US / 1000;
    await Promise.all([...[...resources].map((resource) => this.#readPsi(ctx, resource, performance.now() + window)), this.#notified(ctx, pods)]);
  }

  #pollerFailed(ctx: CollectorContext, reason: string): void {
    this.#psiToPolling(ctx, reason);
    if (this.#cgroupNotifier?.version === 1) this.#cgroupsToPolling(ctx, reason);
  }

  #psiToPolling(ctx: CollectorContext, reason: string): void {
    if (!this.#psiTriggers) return;
    void this.#poller?.then((poller) => {
      if ("error" in poller) return;
      for (const id of this.#psiTriggers?.keys() ?? []) poller.remove(id);
    });
    this.#psiTriggers = undefined;
    for (const follow of this.#psiFollow.values()) clearTimeout(follow.timer);
    this.#psiFollow.clear();
    this.#mode(ctx, "psi", "poll", reason);
  }

  /**
   * Reads one resource's PSI now (as a poll would), and again every
   * PSI_FOLLOW_MS while a trigger's window lasts (`followUntil`, on
   * performance.now()) or the level is in its problem zone: a trigger says
   * pressure began, not that avg10 is past the threshold yet, nor when it ends.
   */
  async #readPsi(ctx: CollectorContext, resource: PsiResource, followUntil: number): Promise<void> {
    let follow = this.#psiFollow.get(resource);
    if (!follow) this.#psiFollow.set(resource, (follow = { until: 0 }));
    follow.until = Math.max(follow.until, followUntil);
    clearTimeout(follow.timer);
    follow.timer = undefined;
    const events: EventInput[] = [];
    const problems: string[] = [];
    this.#pressure(ctx, resource, events, problems);
    if (problems.length > 0) ctx.degraded(problems.join("; "));
    await emitAll(ctx, events);
    if (ctx.signal.aborted || !this.#psiTriggers) return;
    const inside = PSI_KINDS.some((kind) => this.#levels.inside(NODE, `psi/${resource}/${kind}`));
    if (inside || performance.now() < follow.until) follow.timer = setTimeout(() => void this.#readPsi(ctx, resource, 0), PSI_FOLLOW_MS);
  }

  /** Watches the cgroups of the last walk (the set follows the tree, one poll behind at most). */
  async #notifyCgroups(ctx: CollectorContext): Promise<void> {
    const walk = this.#walk;
    if (!walk || this.#cgroupNotifyFailed !== undefined) return;
    if (this.#cgroupNotifier && this.#cgroupNotifier.version !== walk.version) {
      this.#cgroupNotifier.close();
      this.#cgroupNotifier = undefined;
    }
    if (!this.#cgroupNotifier) {
      if (walk.version === 2) this.#cgroupNotifier = new MemoryEventsWatcher((pod) => void this.#notified(ctx, [pod]));
      else {
        const poller = await this.#startPoller(ctx);
        if ("error" in poller) return this.#cgroupsToPolling(ctx, poller.error);
        this.#cgroupNotifier = new OomEventfds(poller, walk.hierarchy);
      }
    }
    const cgroups = [...walk.pods.values()].flatMap((pod) => [pod.path, ...pod.containers.map((c) => c.path)].map((path) => ({ path, dir: `${walk.hierarchy}/${path}`, pod: pod.path })));
    const error = this.#cgroupNotifier.sync(cgroups);
    if (error !== undefined) return this.#cgroupsToPolling(ctx, error);
    this.#mode(ctx, "memory.events", "event");
    this.#folders ??= new CgroupFolderWatcher(() => this.#nudge.request());
    this.#folders.sync(this.#finder(walk.hierarchy).dirs);
  }

  /** For good: the cgroups' memory files stay read every interval. */
  #cgroupsToPolling(ctx: CollectorContext, reason: string): void {
    this.#cgroupNotifier?.close();
    this.#cgroupNotifier = undefined;
    this.#folders?.close();
    this.#folders = undefined;
    this.#cgroupNotifyFailed = reason;
    this.#mode(ctx, "memory.events", "poll", reason);
  }

  /**
   * Re-reads the memory files of the pods the kernel named, one after the
   * other, waiting for the queue; a pod notified again meanwhile is read
   * once. The whole pod, because its own share of a counter is what its
   * containers' do not explain.
   */
  #notified(ctx: CollectorContext, pods: Iterable<string>): Promise<void> {
    for (const pod of pods) this.#dirty.add(pod);
    this.#draining ??= this.#drain(ctx);
    return this.#draining;
  }

  async #drain(ctx: CollectorContext): Promise<void> {
    // Returns to #notified first, so #draining is set before it is cleared below.
    await Promise.resolve();
    try {
      for (const path of this.#dirty) {
        this.#dirty.delete(path);
        const pod = this.#walk?.pods.get(path);
        if (!pod || ctx.signal.aborted) continue;
        const events: EventInput[] = [];
        this.#podMemory(pod, this.#walk!.version, (file, detail) => ctx.parseError(file, detail), events);
        this.#recheckOom(ctx, path, events.some(isOomOutcome));
        await emitAll(ctx, events);
      }
    } finally {
      // In the same turn as the loop's end: a pod notified from now on starts a new drain.
      this.#draining = undefined;
    }
  }

  /**
   * After a read of a pod notified of an OOM: another read per OOM_RECHECK_MS
   * until one shows the kill (or under_oom: the OOM killer is off). Not any
   * event: failcnt grows as the limit is hit, before the kill is counted.
   */
  #recheckOom(ctx: CollectorContext, pod: string, killSeen: boolean): void {
    const recheck = this.#oomRechecks.get(pod);
    if (!recheck) return;
    const delay = OOM_RECHECK_MS[recheck.done];
    if (killSeen || delay === undefined) {
      clearTimeout(recheck.timer);
      this.#oomRechecks.delete(pod);
      return;
    }
    recheck.done++;
    clearTimeout(recheck.timer);
    recheck.timer = setTimeout(() => {
      recheck.timer = undefined;
      void this.#notified(ctx, [pod]);
    }, delay);
  }

  async #stopNotifications(): Promise<void> {
    for (const follow of this.#psiFollow.values()) clearTimeout(follow.timer);
    for (const recheck of this.#oomRechecks.values()) clearTimeout(recheck.timer);
    this.#cgroupNotifier?.close();
    this.#folders?.close();
    const poller = await this.#poller;
    if (poller && !("error" in poller)) await poller.stop();
  }

  /** One poll: every source is read even when another fails; any failure makes the round (and health) degraded. */
  async #round(ctx: CollectorContext): Promise<void> {
    const events: EventInput[] = [];
    const problems: string[] = [];
    // Sources whose thresholds are all off are not read: their absence is no problem.
    // While PSI triggers work, PSI is read when they fire.
    const psi = this.#psiTriggers ? [] : PSI_RESOURCES.filter((r) => this.config.psi[r].some_avg10 > 0 || this.config.psi[r].full_avg10 > 0);
    const pressureDir = under(this.config.proc_root, "pressure");
    if (psi.length > 0 && !existsSync(pressureDir) && existsSync(under(this.config.proc_root, "meminfo"))) {
      problems.push(`no PSI on this kernel (${pressureDir} is missing: CONFIG_PSI off, or booted with psi=0)`);
    } else {
      for (const resource of psi) this.#pressure(ctx, resource, events, problems);
    }
    const { percent: minPercent, bytes: minBytes } = this.config.memory_available;
    if (minPercent > 0 || minBytes > 0) this.#meminfo(ctx, events, problems);
    const walked = await this.#cgroups(ctx, events, problems);
    if (this.#notifying) await this.#notifyCgroups(ctx);
    // Forget cgroups that are gone; after a failed walk, keep everything (they may well be there).
    const keep = (scope: string) => scope === NODE || walked === undefined || walked.has(scope);
    this.#levels.sweep(keep);
    this.#counters.sweep(keep);
    await emitAll(ctx, events);
    if (problems.length > 0) throw new Error(problems.join("; "));
  }

  #pressure(ctx: CollectorContext, resource: PsiResource, events: EventInput[], problems: string[]): void {
    const thresholds = this.config.psi[resource];
    const psi = readParsed(ctx, under(this.config.proc_root, "pressure", resource), `pressure/${resource}`, parsePsi, problems);
    if (!psi) return;
    for (const kind of ["some", "full"] as const) {
      const threshold = kind === "some" ? thresholds.some_avg10 : thresholds.full_avg10;
      const line = psi[kind];
      if (threshold === 0 || !line) continue;
      const crossing = this.#levels.cross(NODE, `psi/${resource}/${kind}`, line.avg10, threshold);
      if (!crossing) continue;
      events.push({
        type: NODE_PRESSURE_TYPES[resource],
        severity: crossing === "leave" ? "info" : kind === "full" ? "high" : "warning",
        event_data: {
          custom: {
            source: "psi",
            resource,
            kind,
            state: crossing === "enter" ? "pressure" : "recovered",
            avg10: percent(line.avg10),
            avg60: percent(line.avg60),
            avg300: percent(line.avg300),
            total_us: String(line.total),
            threshold_avg10: percent(threshold),
          },
        },
        metadata: { node_name: this.#nodeName },
      });
    }
  }

  #meminfo(ctx: CollectorContext, events: EventInput[], problems: string[]): void {
    const { percent: minPercent, bytes: minBytes } = this.config.memory_available;
    const values = readParsed(ctx, under(this.config.proc_root, "meminfo"), "meminfo", parseMeminfo, problems);
    if (!values) return;
    const total = values.get("MemTotal")!;
    // MemAvailable is there since Linux 3.14; before, free plus page cache is the usual estimate.
    const reported = values.get("MemAvailable");
    const available = reported ?? (values.get("MemFree") ?? 0) + (values.get("Buffers") ?? 0) + (values.get("Cached") ?? 0);
    const availablePercent = total > 0 ? (available / total) * 100 : 0;
    // One level for both thresholds: how far above the nearer one the node is (1 = at it).
    const headroom = Math.min(minPercent > 0 ? availablePercent / minPercent : Infinity, minBytes > 0 ? available / minBytes : Infinity);
    const crossing = this.#levels.cross(NODE, "meminfo/available", headroom, 1, true);
    if (!crossing) return;
    events.push({
      type: NODE_PRESSURE_TYPES.memory,
      severity: crossing === "enter" ? "warning" : "info",
      event_data: {
        custom: {
          source: "meminfo",
          state: crossing === "enter" ? "pressure" : "recovered",
          mem_total_bytes: String(total),
          mem_available_bytes: String(available),
          available_percent: percent(availablePercent),
          threshold_percent: percent(minPercent),
          threshold_bytes: String(minBytes),
          ...(reported === undefined ? { estimated: "true" } : {}),
        },
      },
      metadata: { node_name: this.#nodeName },
    });
  }

  /** Reads every pod cgroup; returns the paths of the cgroups found, or undefined when the walk failed. */
  async #cgroups(ctx: CollectorContext, events: EventInput[], problems: string[]): Promise<Set<string> | undefined> {
    const root = this.#cgroupRoot;
    const layout = detectLayout(root);
    if (!layout) {
      problems.push(`${root} is neither a cgroup v1 nor a cgroup v2 mount (is the host path mounted?)`);
      return undefined;
    }
    try {
      const memoryPods = layout.memory ? this.#finder(layout.memory).find() : undefined;
      // On v2 both controllers are in the one hierarchy: walked once.
      const cpuPods = layout.cpu === layout.memory ? memoryPods : layout.cpu ? this.#finder(layout.cpu).find() : undefined;
      if (!memoryPods && !cpuPods) {
        problems.push(`no kubepods cgroup under ${root} (not a Kubernetes node?)`);
        return undefined;
      }
      if (layout.memory && memoryPods) this.#walk = { version: layout.version, hierarchy: layout.memory, pods: new Map(memoryPods.map((pod) => [pod.path, pod])) };
      const walked = new Set<string>();
      for (const pods of [memoryPods, cpuPods]) {
        for (const pod of pods ?? []) {
          walked.add(pod.path);
          for (const c of pod.containers) walked.add(c.path);
        }
      }
      const onError: ParseErrorSink = (file, detail) => ctx.parseError(file, detail);
      let read = 0;
      for (const pod of memoryPods ?? []) {
        if (++read % PODS_PER_CHUNK === 0) await yieldToEventLoop();
        this.#podMemory(pod, layout.version, onError, events);
      }
      for (const pod of cpuPods ?? []) {
        if (++read % PODS_PER_CHUNK === 0) await yieldToEventLoop();
        this.#podCpu(pod, onError, events);
      }
      this.#baselined = true;
      return walked;
    } catch (err) {
      problems.push(`cgroups under ${root}: ${message(err)}`);
      return undefined;
    }
  }

  #finder(hierarchy: string): PodFinder {
    let finder = this.#finders.get(hierarchy);
    if (!finder) this.#finders.set(hierarchy, (finder = new PodFinder(hierarchy)));
    return finder;
  }

  #podMemory(pod: PodCgroup, version: 1 | 2, onError: ParseErrorSink, events: EventInput[]): void {
    // What the containers' counters grew by: the pod's own share is the rest.
    let explained: Map<string, number> | undefined;
    for (const container of pod.containers) {
      const reading = readMemory(container.files, version, onError);
      if (!reading) continue;
      const grown = this.#grown(container.path, reading.counters);
      if (grown) for (const [name, delta] of grown) (explained ??= new Map()).set(name, (explained.get(name) ?? 0) + delta);
      this.#memoryEvents({ path: container.path, podUid: pod.podUid, container }, reading.usage, reading.limit, reading.underOom, grown, events);
    }
    const reading = readMemory(pod.files, version, onError);
    if (!reading) return;
    const grown = this.#grown(pod.path, reading.counters);
    if (grown) {
      for (const [name, delta] of grown) {
        if (LOCAL_COUNTERS.has(name)) continue;
        const own = delta - (explained?.get(name) ?? 0);
        if (own > 0) grown.set(name, own);
        else grown.delete(name);
      }
    }
    // Usage against the limit is judged where the limit is: the containers, or a pod without container cgroups.
    const leaf = pod.containers.length === 0;
    this.#memoryEvents(pod, leaf ? reading.usage : undefined, reading.limit, reading.underOom, grown, events);
  }

  /** The counters of one cgroup that grew since the last round, by name; undefined when none did. */
  #grown(path: string, counters: ReadonlyMap<string, number>): Map<string, number> | undefined {
    let grown: Map<string, number> | undefined;
    for (const [name] of COUNTERS) {
      const value = counters.get(name);
      if (value === undefined) continue;
      const delta = this.#counters.delta(path, name, value, this.#baselined);
      if (delta) (grown ??= new Map()).set(name, delta);
    }
    return grown;
  }

  #memoryEvents(subject: Subject, usage: number | undefined, limit: number | undefined, underOom: boolean | undefined, grown: Map<string, number> | undefined, events: EventInput[]): void {
    const worst = grown && COUNTERS.find(([name]) => grown.has(name));
    if (worst) {
      const custom: Record<string, string> = {};
      for (const [name, delta] of grown) custom[`${name}_delta`] = String(delta);
      events.push(this.#memoryEvent(subject, worst[0], worst[1], custom));
    }
    const threshold = this.config.cgroup_memory_percent;
    if (threshold > 0 && usage !== undefined && limit !== undefined && Number.isFinite(limit) && limit > 0) {
      const used = (usage / limit) * 100;
      const crossing = this.#levels.cross(subject.path, "usage", used, threshold);
      if (crossing) {
        events.push(
          this.#memoryEvent(subject, crossing === "enter" ? "usage_high" : "usage_normal", crossing === "enter" ? "warning" : "info", {
            usage_bytes: String(usage),
            limit_bytes: String(limit),
            usage_percent: percent(used),
            threshold_percent: percent(threshold),
          }),
        );
      }
    }
    if (underOom !== undefined) {
      const crossing = this.#levels.cross(subject.path, "under_oom", underOom ? 1 : 0, 1);
      if (crossing === "enter") events.push(this.#memoryEvent(subject, "under_oom", "high", {}));
      if (crossing === "leave") events.push(this.#memoryEvent(subject, "oom_resolved", "info", {}));
    }
  }

  #memoryEvent(subject: Subject, action: string, severity: Severity, custom: Record<string, string>): EventInput {
    const c = subject.container;
    return {
      type: "container.memory_pressure",
      severity,
      event_data: {
        // A pod-level event has no container: its container_id is empty.
        container: { container_id: c?.id ?? "", ...(c?.runtime ? { runtime: c.runtime } : {}), state: "running", action },
        custom: { cgroup_path: `/${subject.path}`, ...custom },
      },
      ...this.#context(subject),
    };
  }

  #podCpu(pod: PodCgroup, onError: ParseErrorSink, events: EventInput[]): void {
    // Throttling is per cgroup, each against its own quota: the pod's and the containers'.
    const reading = readCpu(pod.files, onError);
    if (reading) this.#throttling(pod, reading, events);
    for (const container of pod.containers) {
      const reading = readCpu(container.files, onError);
      if (reading) this.#throttling({ path: container.path, podUid: pod.podUid, container }, reading, events);
    }
  }

  #throttling(subject: Subject, reading: CpuReading, events: EventInput[]): void {
    const { percent: threshold, min_periods } = this.config.cpu_throttling;
    if (threshold === 0) return;
    const fromZero = this.#baselined;
    const periods = this.#counters.delta(subject.path, "nr_periods", reading.periods, fromZero);
    const throttled = this.#counters.delta(subject.path, "nr_throttled", reading.throttled, fromZero);
    const throttledNs = this.#counters.delta(subject.path, "throttled_ns", reading.throttledNs, fromZero);
    if (periods === undefined || throttled === undefined) return;
    const share = periods >= min_periods ? (throttled / periods) * 100 : 0;
    const crossing = this.#levels.cross(subject.path, "throttled", share, threshold);
    if (!crossing) return;
    const containerId = subject.container?.id;
    events.push({
      type: "container.cpu_throttling",
      severity: crossing === "enter" ? "warning" : "info",
      event_data: {
        // Go's SchedulerData is where Tapio puts CFS throttling (event_type "cfs_throttle").
        scheduler: { event_type: "cfs_throttle", throttle_pct: Number(share.toFixed(2)), throttle_ms: Number(((throttledNs ?? 0) / 1e6).toFixed(3)), ...(containerId ? { container_id: containerId } : {}) },
        custom: {
          cgroup_path: `/${subject.path}`,
          state: crossing === "enter" ? "throttled" : "recovered",
          throttled_percent: percent(share),
          periods: String(periods),
          throttled_periods: String(throttled),
          throttled_time_ns: String(throttledNs ?? 0),
          threshold_percent: percent(threshold),
        },
      },
      ...this.#context(subject),
    });
  }

  #context(subject: Subject): Pick<EventInput, "metadata" | "correlation_hints"> {
    const containerId = subject.container?.id;
    const metadata: EventMetadata = { node_name: this.#nodeName, pod_uid: subject.podUid };
    if (containerId) metadata.container_id = containerId;
    return {
      metadata,
      correlation_hints: { pod_uid: subject.podUid, ...(containerId ? { container_id: containerId } : {}), cgroup_path: `/${subject.path}` },
    };
  }
}

export const memoryFactory: CollectorFactory<MemoryConfig> = {
  type: "memory",
  events: memoryEvents,
  description: "node and pod pressure: PSI, /proc/meminfo, pod cgroup memory events and CPU throttling",
  configSchema: memoryConfigSchema,
  // Events mark threshold crossings and counter changes: a healthy node can be silent for days.
  quietPeriodMs: () => undefined,
  sources: (c) => [readableFile(under(c.proc_root, "meminfo")), readableDirectory(c.cgroup_root ?? under(c.sys_root, "fs/cgroup"))],
  create: (config) => new MemoryCollector(config),
};

/**
 * Reads and parses one file: a file that cannot be read is a problem (the
 * collector turns degraded); one that cannot be parsed is a parse error.
 */
function readParsed<T>(ctx: CollectorContext, path: string, source: string, parse: (text: string) => T, problems: string[]): T | undefined {
  let text: string;
  try {
    text = readTextSync(path);
  } catch (err) {
    problems.push(message(err));
    return undefined;
  }
  try {
    return parse(text);
  } catch (err) {
    ctx.parseError(source, `${path}: ${message(err)}`);
    return undefined;
  }
}
