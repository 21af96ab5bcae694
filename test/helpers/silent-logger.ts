import pino, { type Logger } from "pino";

/** A logger that says nothing: for tests that do not read the log. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
