// Starting and stopping an outside program, argv only (no shell: the
// distroless image has none). Each program leads its own process group
// (setsid), so stopping it reaches whatever it started too: SIGTERM to the
// group, SIGKILL after a grace; when the leader exits, what it left in its
// group is killed. The agent's exit, however it comes (a second SIGTERM, a
// fault), SIGKILLs every group still running: no program outlives the agent
// it reports to, short of a SIGKILL of the agent itself (then a program's
// next write to its closed stdout gets SIGPIPE).
import { accessSync, constants, statSync } from "node:fs";
import { resolve } from "node:path";
import type { ExecConfig } from "./schema.ts";

/** How long a program has between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 5000;

/** The PATH a program gets when the agent has none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The process groups of the programs running now. */
const liveGroups = new Set<number>();
let exitHooked = false;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
  });
}

/**
 * The program's whole environment: PATH and HOME (the agent's, which hold no
 * secret), then the configured keys. Nothing else of the agent's environment
 * (NATS credentials, tokens) is passed on.
 */
export function programEnv(config: ExecConfig): Record<string, string> {
  return { PATH: process.env.PATH ?? DEFAULT_PATH, HOME: process.env.HOME ?? "/", ...config.env };
}

/** Why a program could not be started, naming what is wrong. */
export class StartError extends Error {
  override readonly name = "StartError";
}

/**
 * The executable `command[0]` names: a path with a "/" (relative ones from
 * working_dir), or a name looked up on the program's PATH. Throws StartError
 * saying what is missing.
 */
export function resolveCommand(config: ExecConfig): string {
  const [program] = config.command as [string, ...string[]];
  if (program.includes("/")) return resolve(config.working_dir, program);
  const path = programEnv(config).PATH!;
  const found = Bun.which(program, { PATH: path });
  if (!found) throw new StartError(`cannot start "${program}": no executable of that name on PATH (${path})`);
  return found;
}

/** Throws StartError when `config`'s program could not be started, saying why: for `check` and for a failed spawn. */
export function checkStartable(config: ExecConfig): void {
  const path = resolveCommand(config);
  const program = config.command[0];
  const shown = path === program ? path : `${program} (${path})`;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    throw new StartError(`cannot start ${shown}: ${describeErrno(err)}`);
  }
  if (!isFile) throw new StartError(`cannot start ${shown}: not a regular file`);
  try {
    accessSync(path, constants.X_OK);
  } catch (err) {
    throw new StartError(`cannot start ${shown}: ${describeErrno(err)} (it needs the execute permission for the agent's user)`);
  }
  let dir: boolean;
  try {
    dir = statSync(config.working_dir).isDirectory();
  } catch (err) {
    throw new StartError(`cannot start ${program}: working_dir ${config.working_dir}: ${describeErrno(err)}`);
  }
  if (!dir) throw new StartError(`cannot start ${program}: working_dir ${config.working_dir} is not a directory`);
}

function describeErrno(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return (err as Error).message;
}

export type RunningProgram = Bun.Subprocess<"pipe", "pipe", "pipe">;

/** Starts the program in its own process group; throws StartError saying why it could not. */
export function spawnProgram(config: ExecConfig): RunningProgram {
  const path = resolveCommand(config);
  hookExit();
  let proc: RunningProgram;
  try {
    proc = Bun.spawn([path, ...config.command.slice(1)], {
      cwd: config.working_dir,
      env: programEnv(config),
      // A pipe closed at once, not "ignore": that opens /dev/null, which a bare root may not have.
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
  } catch (err) {
    // posix_spawn names the program even when the working directory is what is missing: find the real cause.
    checkStartable(config);
    throw new StartError(`cannot start ${config.command[0]}: ${describeErrno(err)}`);
  }
  liveGroups.add(proc.pid);
  void Promise.resolve(proc.stdin.end()).catch(() => {});
  return proc;
}

/**
 * Stops `proc`'s process group: SIGTERM now, SIGKILL after `graceMs` unless
 * the program has exited by then. Call `exited` once it has.
 */
export class ProcessGroup {
  #killTimer: ReturnType<typeof setTimeout> | undefined;
  #terminating = false;
  #gone = false;

  constructor(
    readonly proc: RunningProgram,
    readonly graceMs = KILL_GRACE_MS,
  ) {}

  get terminating(): boolean {
    return this.#terminating;
  }

  terminate(): void {
    if (this.#terminating || this.#gone) return;
    this.#terminating = true;
    killGroup(this.proc.pid, "SIGTERM");
    this.#killTimer = setTimeout(() => killGroup(this.proc.pid, "SIGKILL"), this.graceMs);
  }

  /** The leader has exited (and is reaped): what it left in its group is killed now. */
  exited(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#killTimer);
    killGroup(this.proc.pid, "SIGKILL");
    liveGroups.delete(this.proc.pid);
  }
}
