// Process start and exit: the eBPF-free stand-in for exec/exit tracepoints.
// Where the kernel allows, its process events connector tells each exec and
// exit as it happens: a worker thread reads the netlink socket, keeps the
// table of what runs (table.ts), lists /proc at the start and every
// resync_interval, filters, and posts only events of processes that count,
// ready to emit. Elsewhere the main thread lists /proc every interval.
import { readlinkSync } from "node:fs";
import type { EventInput } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { under, yieldToEventLoop } from "../common/paths.ts";
import { readableDirectory, readableFile } from "../common/source-checks.ts";
import { emitAll, poll } from "../common/poll.ts";
import { processConfigSchema, type ProcessConfig } from "./schema.ts";
import { processEvents } from "./events.ts";
import { ProcEvents, type Listed } from "./proc-events.ts";
import { ProcessTable, type TableConfig } from "./table.ts";

/** SO_RCVBUF asked for: about 40 000 records of room while emits wait (the kernel caps it at net.core.rmem_max). */
const CONNECTOR_RECEIVE_BUFFER = 8 * 1024 * 1024;
/** The kernel acknowledges a subscription at once; silence means it ignores this listener. */
const CONNECTOR_ACK_TIMEOUT_MS = 2000;
/** Why the connector may refuse, as the operator can fix it. */
const CONNECTOR_HINTS: Record<string, string> = {
  EPERM: "no permission (needs CAP_NET_ADMIN)",
  EACCES: "no permission (needs CAP_NET_ADMIN)",
  EPROTONOSUPPORT: "no process events connector in this network namespace (needs hostNetwork)",
  // Kernels that let the socket be made in any network namespace refuse the subscription instead.
  ECONNREFUSED: "no process events connector in this network namespace (needs hostNetwork)",
};
/**
 * Unfiltered, a live node starts something every few minutes (timers, exec
 * probes, kubelet's mounts); silence that long means /proc is not the host's.
 * Limited to containers, hours without a start or exit are normal.
 */
const UNLIMITED_QUIET_MS = 15 * 60_000;

export class ProcessCollector implements Collector {
  readonly #config: ProcessConfig;
  readonly #tableConfig: TableConfig;
  /** polling's table, kept across --once runs (each is one listing) */
  #table: ProcessTable | undefined;
  /** where polling's table reports parse errors: the context of the latest run */
  #ctx: CollectorContext | undefined;

  constructor(config: ProcessConfig) {
    this.#config = config;
    const { proc_root, containers_only, cgroup_pattern, kernel_threads, max_events_per_poll } = config;
    this.#tableConfig = { proc_root, containers_only, cgroup_pattern, kernel_threads, max_events_per_poll };
  }

  async run(ctx: CollectorContext): Promise<void> {
    if (ctx.once) return this.#poll(ctx);
    const unavailable = this.#connectorUnavailable();
    if (unavailable) {
      ctx.sourceMode("proc", "poll", unavailable);
      return this.#poll(ctx);
    }
    const inbox = new Inbox();
    const opened = await ProcEvents.open({
      receiveBuffer: CONNECTOR_RECEIVE_BUFFER,
      ackTimeoutMs: CONNECTOR_ACK_TIMEOUT_MS,
      table: this.#tableConfig,
      resyncMs: this.#config.resync_interval.ms,
      onEvents: (events) => inbox.add(events),
      onListed: (listed) => listedHealth(ctx, listed),
      onParseError: (source, detail) => ctx.parseError(source, detail),
      onOverflow: (overflows) =>
        ctx.log.warn({ overflows }, "the process events connector dropped records (socket buffer full): listing /proc to catch up"),
      onFailed: (reason) => inbox.fail(reason),
    });
    if (!opened.ok) {
      const hint = opened.code ? CONNECTOR_HINTS[opened.code] : undefined;
      ctx.sourceMode("proc", "poll", `process events connector: ${opened.reason}${hint ? `: ${hint}` : ""}`);
      return this.#poll(ctx);
    }
    let failure: string | undefined;
    try {
      ctx.sourceMode("proc", "event");
      failure = await this.#follow(ctx, opened.events, inbox);
    } finally {
      await opened.events.close();
    }
    if (failure === undefined) return;
    // The worker's table went with it: polling starts with a baseline of its own.
    ctx.sourceMode("proc", "poll", `process events connector: ${failure}`);
    return this.#poll(ctx);
  }

