// Outside programs as collectors, like Telegraf's exec/execd inputs: each
// line a program writes to stdout is one event input (JSON), checked against
// Tapio's Go CollectorEvent before it is accepted. `stream` runs one
// long-lived program (restarted with the collector backoff when it ends);
// `interval` runs it every `interval`, bounded by `timeout`.
import type { EventInput } from "../../event/event.ts";
import { parseExternalEvent } from "../../event/input.ts";
import { LOG_THROTTLE_MS, LogThrottle } from "../../log.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { sleep, unlessAborted } from "../../wait.ts";
import { excerpt, readLines, type ByteReader } from "./lines.ts";
import { checkStartable, KILL_GRACE_MS, ProcessGroup, spawnProgram, StartError, type RunningProgram } from "./program.ts";
import { execConfigSchema, type ExecConfig } from "./schema.ts";
import { execEvents } from "./events.ts";

/** The parse-error source of stdout lines (orchestrator_collector_parse_errors_total{source}). */
export const STDOUT_SOURCE = "stdout";
/** Lines parsed without waiting on the queue before the event loop gets a turn (timers, NATS I/O). */
const YIELD_EVERY = 512;
/** stderr lines logged per LOG_THROTTLE_MS at most; the rest are counted in the next line logged. */
export const STDERR_LINES_PER_WINDOW = 20;
/** A stderr line is logged up to this long. */
const STDERR_LINE_BYTES = 4096;

/** How one run of the program ended. */
export type RunOutcome =
  | { readonly kind: "not_started"; readonly reason: string }
  | {
      readonly kind: "exited";
      readonly code: number | null;
      readonly signal: string | null;
      /** mode interval: it ran past `timeout` and was stopped */
      readonly timedOut: boolean;
      /** its last stderr line, for the health message */
      readonly stderr: string | undefined;
    };

export class ExecCollector implements Collector {
  readonly #skipLog = new LogThrottle();

  constructor(readonly config: ExecConfig) {}

  run(ctx: CollectorContext): Promise<void> {
    return this.config.mode === "stream" ? this.#stream(ctx) : this.#interval(ctx);
  }

  /** One long-lived program. Its end, however it comes, is a failure for the runner to restart with backoff. */
  async #stream(ctx: CollectorContext): Promise<void> {
    const outcome = await this.runOnce(ctx);
    if (ctx.signal.aborted) return;
    const problem = describeProblem(outcome, this.config);
    // --once: the program's run is the round; it has to end by itself, and well.
    if (ctx.once && problem === undefined) return;
    throw new Error(problem ?? `${this.config.command[0]} exited with code 0; a stream program is restarted whenever it ends`);
  }

  /** A run every `interval`; a run still going at a tick makes that tick pass (runs never overlap, missed ones are not made up). */
  async #interval(ctx: CollectorContext): Promise<void> {
    const every = this.config.interval.ms;
    let tick = performance.now();
    while (!ctx.signal.aborted) {
      const outcome = await this.runOnce(ctx, this.config.timeout.ms);
      if (ctx.signal.aborted) return;
      const problem = describeProblem(outcome, this.config);
      if (problem === undefined) ctx.healthy();
      else ctx.degraded(problem);
      if (ctx.once) return;
      tick += every;
      const now = performance.now();
      if (now > tick) {
        const missed = Math.floor((now - tick) / every) + 1;
        tick += missed * every;
        const suppressed = this.#skipLog.take("skipped");
        if (suppressed !== undefined) {
          ctx.log.warn({ skipped: missed, ...(suppressed > 0 ? { suppressed } : {}) }, `collector ${ctx.name}: a run took longer than interval (${this.config.interval}); ${missed} run(s) skipped`);
        }
      }
      if (!(await sleep(tick - now, ctx.signal))) return;
    }
  }

  /**
   * Runs the program once, to its end: its stdout lines become events, its
   * stderr lines warnings. Past `timeoutMs`, or when ctx.signal aborts, it
   * gets SIGTERM, then SIGKILL after the grace.
   */
  async runOnce(ctx: CollectorContext, timeoutMs?: number): Promise<RunOutcome> {
    let proc: RunningProgram;
    try {
      proc = spawnProgram(this.config);
    } catch (err) {
      return { kind: "not_started", reason: err instanceof StartError ? err.message : `cannot start ${this.config.command[0]}: ${(err as Error).message}` };
    }
    const group = new ProcessGroup(proc);
    const stop = () => group.terminate();
    ctx.signal.addEventListener("abort", stop, { once: true });
    if (ctx.signal.aborted) stop();
    let timedOut = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            group.terminate();
          }, timeoutMs);
    const stdout = proc.stdout.getReader();
    const stderr = proc.stderr.getReader();
    const stderrLog = new StderrLog(ctx, proc.pid);
    // A failed reader stops the program: nobody would read its pipe, it would block for ever.
    // Settled at once, so the failure is no unhandled rejection while the program ends.
    const stopOnFailure = (err: unknown) => {
      group.terminate();
      throw err;
    };
    const reading = Promise.allSettled([this.#events(ctx, stdout).catch(stopOnFailure), stderrLog.read(stderr).catch(stopOnFailure)]);
    try {
      await proc.exited;
    } finally {
      group.exited();
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", stop);
    }
    // The group is gone, so the pipes end; unless something left it with them open: not waited for when stopping.
    if (ctx.signal.aborted) {
      void stdout.cancel().catch(() => {});
      void stderr.cancel().catch(() => {});
    }
    for (const result of await reading) if (result.status === "rejected") throw result.reason;
    return { kind: "exited", code: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode), timedOut, stderr: stderrLog.last };
  }

  /** Emits the events of the program's stdout, waiting whenever the queue asks (the program then blocks on its full pipe). */
  async #events(ctx: CollectorContext, reader: ByteReader): Promise<void> {
    const max = this.config.max_line_bytes;
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let unawaited = 0;
    for await (const line of readLines(reader, max)) {
      if (line.tooLong) {
        ctx.parseError(STDOUT_SOURCE, `line ${line.number}: ${line.tooLong.bytes} bytes, over max_line_bytes (${max}); skipped: ${excerpt(line.tooLong.head, line.tooLong.bytes)}`);
        continue;
      }
      const input = parseLine(ctx, line.number, line.bytes, decoder);
      if (!input) continue;
      const wait = ctx.emit(input);
      if (wait) {
        unawaited = 0;
        // Once stopping, a full queue is not waited on: the runner counts what it cannot take.
        await unlessAborted(wait, ctx.signal).catch(() => {});
      } else if (++unawaited >= YIELD_EVERY) {
        unawaited = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }
}

