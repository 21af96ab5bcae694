// Shared by the deploy tests: the repo, builds of the binary, and the CLI's own
// flag check.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
/** The Bun running the tests: the pinned one (node_modules/.bin/bun) when run as documented. */
export const BUN = process.execPath;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Run {
  const r = spawnSync(command[0]!, command.slice(1), {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? (process.env as Record<string, string>),
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs build.ts with `args`; throws with its output when it fails. */
export function build(args: string[]): Run {
  const r = run([BUN, "build.ts", ...args], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`bun build.ts ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The first executable of `names` on PATH (or in the sbin directories), if any. */
export function which(...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const path = join(dir, name);
      if (existsSync(path)) return path;
    }
  }
  return undefined;
}

/**
 * Checks a command line against the CLI's own flag definitions: the command's
 * parser is strict (an unknown flag or a missing value is a usage error, exit 2),
 * and --help after the flags makes it exit 0 without doing anything else.
 */
export function cliAccepts(args: string[]): Run {
  const known = ["run", "validate", "print-config", "version", "status", "tail", "top"];
  const withCommand = args.length > 0 && known.includes(args[0]!) ? args : ["run", ...args];
  return run([BUN, "src/main.ts", ...withCommand, "--help"]);
}
