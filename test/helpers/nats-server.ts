// Real nats-server processes for integration tests. Each server listens on
// 127.0.0.1 only, on a port the server picks itself (`-p -1`, so two test
// files never race for the same free port), with its own JetStream store.
// Every started server is tracked: call `stopAllNatsServers` from afterAll;
// should a test process die without it, the cleanup watchdog kills them.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAtExit, makeTempDir, removeTempDir, spare } from "./cleanup.ts";
import { createServer, type AddressInfo } from "node:net";

export interface NatsServerOptions {
  /** run with JetStream enabled (default true) */
  jetstream?: boolean;
  /** extra nats-server configuration text (authorization, tls, ...) */
  config?: string;
  /** JetStream store; a fresh temp dir (removed by stop) by default */
  storeDir?: string;
  /** fixed port; a free one chosen by the server by default */
  port?: number;
}

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** the server's config file: rewrite it and send SIGHUP to reload (e.g. permissions) */
  readonly configFile: string;
  /** pid of the current process, undefined while killed */
  readonly pid: number | undefined;
  /** everything the current process logged */
  log(): string;
  /** Terminates the server for good and removes what it created. Idempotent. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) and waits for the exit; the store stays
   * for restart(). SIGSTOP / SIGCONT freeze and thaw it (a hung server); they
   * resolve once every thread of the server is stopped / running again.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port with the same store. */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const LISTENING = /Listening for client connections on [^\s]+:(\d+)/;
const stoppers = new Set<() => Promise<void>>();

function serverBinary(): string {
  return existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const workDir = makeTempDir("nats");
  const storeDir = opts.storeDir ?? join(workDir, "jetstream");
  const configFile = join(workDir, "server.conf");
  writeFileSync(configFile, opts.config ?? "");

  let port = opts.port ?? -1;
  let child: ChildProcess | undefined;
  let output = "";
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = ["-c", configFile, "-a", "127.0.0.1", "-p", String(port)];
    if (opts.jetstream ?? true) args.push("-js", "-sd", storeDir);
    output = "";
    const proc = spawn(serverBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const { pid } = proc;
    if (pid !== undefined) {
      killAtExit(pid);
      proc.once("exit", () => spare(pid));
    }
    const ready = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not log "Server is ready" within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(new Error(`nats-server ${why}; log:\n${output}`));
      };
      const onExit = (code: number | null, signal: string | null) => fail(`exited early (code ${code}, signal ${signal})`);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const listening = LISTENING.exec(output);
        if (output.includes("Server is ready") && listening) {
          clearTimeout(timer);
          proc.off("exit", onExit);
          resolve(Number(listening[1]));
        }
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", onData);
      proc.once("error", (err) => fail(`failed to start: ${err.message}`));
      proc.once("exit", onExit);
    });
    port = await ready;
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    if (signal === "SIGSTOP" || signal === "SIGCONT") {
      proc.kill(signal);
      // a stop takes effect asynchronously: a busy server can still answer a
      // request sent right after kill() returned, unless we wait for it
      if (proc.pid !== undefined) await waitForThreads(proc.pid, signal === "SIGSTOP");
      return;
    }
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    await exited;
    child = undefined;
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    stoppers.delete(stop);
    await kill("SIGTERM");
    removeTempDir(workDir);
  };
  stoppers.add(stop);

  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    configFile,
    get pid() {
      return child?.pid;
    },
    log: () => output,
    stop,
    kill,
    async restart() {
      if (stopped) throw new Error("nats-server was stopped; start a new one");
      await kill("SIGTERM");
      await launch();
    },
  };
}

const THREAD_STATE_TIMEOUT_MS = 2000;

/** Waits until every thread of `pid` is stopped (`stopped`) or none is; Linux /proc only, else a short sleep. */
async function waitForThreads(pid: number, stopped: boolean): Promise<void> {
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) {
    await Bun.sleep(50);
    return;
  }
  const isStopped = (tid: string): boolean => {
    try {
      // "<tid> (<comm>) <state> ...": the name may contain spaces or parentheses
      const stat = readFileSync(`${tasks}/${tid}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state === "T" || state === "t";
    } catch {
      return stopped; // the thread is gone: it counts as whatever we wait for
    }
  };
  const until = Date.now() + THREAD_STATE_TIMEOUT_MS;
  for (;;) {
    let tids: string[];
    try {
      tids = readdirSync(tasks);
    } catch {
      return; // the process is gone
    }
    if (tids.every((tid) => isStopped(tid) === stopped)) return;
    if (Date.now() > until) throw new Error(`nats-server ${pid}: threads not ${stopped ? "stopped" : "running"} within ${THREAD_STATE_TIMEOUT_MS} ms`);
    await Bun.sleep(1);
  }
}

/** Stops every server started so far; use as `afterAll(stopAllNatsServers)`. */
export async function stopAllNatsServers(): Promise<void> {
  await Promise.all([...stoppers].map((stop) => stop()));
}

/** A loopback port nothing listens on right now (for a server started later on a known port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
