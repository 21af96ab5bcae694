// `run`: load the config, start the orchestrator, stop on a signal (or after
// one round with --once), drain, and turn the outcome into an exit code.
import { loadConfigFile } from "../config/load.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { createPublisher } from "../publish/index.ts";
import { Orchestrator } from "../orchestrator/orchestrator.ts";
import { Spool } from "../spool/spool.ts";
import { redactUrlCredentials } from "../config/redact.ts";
import { AgentMetrics } from "../metrics/metrics.ts";
import { HttpServer, type HttpServerOptions } from "../http/server.ts";
import { ConfigReloader } from "../reload/reloader.ts";


import { createLogger, LOG_LEVELS, type LogFormat, type LogLevel } from "../log.ts";
import { CONFIG_FLAG, EXIT, HELP, UsageError, configPath, parseFlags } from "./usage.ts";
import { AGENT_VERSION } from "./version.ts";

const RUN_FLAGS = {
  ...CONFIG_FLAG,
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "dry-run": { type: "boolean" },
  once: { type: "boolean" },
} as const;

export async function runCommand(args: string[]): Promise<number> {
  const flags = parseFlags("run", args, RUN_FLAGS);
  if (flags.help) {
    process.stdout.write(`${HELP.run}\n`);
    return EXIT.ok;
  }
  const level = flags["log-level"];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }
  const format = flags["log-format"] ?? "json";
  if (format !== "json" && format !== "pretty") throw new UsageError(`--log-format: expected json or pretty, got "${format}"`);
  const dryRun = flags["dry-run"] ?? false;
  const once = flags.once ?? false;

  const file = configPath(flags.config);
  const registry = builtinRegistry();
  const config = await loadConfigFile(file, registry);
  const log = createLogger({
    level: (level as LogLevel | undefined) ?? config.orchestrator.log_level,
    format: format as LogFormat,
    fd: dryRun ? 2 : 1,
  });
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

  const publishError = (reason: string, _err: Error, events: number) => orchestrator.ledger.publishFailed(reason, events);
  const publisher = createPublisher(config.nats, { log, dryRun, onError: publishError });
  // --dry-run prints events and must neither write nor replay a real spool.
  const spool = config.spool.enabled && !dryRun
    ? Spool.open({ path: config.spool.path, maxBytes: config.spool.max_bytes, whenFull: config.spool.when_full, log })
    : undefined;
  let fatal: Error | undefined;
  let signalled: string | undefined;
  const { promise: stopRequested, resolve: requestStop } = Promise.withResolvers<void>();
  const build = { version: AGENT_VERSION, bun: Bun.version };
  const orchestrator = new Orchestrator({
    config,
    registry,
    publisher,
    spool,
    log,
    once,
    onFatal: (err) => {
      fatal ??= err;
      requestStop();
    },
    onBatchDone: (seconds) => metrics.batchDone(seconds),
    onHandoff: (seconds) => metrics.handoff(seconds),
  });
  const metrics = new AgentMetrics(orchestrator, build);
  // --dry-run is a look at the events, not a running agent: no endpoints.
  const http = config.http.enabled && !dryRun ? startHttp({ config: config.http, orchestrator, metrics, log, build }) : undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      const queued = orchestrator.queue.length;
      log.warn({ signal, queued, spool_depth: orchestrator.delivery.spoolDepth() }, `second ${signal}: exiting now; ${queued} queued event(s) are lost, spooled ones stay`);
      process.exit(EXIT.failure);
    }
    signalled = signal;
    log.info({ signal }, `${signal} received: shutting down`);
    requestStop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // A collector's stray promise or timer must not take the agent down.
  process.on("unhandledRejection", (reason) => log.error({ err: String(reason) }, `unhandled rejection: ${String(reason)}`));
  process.on("uncaughtException", (err) => log.error({ err: err.message, stack: err.stack }, `uncaught exception: ${err.message}`));

  orchestrator.start();
  // Hot reload, for a running agent (a --once run is over before an edit could matter).
  const reloader = once
    ? undefined
    : new ConfigReloader({
        file,
        registry,
        log,
        onResult: (result) => metrics.reloads[result]++,
        apply: async (next) => {
          await orchestrator.reconfigure(next, (nats) => createPublisher(nats, { log, dryRun, onError: publishError }));
          if (level === undefined) log.level = next.orchestrator.log_level;
        },
      });
  await reloader?.start();
  if (once) {
    const limit = config.orchestrator.once_timeout;
    const timer = setTimeout(() => {
      log.error(`--once: the collectors' round took longer than orchestrator.once_timeout (${limit}); stopping`);
      requestStop();
    }, limit.ms);
    await Promise.race([orchestrator.roundsDone(), stopRequested]);
    clearTimeout(timer);
  } else {
    await stopRequested;
  }
  reloader?.stop();
  const report = await orchestrator.stop();
  http?.stop();
  await metrics.shutdown();
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);

  if (fatal) {
    log.fatal({ err: fatal.message }, `stopped: ${fatal.message}`);
    return EXIT.failure;
  }
  // Anything not delivered (left in the spool or lost) makes the exit 1, for SIGTERM as for --once.
  if (report.inSpool > 0 || report.lost > 0) return EXIT.failure;
  if (once && report.failedCollectors.length > 0) return EXIT.failure;
  return EXIT.ok;
}

/** Starts the endpoints; a taken port is a clear error, not a stack. */
function startHttp(options: HttpServerOptions): HttpServer {
  try {
    return new HttpServer(options);
  } catch (err) {
    throw new Error(`http.listen ${options.config.listen}: cannot listen: ${(err as Error).message}`);
  }
}
