// Logging: pino JSON lines, written synchronously to a file descriptor (no
// transports: worker-thread transports break inside a compiled binary), or
// pino-pretty as an in-process stream for people at a terminal, loaded only
// then (it costs the JSON-logging agent memory for nothing).
import { isatty } from "node:tty";
import pino, { type Logger } from "pino";
import { redactText } from "./config/redact.ts";

export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
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

/**
 * The format when --log-format is not given: lines for a person when the logs
 * go to a terminal (as Vector does), JSON for pipes, files and Kubernetes.
 */
export function defaultLogFormat(fd: 1 | 2, isTerminal: (fd: number) => boolean = isatty): LogFormat {
  return isTerminal(fd) ? "pretty" : "json";
}

export async function createLogger(o: LogOptions): Promise<Logger> {
  const options: pino.LoggerOptions = {
    level: o.level,
    base: { agent: "tapio-collectors" },
    redact: { paths: REDACT, censor: "***" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // the last guard: no secret this process holds leaves in a log line, whatever wrote it (a fault's stack included)
    hooks: { streamWrite: redactText },
  };
  const stream =
    o.format === "pretty"
      ? (await import("pino-pretty")).default({ destination: o.fd, sync: true, colorize: process.env.NO_COLOR === undefined && Boolean(o.fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) })
      : pino.destination({ fd: o.fd, sync: true });
  return pino(options, stream);
}

/** One line per kind of problem per this interval, at most. */
export const LOG_THROTTLE_MS = 10_000;

/**
 * Keeps an outage or a flooding collector from writing thousands of identical
 * log lines: lets one message per key through per interval and counts the
 * ones held back.
 */
export class LogThrottle {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = LOG_THROTTLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Undefined: stay quiet. A number: log now, that many were suppressed since the last line. */
  take(key: string): number | undefined {
    const now = this.now();
    const last = this.#last.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++;
      return undefined;
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    return last?.suppressed ?? 0;
  }
}
