// Leaves nothing behind a test run, even one that crashed or skipped its
// afterAll: temp dirs live under one root per test process, and a watchdog
// (a detached shell reading a pipe only this process holds open) SIGKILLs the
// registered server processes and removes the root once this process is gone.
// bun test runs no process "exit" hooks, so a hook could not do this. The
// watchdog waits on the pipe's end of file, not by polling: a `sleep` every
// half second would be an exec and an exit the agents' process collectors
// see (bench:detect's idle check counts them as wake-ups).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let root: string | undefined;

function testRoot(): string {
  if (root) return root;
  const dir = mkdtempSync(join(tmpdir(), `tapio-test-${process.pid}-`));
  mkdirSync(join(dir, "pids"));
  const script =
    `while read -r _; do :; done; ` +
    `for f in "$0"/pids/*; do [ -e "$f" ] && kill -9 "\${f##*/}" 2>/dev/null; done; rm -rf "$0"`;
  // detached: its own process group, so a Ctrl-C of the test run does not take it down first.
  // Its stdin is a pipe whose write end only this process holds (close-on-exec): the kernel
  // closes it when this process ends, however it ends, and the shell's read sees the end.
  const watchdog = spawn("sh", ["-c", script, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  watchdog.unref();
  root = dir;
  return dir;
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(testRoot(), `${prefix}-`));
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Registers a child process for the watchdog to kill if this process dies first. */
export function killAtExit(pid: number): void {
  writeFileSync(join(testRoot(), "pids", String(pid)), "");
}

/** The process ended normally: the watchdog must not kill a later process that reuses its pid. */
export function spare(pid: number): void {
  rmSync(join(testRoot(), "pids", String(pid)), { force: true });
}
