// Event-driven reading of /dev/kmsg without blocking the event loop: a Worker
// (kmsg-watch-worker.ts) waits in poll(2) on the collector's own fd and says
// when a record is there; the collector then reads what is there, non-blocking,
// as it always did, and arms the worker again once its events are emitted. So
// while the queue pushes back, nobody reads and the kernel's ring buffer holds
// the records; and while nothing happens, nothing wakes.
//
// Why not a blocking read(2) in the worker: a Worker blocked in read(2) cannot
// be terminated (measured on Bun 1.4.4: terminate() takes effect only when the
// read returns, at the next kernel message; the signal Bun sends the thread
// restarts read(2)), while poll(2) also waits on an eventfd that ends it at
// once. (terminate() alone interrupts poll(2) today, as poll(2) is never
// restarted after a signal; the eventfd does not depend on that.)
import { closeSync, writeSync } from "node:fs";
import { CONTROL, type WatchMessage, type WatchStart } from "./kmsg-watch-protocol.ts";
import { workerScript } from "../common/worker-script.ts";


/** One eventfd increment: what ends the worker's poll(2). */
const WAKE = new BigUint64Array([1n]);

export class KmsgWatch {
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  readonly #wakeFd: number;
  readonly #closed: Promise<void>;
  /** the caller of readable() waiting for the worker */
  #waiting: { resolve: (readable: boolean) => void; reject: (err: Error) => void } | undefined;
  /** why the worker cannot go on, once it said so or died */
  #failure: Error | undefined;

  private constructor(worker: Worker, ctl: Int32Array, wakeFd: number, closed: Promise<void>) {
    this.#worker = worker;
    this.#ctl = ctl;
    this.#wakeFd = wakeFd;
    this.#closed = closed;
    worker.addEventListener("message", (event: MessageEvent<WatchMessage>) => {
      if (event.data.type === "readable") this.#settle(true);
      else if (event.data.type === "failed") this.#fail(new Error(event.data.reason));
    });
    worker.addEventListener("error", (event) => this.#fail(new Error(`the kmsg worker failed: ${event.message}`)));
    void closed.then(() => this.#fail(new Error("the kmsg worker ended")));
  }

  /** Starts a worker waiting on `fd`; rejects, with why, where that cannot be done (no Workers, no libc, no eventfd). */
  static async start(fd: number): Promise<KmsgWatch> {
    if (typeof Worker !== "function") throw new Error("Workers are unavailable");
    const control = new SharedArrayBuffer(4);
    const worker = new Worker(workerScript("collectors/kernel/kmsg-watch-worker.ts", new URL("./kmsg-watch-worker.ts", import.meta.url)));
    const closed = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve(), { once: true }));
    const ready = await new Promise<WatchMessage | Error>((resolve) => {
      worker.addEventListener("message", (event: MessageEvent<WatchMessage>) => resolve(event.data), { once: true });
      worker.addEventListener("error", (event) => resolve(new Error(`the kmsg worker failed to start: ${event.message}`)), { once: true });
      void closed.then(() => resolve(new Error("the kmsg worker ended before it started")));
      worker.postMessage({ fd, control } satisfies WatchStart);
    });
    if (ready instanceof Error || ready.type !== "ready") {
      worker.terminate();
      await closed;
      throw ready instanceof Error ? ready : new Error(ready.type === "failed" ? ready.reason : `unexpected ${ready.type} from the kmsg worker`);
    }
    return new KmsgWatch(worker, new Int32Array(control), ready.wakeFd, closed);
  }

  /**
   * Resolves true once the fd has something to read, false when `signal`
   * aborts first; rejects when the worker cannot wait any more (the caller
   * falls back to polling).
   */
  readable(signal: AbortSignal): Promise<boolean> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const onAbort = () => this.#settle(false);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting = {
        resolve: (readable) => {
          signal.removeEventListener("abort", onAbort);
          resolve(readable);
        },
        reject: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      Atomics.store(this.#ctl, 0, CONTROL.armed);
      Atomics.notify(this.#ctl, 0);
    });
  }

  /** Ends the worker, also while it waits in poll(2); the fd it watched may be closed once this resolves. */
  async stop(): Promise<void> {
    Atomics.store(this.#ctl, 0, CONTROL.stop);
    Atomics.notify(this.#ctl, 0);
    writeSync(this.#wakeFd, WAKE);
    // The worker leaves poll(2) at the wake-up; terminate() ends it there, whatever it was about to do.
    this.#worker.terminate();
    await this.#closed;
    closeSync(this.#wakeFd);
    this.#settle(false);
  }

  #settle(readable: boolean): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(readable);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#failure);
  }
}
