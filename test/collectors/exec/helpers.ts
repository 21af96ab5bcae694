// Shared by the exec collector's tests: the test program, configs, and what /proc says of a pid.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import pino, { type Logger } from "pino";
import { execConfigSchema, type ExecConfig } from "../../../src/collectors/exec/schema.ts";

/** The test program (program.ts), run by the Bun running the tests: no shell anywhere. */
export const PROGRAM = join(import.meta.dir, "program.ts");
export const BUN = process.execPath;

/** argv that runs the test program with `args`. */
export function program(...args: string[]): string[] {
  return [BUN, PROGRAM, ...args];
}

export function execConfig(raw: Record<string, unknown>): ExecConfig {
  return v.parse(execConfigSchema, raw);
}

/** The pids appended to `file` so far. */
export function pidsIn(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number);
}

/** The process exists, in any state (a zombie too). */
export function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * The process runs: it exists and is no zombie. A program's own children,
 * once it is gone, belong to PID 1, which reaps them (or, in a sandbox whose
 * PID 1 does not, leaves them zombies: dead, but not the agent's to reap).
 */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** A logger that keeps what it logs, parsed. */
export function capturingLogger(): { log: Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}