  #poll(ctx: CollectorContext): Promise<void> {
    this.#ctx = ctx;
    const table = (this.#table ??= new ProcessTable(this.#tableConfig, (source, detail) => this.#ctx?.parseError(source, detail)));
    return poll(ctx, this.#config.interval.ms, async () => {
      const { events, problem } = await table.list(yieldToEventLoop);
      await emitAll(ctx, events);
      if (problem) throw new Error(problem);
    });
  }

  /** Why the connector cannot stand in for polling here, or undefined when it may be tried. */
  #connectorUnavailable(): string | undefined {
    if (!this.#config.proc_connector) return "proc_connector is off";
    if (process.platform !== "linux") return `the process events connector is Linux's (this is ${process.platform})`;
    // The connector names processes by their pids in the host's pid namespace: proc_root must show the same ones.
    const root = this.#config.proc_root;
    let self: string | undefined;
    try {
      self = readlinkSync(under(root, "self"));
    } catch {
      // not a procfs
    }
    if (self !== String(process.pid)) return `${root} is not the procfs of the agent's pid namespace`;
    return undefined;
  }

  /** Event mode: emits what the worker posts, in its order, until stopped; returns the reason the connector failed. */
  async #follow(ctx: CollectorContext, events: ProcEvents, inbox: Inbox): Promise<string | undefined> {
    for (;;) {
      if (ctx.signal.aborted) return undefined;
      if (inbox.failure !== undefined) return inbox.failure;
      const batch = inbox.take();
      if (batch.length > 0) await emitPausing(ctx, events, batch);
      else await inbox.wait(ctx.signal);
    }
  }
}

/** Emits a batch, pausing the worker while the queue makes the collector wait (the kernel buffers meanwhile). */
async function emitPausing(ctx: CollectorContext, events: ProcEvents, batch: readonly EventInput[]): Promise<void> {
  try {
    for (const event of batch) {
      const wait = ctx.emit(event);
      if (wait) {
        events.pause();
        await wait;
      }
    }
  } finally {
    events.resume();
  }
}

/** A listing in the worker, with the health and metrics of a poll round. */
function listedHealth(ctx: CollectorContext, listed: Listed): void {
  if (listed.problem === undefined) ctx.healthy();
  else ctx.degraded(listed.problem);
  ctx.pollRound(listed.wallSeconds, listed.cpuSeconds);
}

/** What the worker sent and the collector has not emitted yet; wait() is the only thing event mode sleeps on. */
class Inbox {
  #items: EventInput[] = [];
  failure: string | undefined;
  #wake: (() => void) | undefined;

  add(events: readonly EventInput[]): void {
    for (const event of events) this.#items.push(event);
    this.#wake?.();
  }

  fail(reason: string): void {
    this.failure = reason;
    this.#wake?.();
  }

  take(): EventInput[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  /** Until something arrives or `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
      if (signal.aborted) done();
    });
  }
}

export const processFactory: CollectorFactory<ProcessConfig> = {
  type: "process",
  events: processEvents,
  description: "process start and exit from the kernel's process events connector or /proc polls, optionally only in container cgroups",
  configSchema: processConfigSchema,
  quietPeriodMs: (config) => (config.containers_only ? undefined : Math.max(UNLIMITED_QUIET_MS, 10 * config.interval.ms)),
  sources: (c) => [readableFile(under(c.proc_root, "stat")), readableDirectory(c.proc_root)],
  create: (config) => new ProcessCollector(config),
};
