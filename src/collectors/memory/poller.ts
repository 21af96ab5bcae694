// poll(2) over many fds without blocking the event loop: a worker
// (poller-worker.ts) blocks in poll(2) and posts which fds fired; the main
// thread handles them and then lets it poll again (backpressure). Used for
// PSI triggers (POLLPRI) and cgroup v1 OOM eventfds (POLLIN). A wake-up
// eventfd lets the main thread interrupt the wait to change the set or stop.
import { EFD_CLOEXEC, EFD_NONBLOCK } from "../../libc.ts";
import { errno, libc, signalEventfd } from "./libc.ts";
import { workerScript } from "../common/worker-script.ts";

export type ToPoller =
  | { op: "start"; wakeFd: number }
  | { op: "add"; id: number; fd: number; events: number; drain: boolean }
  | { op: "remove"; id: number }
  | { op: "resume" }
  | { op: "stop" };

export type FromPoller = { ready: true } | { fired: Fired[] } | { error: string } | { stopped: true };

/** An fd that fired: its id (from add) and poll's revents. */
export interface Fired {
  id: number;
  revents: number;
}

/** How long start and stop wait for the worker: it answers in milliseconds unless it cannot run at all. */
const WORKER_WAIT_MS = 5000;


export class FdPoller {
  readonly #worker: Worker;
  readonly #wakeFd: number;
  readonly #signal: (fd: number) => void;
  #nextId = 1;
  #stopped: Promise<void> | undefined;

  private constructor(worker: Worker, wakeFd: number, signal: (fd: number) => void) {
    this.#worker = worker;
    this.#wakeFd = wakeFd;
    this.#signal = signal;
  }

  /**
   * Starts the worker. `onFired` is awaited before the worker polls again;
   * `onError` is told once if polling stops for good (the fds are then closed).
   */
  static async start(onFired: (fired: Fired[]) => Promise<void>, onError: (reason: string) => void): Promise<FdPoller | { error: string }> {
    const loaded = libc();
    if ("error" in loaded) return loaded;
    const c = loaded.libc;
    const wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd < 0) return { error: `eventfd(2) failed: errno ${errno(c)}` };
    let worker: Worker;
    try {
      worker = new Worker(workerScript("collectors/memory/poller-worker.ts", new URL("./poller-worker.ts", import.meta.url)));
    } catch (err) {
      c.close(wakeFd);
      return { error: `cannot start the poll(2) worker: ${err instanceof Error ? err.message : String(err)}` };
    }
    const poller = new FdPoller(worker, wakeFd, (fd) => signalEventfd(c, fd));
    const ready = await new Promise<true | string>((resolve) => {
      const timer = setTimeout(() => resolve(`the poll(2) worker did not start within ${WORKER_WAIT_MS} ms`), WORKER_WAIT_MS);
      worker.onerror = (event) => {
        clearTimeout(timer);
        resolve(`the poll(2) worker failed: ${event.message}`);
      };
      worker.onmessage = (event: MessageEvent<FromPoller>) => {
        clearTimeout(timer);
        resolve("ready" in event.data ? true : "error" in event.data ? event.data.error : "the poll(2) worker said something unexpected");
      };
      poller.#post({ op: "start", wakeFd });
    });
    if (ready !== true) {
      worker.terminate();
      c.close(wakeFd);
      return { error: ready };
    }
    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      onError(reason);
    };
    worker.onerror = (event) => fail(`the poll(2) worker failed: ${event.message}`);
    worker.onmessage = (event: MessageEvent<FromPoller>) => {
      const message = event.data;
      if ("fired" in message) {
        onFired(message.fired).then(
          () => poller.#post({ op: "resume" }),
          (err: unknown) => fail(err instanceof Error ? err.message : String(err)),
        );
      } else if ("error" in message) fail(message.error);
    };
    // The worker must not keep the agent alive on its own.
    worker.unref();
    return poller;
  }

  /** Hands `fd` over (the worker closes it when it is removed or polling stops); returns its id. `drain`: an eventfd, read to reset. */
  add(fd: number, events: number, drain: boolean): number {
    const id = this.#nextId++;
    this.#post({ op: "add", id, fd, events, drain });
    this.#signal(this.#wakeFd);
    return id;
  }

  remove(id: number): void {
    this.#post({ op: "remove", id });
    this.#signal(this.#wakeFd);
  }

  /** Stops the worker, which closes every fd handed over; resolves once it has (or after WORKER_WAIT_MS at worst). */
  stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#worker.terminate();
        libcClose(this.#wakeFd);
        resolve();
      };
      const timer = setTimeout(done, WORKER_WAIT_MS);
      this.#worker.onmessage = (event: MessageEvent<FromPoller>) => {
        if ("stopped" in event.data) done();
      };
      this.#post({ op: "stop" });
      this.#signal(this.#wakeFd);
    });
    return this.#stopped;
  }

  #post(message: ToPoller): void {
    this.#worker.postMessage(message);
  }
}

function libcClose(fd: number): void {
  const loaded = libc();
  if ("libc" in loaded) loaded.libc.close(fd);
}