/** One stdout line as an event input; undefined (a parse error counted) when it is none. Blank lines are skipped. */
function parseLine(ctx: CollectorContext, number: number, bytes: Uint8Array, decoder: TextDecoder): EventInput | undefined {
  const bad = (why: string) => ctx.parseError(STDOUT_SOURCE, `line ${number}: ${why}: ${excerpt(bytes)}`);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    bad("not UTF-8");
    return undefined;
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    bad(`not JSON (${(err as Error).message})`);
    return undefined;
  }
  const result = parseExternalEvent(value);
  if (result.ok) return result.input;
  bad(result.problems.join("; "));
  return undefined;
}

/** What went wrong in a run, for health; undefined for a good run (exit 0 in time). */
export function describeProblem(outcome: RunOutcome, config: ExecConfig): string | undefined {
  if (outcome.kind === "not_started") return outcome.reason;
  const program = config.command[0];
  const said = outcome.stderr ? `; its last stderr line: ${outcome.stderr}` : "";
  if (outcome.timedOut) return `${program} ran past timeout (${config.timeout}) and was stopped${said}`;
  if (outcome.signal) return `${program} was killed by ${outcome.signal}${said}`;
  if (outcome.code !== 0) return `${program} exited with code ${outcome.code}${said}`;
  return undefined;
}

/** A program's stderr, line by line, as warnings: at most STDERR_LINES_PER_WINDOW per LOG_THROTTLE_MS. */
export class StderrLog {
  /** the last line, for the health message of a failed run */
  last: string | undefined;
  #windowStart = 0;
  #logged = 0;
  #suppressed = 0;
  readonly #decoder = new TextDecoder();

  constructor(
    readonly ctx: CollectorContext,
    readonly pid: number,
    readonly now: () => number = Date.now,
  ) {}

  async read(reader: ByteReader): Promise<void> {
    for await (const line of readLines(reader, STDERR_LINE_BYTES)) {
      const text = line.tooLong ? `${this.#decoder.decode(line.tooLong.head)}…` : this.#decoder.decode(line.bytes).trimEnd();
      if (text === "") continue;
      this.last = text.length > 200 ? `${text.slice(0, 200)}…` : text;
      this.#log(text);
    }
  }

  #log(text: string): void {
    const now = this.now();
    if (now - this.#windowStart >= LOG_THROTTLE_MS) {
      this.#windowStart = now;
      this.#logged = 0;
    }
    if (this.#logged >= STDERR_LINES_PER_WINDOW) {
      this.#suppressed++;
      return;
    }
    this.#logged++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    const { ctx } = this;
    ctx.log.warn({ pid: this.pid, stderr: text, ...(suppressed > 0 ? { suppressed } : {}) }, `collector ${ctx.name} stderr: ${text}`);
  }
}

export const execFactory: CollectorFactory<ExecConfig> = {
  type: "exec",
  events: execEvents,
  description: "outside programs: each stdout line a JSON event input; a long-running stream or a run every interval",
  configSchema: execConfigSchema,
  // A node check has nothing to say while all is well.
  quietPeriodMs: () => undefined,
  // A program gets its SIGTERM-to-SIGKILL grace before its run counts as hung.
  stopTimeoutMs: () => KILL_GRACE_MS + 1000,
  sources: (c) => [
    {
      source: c.command[0]!,
      probe: async () => checkStartable(c),
    },
  ],
  create: (config) => new ExecCollector(config),
};
