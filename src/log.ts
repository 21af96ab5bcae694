// Logging: pino JSON lines, written synchronously to a file descriptor (no
// transports: worker-thread transports break inside a compiled binary), or
// pino-pretty as an in-process stream for people at a terminal.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Paths pino censors, in case a config object ever reaches a log line. */
const REDACT = ["password", "token", "*.password", "*.token", "*.*.password", "*.*.token", "nkey_seed", "*.nkey_seed"];

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** 1 = stdout, 2 = stderr (used by --dry-run, whose stdout carries events) */
  fd: 1 | 2;
}

export function createLogger(o: LogOptions): Logger {
  const options: pino.LoggerOptions = {
    level: o.level,
    base: { agent: "tapio-collectors" },
    redact: { paths: REDACT, censor: "***" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const stream =
    o.format === "pretty"
      ? pretty({ destination: o.fd, sync: true, colorize: process.env.NO_COLOR === undefined && Boolean(o.fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) })
      : pino.destination({ fd: o.fd, sync: true });
  return pino(options, stream);
}

/** A logger that says nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * Logs at most one line per key per interval, with how many were suppressed,
 * so an outage or a flooding collector cannot flood the log.
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    readonly log: Logger,
    readonly intervalMs: number,
  ) {}

  warn(fields: Record<string, unknown>, message: string, key = message): void {
    this.#write("warn", fields, message, key);
  }

  error(fields: Record<string, unknown>, message: string, key = message): void {
    this.#write("error", fields, message, key);
  }

  #write(level: "warn" | "error", fields: Record<string, unknown>, message: string, key: string): void {
    const now = Date.now();
    const entry = this.#last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    this.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
