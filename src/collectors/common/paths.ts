// Host paths under a configurable root, so the agent can run in a container
// with the host's /proc and /sys mounted elsewhere (e.g. /host/proc).
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
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `${path} does not exist (is the host path mounted?)` : `cannot read ${path}: ${(err as Error).message}`);
  }
}
