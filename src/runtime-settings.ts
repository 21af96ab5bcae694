// Two of Bun's runtime defaults cost an agent that does little a large share
// of its CPU (bench/README.md, "The fifth cut" and "The sixth cut"):
// - its GC timer looks at the heap every second and, when the size moved,
//   runs an eden collection, which on the agent's heap costs 1-1.5 ms and
//   happens about every 2 s for ever, idle or not. The agent turns it off and
//   collects after its own work instead (gc-pacer.ts);
// - its allocator (Bun's mimalloc) hands the main thread's heaps to its
//   scavenger thread each time the event loop goes idle, and that thread
//   returns every free OS page inside the pages still in use (madvise, each
//   a TLB shootdown on a VM), which the next burst of work faults back in:
//   at a few wakes a second, 5-20% of the agent's CPU. The agent lets it do
//   that at most every 30 s; whole free pages are still returned as before.
// Both are read only from the environment, before any JavaScript runs, so the
// compiled agent executes itself again once (execve: the same pid, arguments
// and open files) with them set.
import { FFIType, ptr } from "bun:ffi";
import { runsTheAgent } from "./cli/implied-run.ts";
import { isCompiled } from "./compiled.ts";
import { openLibc } from "./libc.ts";

/** What `run` sets when the environment does not set it already. */
export const RUNTIME_ENV: Readonly<Record<string, string>> = {
  BUN_GC_TIMER_DISABLE: "1",
  MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "30000",
};
/** `TAPIO_RUNTIME_SETTINGS=off` keeps Bun's defaults. */
export const RUNTIME_SETTINGS_SWITCH = "TAPIO_RUNTIME_SETTINGS";

/** The environment to execute again with, or undefined when there is nothing to set (or it is not wanted). */
export function runtimeEnvironment(env: Readonly<Record<string, string | undefined>>, args: readonly string[]): Record<string, string> | undefined {
  if (env[RUNTIME_SETTINGS_SWITCH] === "off" || !runsTheAgent(args)) return undefined;
  const missing = Object.keys(RUNTIME_ENV).filter((key) => env[key] === undefined);
  if (missing.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  for (const key of missing) out[key] = RUNTIME_ENV[key]!;
  return out;
}

/** A NULL-terminated char*[]; `keep` holds the buffers alive until the call. */
function cStrings(values: readonly string[], keep: Buffer[]): BigUint64Array {
  const array = new BigUint64Array(values.length + 1);
  values.forEach((value, i) => {
    const bytes = Buffer.from(`${value}\0`);
    keep.push(bytes);
    array[i] = BigInt(ptr(bytes));
  });
  return array;
}

/**
 * In the compiled agent on Linux, executes it again with RUNTIME_ENV set,
 * and so never returns; otherwise (from source, another command, already
 * set, `off`, or execve failed) returns and the agent runs as it is.
 */
export function applyRuntimeSettings(): void {
  if (process.platform !== "linux" || !isCompiled()) return;
  const args = process.argv.slice(2);
  const env = runtimeEnvironment(process.env, args);
  if (!env) return;
  const libc = openLibc({ execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } });
  if (typeof libc === "string") return;
  const keep: Buffer[] = [];
  // /proc/self/exe: this very file, even if the path now names another (an upgrade in place).
  const file = Buffer.from("/proc/self/exe\0");
  const argv = cStrings([process.argv0, ...args], keep);
  const envp = cStrings(Object.entries(env).map(([key, value]) => `${key}=${value}`), keep);
  libc.execve(ptr(file), ptr(argv), ptr(envp));
  // Only a failure returns (no /proc, a seccomp policy): run with Bun's defaults.
}
