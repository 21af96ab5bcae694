// Host paths under a configurable root, so the agent can run in a container
// with the host's /proc and /sys mounted elsewhere (e.g. /host/proc).
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** `under("/host/proc", "/proc/meminfo")` is "/host/proc/meminfo"; with root "/proc" it is "/proc/meminfo". */
export function under(root: string, ...parts: string[]): string {
  return join(root, ...parts);
}

/** Reads a text file; a missing file is an Error whose message names the path (for degraded health). */
export async function readText(path: string): Promise<string> {
  try {
    return await Bun.file(path).text();
  } catch (err) {
    throw readError(path, err);
  }
}

/**
 * readText, synchronously: for procfs, sysfs and cgroupfs files, which the
 * kernel builds in memory (a read never waits for a disk). One native call,
 * where an async read costs a trip through the thread pool and a promise:
 * about half the CPU for the small files pollers read by the hundred.
 */
export function readTextSync(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw readError(path, err);
  }
}

/** readTextSync, or undefined when the file cannot be read (a process or cgroup gone meanwhile: a race, not an error). */
export function readTextIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function readError(path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new Error(code === "ENOENT" ? `${path} does not exist (is the host path mounted?)` : `cannot read ${path}: ${(err as Error).message}`);
}

/** Lets the event loop run (NATS I/O, timers) between chunks of synchronous reads. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
