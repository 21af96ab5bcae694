// `run`: load the config, start the agent, wait for a reason to stop (a
// signal, the end of a --once round, a publisher that gave up, a fault
// outside every collector), shut down, and turn the outcome into an exit code.
import type { Logger } from "pino";
import { loadConfigFile } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { builtinRegistry } from "../collectors/index.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { createPublisher } from "../publish/index.ts";
import { Orchestrator, type ShutdownReport } from "../orchestrator/orchestrator.ts";
import { countsText } from "../orchestrator/shutdown.ts";
import { Spool, SpoolError } from "../spool/spool.ts";
import { DEFAULT_DESTINATION, destinationOfSpoolFile, spoolPathOf } from "../orchestrator/destination.ts";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { redactUrlCredentials, rememberSecrets } from "../config/redact.ts";
import { HttpServer, type HttpServerOptions } from "../http/server.ts";
import { ConfigReloader } from "../reload/reloader.ts";
import { createLogger, defaultLogFormat, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log.ts";
import { EXIT, HELP, UsageError, configPath, parseFlags } from "./usage.ts";
import { AGENT_VERSION } from "./version.ts";
import { DROP_STARTUP_PAGES_AFTER_MS, dropStartupPages } from "../startup-pages.ts";
import { gcPacerFor } from "../gc-pacer.ts";

interface RunOptions {
  file: string;
  /** --log-level; undefined: orchestrator.log_level, which a reload may change */
  level: LogLevel | undefined;
  /** --log-format; undefined: by whether the logs go to a terminal */
  format: LogFormat | undefined;
  /** print events instead of publishing; no spool, no endpoints */
  dryRun: boolean;
  once: boolean;
}

export async function runCommand(args: string[]): Promise<number> {
  const options = parseRunFlags(args);
  if (!options) {
    process.stdout.write(`${HELP.run}\n`);
    return EXIT.ok;
  }
  const registry = builtinRegistry();
  const config = await loadConfigFile(options.file, registry);
  rememberSecrets(config);
  const fd = options.dryRun ? 2 : 1;
  const log = await createLogger({ level: options.level ?? config.orchestrator.log_level, format: options.format ?? defaultLogFormat(fd), fd });
  logStarting(log, config, options);

  const stops = new StopRequests();
  const agent = await startAgent(config, registry, log, options, stops);
  const unwatch = watchProcess(log, stops, agent.orchestrator);
  await agent.reloader?.start();
  if (options.once) await untilRoundDone(agent.orchestrator, config, log, stops);
  else {
    const dropTimer = setTimeout(() => void dropStartupPages().then((r) => logDroppedPages(log, r)), DROP_STARTUP_PAGES_AFTER_MS);
    dropTimer.unref();
    await stops.requested;
    clearTimeout(dropTimer);
  }
  const report = await agent.stop();
  unwatch();
  return exitCode(stops, report, options.once, log);
}

/** The flags, checked; undefined for --help. */
function parseRunFlags(args: string[]): RunOptions | undefined {
  const flags = parseFlags("run", args);
  if (flags.help) return undefined;
  const level = flags["log-level"];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }
  const format = flags["log-format"];
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--log-format: expected ${LOG_FORMATS.join(" or ")}, got "${format}"`);
  }
  return { file: configPath(flags.config), level: level as LogLevel | undefined, format: format as LogFormat | undefined, dryRun: flags["dry-run"] ?? false, once: flags.once ?? false };
}

function logStarting(log: Logger, config: Config, { file, dryRun, once }: RunOptions): void {
  log.info(
    {
      version: AGENT_VERSION,
      bun: Bun.version,
      config: file,
      nats: { url: config.nats.url.map(redactUrlCredentials), mode: dryRun ? "stdout" : config.nats.mode, subject: config.nats.subject, stream: config.nats.stream.name },
      once,
    },
    `tapio-collectors ${AGENT_VERSION} starting`,
  );
}

function logDroppedPages(log: Logger, result: Awaited<ReturnType<typeof dropStartupPages>>): void {
  if ("error" in result) log.debug({ err: result.error }, `start-up pages of the executable kept: ${result.error}`);
  else log.debug({ rss_file_before: result.before, rss_file_after: result.after }, `start-up pages of the executable dropped: file-backed RSS ${mib(result.before)} -> ${mib(result.after)} MiB`);
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

/** Why the agent stops: the first request ends the wait; what went wrong on the way decides the exit code. */
class StopRequests {
  readonly #requested = Promise.withResolvers<void>();
  /** the first SIGTERM or SIGINT */
  signal: NodeJS.Signals | undefined;
  /** an uncaught exception or unhandled rejection */
  fault: Error | undefined;
  /** what ends the agent with exit 1: a fault, or a publisher that gave up */
  fatal: Error | undefined;

  get requested(): Promise<void> {
    return this.#requested.promise;
  }

  request(): void {
    this.#requested.resolve();
  }

  failed(err: Error): void {
    this.fatal ??= err;
    this.request();
  }
}

interface Agent {
  orchestrator: Orchestrator;
  /** hot reload, for a running agent (a --once run is over before an edit could matter) */
  reloader: ConfigReloader | undefined;
  /** Stops everything, in order: reloads, collectors and delivery (the shutdown report), endpoints, metrics. */
  stop(): Promise<ShutdownReport>;
}

/**
 * Opens the spool, starts the publisher, the orchestrator and the endpoints.
 * Metrics are only kept where something reads them, /metrics or
 * telemetry.otlp: without either the metrics module is not even loaded (a few
 * MiB of memory), and the OTLP exporter only with telemetry.otlp.
 */
async function startAgent(config: Config, registry: CollectorRegistry, log: Logger, { file, level, dryRun, once }: RunOptions, stops: StopRequests): Promise<Agent> {
  const build = { version: AGENT_VERSION, bun: Bun.version };
  // --dry-run is a look at the events, not a running agent: no endpoints.
  const endpoints = config.http.enabled && !dryRun;
  const otlp = dryRun ? undefined : config.telemetry.otlp;
  const Metrics = endpoints || otlp ? (await import("../metrics/metrics.ts")).AgentMetrics : undefined;
  const push = otlp && new (await import("../metrics/otlp.ts")).OtlpPush(otlp, config, build.version, log);
  const publisherFor = (nats: Config["nats"], destination: string) =>
    createPublisher(nats, {
      log: destination === DEFAULT_DESTINATION ? log : log.child({ destination }),
      dryRun,
      onError: (reason, _err, events) => orchestrator.destination(destination)?.ledger.publishFailed(reason, events),
    });
  // --dry-run prints events and must neither write nor replay a real spool.
  const spools = config.spool.enabled && !dryRun;
  const { spool, unavailable } = spools ? openSpool(config, DEFAULT_DESTINATION, log) : {};
  const gc = gcPacerFor(process.env);
  if (spools) reportLeftoverSpools(config, log);
  const orchestrator: Orchestrator = new Orchestrator({
    config,
    registry,
    publisher: publisherFor(config.nats, DEFAULT_DESTINATION),
    spool,
    spoolUnavailable: unavailable,
    openDestination: (name, nats) => {
      const opened = spools ? openSpool(config, name, log) : {};
      return { publisher: publisherFor(nats, name), spool: opened.spool, spoolUnavailable: opened.unavailable };
    },
    log,
    once,
    onFatal: (err) => stops.failed(err),
    ...(Metrics && { onHandoff: (seconds: number) => metrics!.handoff(seconds) }),
    ...((Metrics || gc) && {
      onBatchDone: (seconds: number) => {
        metrics?.batchDone(seconds);
        gc?.worked();
      },
      onPollRound: (collector: string, wall: number, cpu: number) => {
        metrics?.pollRound(collector, wall, cpu);
        gc?.worked();
      },
    }),
  });
  const metrics = Metrics && new Metrics(orchestrator, build, push);
  const http = metrics && endpoints ? startHttp({ config: config.http, orchestrator, metrics, log, build }) : undefined;
  orchestrator.start();
  const reloader = once
    ? undefined
    : new ConfigReloader({
        file,
        registry,
        log,
        onResult: (result) => metrics?.reloaded(result),
        apply: async (next) => {
          await orchestrator.reconfigure(next, publisherFor);
          if (level === undefined) log.level = next.orchestrator.log_level;
        },
      });
  return {
    orchestrator,
    reloader,
    async stop() {
      reloader?.stop();
      const report = await orchestrator.stop();
      gc?.stop();
      http?.stop();
      await metrics?.shutdown();
      return report;
    },
  };
}

/**
 * Opens a destination's spool (spoolPathOf). One that cannot be opened (disk
 * full, read-only, permission, a file of another program) does not keep the
 * agent from running: it runs without one, loudly. Only a spool locked by
 * another agent stops it: two agents on one node would send every event twice.
 */
function openSpool(config: Config, destination: string, log: Logger): { spool?: Spool; unavailable?: SpoolError } {
  const path = spoolPathOf(config.spool.path, destination);
  try {
    return { spool: Spool.open({ path, maxBytes: config.spool.max_bytes, whenFull: config.spool.when_full, log }) };
  } catch (err) {
    if (!(err instanceof SpoolError) || err.reason === "locked") throw err;
    const which = destination === DEFAULT_DESTINATION ? "" : ` for destination ${destination}`;
    log.error(
      { path, reason: err.reason, err: err.message, ...(destination !== DEFAULT_DESTINATION && { destination }) },
      `running WITHOUT a spool${which}: ${err.message}; events wait in memory only, and are lost if the agent stops while NATS is away`,
    );
    return { unavailable: err };
  }
}

/**
 * Spools of destinations no longer configured (a reload or an edit removed
 * them): their events stay on disk and are replayed when a destination of
 * that name comes back. Said at start, so they are not forgotten.
 */
function reportLeftoverSpools(config: Config, log: Logger): void {
  const dir = dirname(config.spool.path);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return; // no folder yet: nothing left over
  }
  for (const file of files) {
    const name = destinationOfSpoolFile(config.spool.path, file);
    if (name === undefined || Object.hasOwn(config.destinations, name)) continue;
    const path = join(dir, file);
    const events = countSpooled(config, path, log);
    log.warn(
      { destination: name, path, events },
      `the spool of destination ${name}, which is not configured, holds ${events ?? "an unknown number of"} event(s) at ${path}; they are replayed when a destination named ${name} is configured again`,
    );
  }
}

/** Events in a spool file (undefined when it cannot be opened: locked, damaged, unreadable). */
function countSpooled(config: Config, path: string, log: Logger): number | undefined {
  try {
    const spool = Spool.open({ path, maxBytes: config.spool.max_bytes, whenFull: config.spool.when_full, log });
    const depth = spool.depth;
    spool.close();
    return depth;
  } catch {
    return undefined;
  }
}

/** Starts the endpoints; a taken port is a clear error, not a stack. */
function startHttp(options: HttpServerOptions): HttpServer {
  try {
    return new HttpServer(options);
  } catch (err) {
    throw new Error(`http.listen ${options.config.listen}: cannot listen: ${(err as Error).message}`);
  }
}

/**
 * SIGTERM and SIGINT stop the agent (a second one exits at once). An
 * uncaught exception or unhandled rejection comes from outside every
 * collector's run (a run that throws or rejects is the runner's to restart):
 * the agent is in a state nobody planned for, so it stops its collectors,
 * spools what is queued and exits 1, for the supervisor to restart it and
 * the spool to be replayed. Returns a function that removes the handlers.
 */
function watchProcess(log: Logger, stops: StopRequests, orchestrator: Orchestrator): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (stops.signal) {
      const queued = orchestrator.queue.length;
      log.warn({ signal, queued, spool_depth: orchestrator.delivery.spoolDepth() }, `second ${signal}: exiting now; ${queued} queued event(s) are lost, spooled ones stay`);
      process.exit(EXIT.failure);
    }
    stops.signal = signal;
    log.info({ signal }, `${signal} received: shutting down`);
    stops.request();
  };
  const onFault = (kind: string) => (thrown: unknown) => {
    const err = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (stops.fault) {
      log.fatal({ err: err.message, stack: err.stack }, `${kind} while stopping after a fault: exiting now: ${err.message}`);
      process.exit(EXIT.failure);
    }
    stops.fault = err;
    log.fatal({ err: err.message, stack: err.stack }, `${kind} outside every collector: ${err.message}; stopping collectors, spooling what is queued, exit 1`);
    void orchestrator.stop("spool");
    stops.failed(err);
  };
  const onException = onFault("uncaught exception");
  const onRejection = onFault("unhandled rejection");
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  };
}

/** --once: waits for every collector's round, bounded by orchestrator.once_timeout, or an earlier stop. */
async function untilRoundDone(orchestrator: Orchestrator, config: Config, log: Logger, stops: StopRequests): Promise<void> {
  const limit = config.orchestrator.once_timeout;
  const timer = setTimeout(() => {
    log.error(`--once: the collectors' round took longer than orchestrator.once_timeout (${limit}); stopping`);
    stops.request();
  }, limit.ms);
  await Promise.race([orchestrator.roundsDone(), stops.requested]);
  clearTimeout(timer);
}

function exitCode(stops: StopRequests, report: ShutdownReport, once: boolean, log: Logger): number {
  if (stops.fatal) {
    log.fatal({ err: stops.fatal.message }, `stopped: ${stops.fatal.message}`);
    return EXIT.failure;
  }
  // Anything not delivered (left in the spool or lost) makes the exit 1, for SIGTERM as for --once.
  if (report.inSpool > 0 || report.lost > 0) return EXIT.failure;
  if (!once) return EXIT.ok;
  // A --once run promises every accepted event delivered: a discarded one (NATS refused it, a drop policy made room) is a failure too.
  if (report.discarded > 0) {
    log.error({ discarded: report.discarded, discarded_by_reason: report.discardedByReason }, `--once: ${report.discarded} accepted event(s) were discarded (${countsText(report.discardedByReason)}); exit 1`);
    return EXIT.failure;
  }
  if (report.failedCollectors.length > 0) return EXIT.failure;
  return EXIT.ok;
}
