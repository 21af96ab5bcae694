// The peak RSS and CPU time of a child process, as the child measures itself
// (peak-usage.ts, preloaded): what Bun reports for a child
// (resourceUsage().maxRSS) can be an earlier child's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "./cleanup.ts";

export interface Usage {
  readonly rssMiB: number;
  readonly cpuSeconds: number;
}

/** What to add to a child's bun command line and environment, and how to read the measure once it exited. */
export function usageMeter(): { preload: string[]; env: Record<string, string>; read(): Usage } {
  const out = join(makeTempDir("usage"), "usage.json");
  return {
    preload: ["--preload", join(import.meta.dir, "peak-usage.ts")],
    env: { TAPIO_TEST_USAGE_FILE: out },
    read: () => JSON.parse(readFileSync(out, "utf8")) as Usage,
  };
}
