// The compiled agent for tests that must see what a user's binary does:
// built by build.ts, and run with src/ hidden (an empty tmpfs over it in a
// mount namespace of its own), so that a Worker script or any file it still
// loaded from the source tree would fail here as on a user's machine.
import { join } from "node:path";
import { REPO } from "./agent.ts";

/** Root and unshare(1): what running with src/ hidden needs. */
export const canHideSource = process.getuid?.() === 0 && Bun.which("unshare") !== null;

/** Builds the agent with build.ts into `outfile`; throws with the build's output when it fails. */
export function buildBinary(outfile: string): string {
  const build = Bun.spawnSync([process.execPath, "build.ts", "--outfile", outfile], { cwd: REPO, stderr: "pipe", stdout: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  return outfile;
}

/** The command that runs `binary` with src/ hidden (for spawnAgent's `command`). */
export function withSourceHidden(binary: string): string[] {
  return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", 'mount -t tmpfs tmpfs "$1" && shift && exec "$@"', "sh", join(REPO, "src"), binary];
}
