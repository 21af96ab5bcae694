// Event-driven reading of /dev/kmsg without blocking the event loop: a Worker
// (kmsg-watch-worker.ts) waits in poll(2) on the collector's own fd, reads
// what is there (non-blocking, one record per read) and posts the records;
// the collector takes them with next(). Backpressure: while MAX_WAITING
// messages wait for the collector (its emits wait on a full queue), the worker
// is paused, nobody reads, and the kernel's ring buffer holds the records; and
// while nothing happens, nothing wakes.
//
// Why not a blocking read(2) in the worker: a Worker blocked in read(2) cannot
// be terminated (measured on Bun 1.4.4: terminate() takes effect only when the
// read returns, at the next kernel message; the signal Bun sends the thread
// restarts read(2)), while poll(2) also waits on an eventfd that ends it at
// once. (terminate() alone interrupts poll(2) today, as poll(2) is never
// restarted after a signal; the eventfd does not depend on that.)
import { closeSync, writeSync } from "node:fs";
import { CONTROL, type WatchMessage, type WatchRecords, type WatchStart } from "./kmsg-watch-protocol.ts";
import { workerScript } from "../common/worker-script.ts";

/** One eventfd increment: what ends the worker's poll(2). */
const WAKE = new BigUint64Array([1n]);

/** Messages waiting for the collector at most before the worker is paused (each up to MAX_RECORDS_PER_MESSAGE records). */
export const MAX_WAITING = 2;

export class KmsgWatch {
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  readonly #wakeFd: number;
  readonly #closed: Promise<void>;
  /** what the worker read and the collector has not taken yet, oldest first */
  readonly #waitingRecords: WatchRecords[] = [];
  /** the caller of next() waiting for records */
  #waiting: { resolve: (records: WatchRecords | undefined) => void; reject: (err: Error) => void } | undefined;
  /** why the worker cannot go on, once it said so or died */
  #failure: Error | undefined;
  #pauses = 0;

  private constructor(worker: Worker, ctl: Int32Array, wakeFd: number, closed: Promise<void>) {
    this.#worker = worker;
    this.#ctl = ctl;
    this.#wakeFd = wakeFd;
    this.#closed = closed;
    worker.addEventListener("message", (event: MessageEvent<WatchMessage>) => {
      if (event.data.type === "records") this.#received(event.data);
      else if (event.data.type === "failed") this.#fail(new Error(event.data.reason));
    });
    worker.addEventListener("error", (event) => this.#fail(new Error(`the kmsg worker failed: ${event.message}`)));
    void closed.then(() => this.#fail(new Error("the kmsg worker ended")));
  }

  /** Starts a worker for `fd`, paused until read() is called; rejects, with why, where that cannot be done (no Workers, no libc, no eventfd). */
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

  /** Lets the worker read: from now on the fd is the worker's (the caller reads it no more, unless next() rejects). */
  read(): void {
    this.#control(CONTROL.paused, CONTROL.reading);
  }

  /**
   * The next records the worker read, undefined when `signal` aborts first;
   * rejects when the worker cannot go on (the caller falls back to reading
   * the fd itself), once what it read before is taken.
   */
  next(signal: AbortSignal): Promise<WatchRecords | undefined> {
    const records = this.take();
    if (records) return Promise.resolve(records);
    if (this.#failure) return Promise.reject(this.#failure);
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise<WatchRecords | undefined>((resolve, reject) => {
      const onAbort = () => this.#settle(undefined);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting = {
        resolve: (records) => {
          signal.removeEventListener("abort", onAbort);
          resolve(records);
        },
        reject: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
    });
  }

  /** Records already received, if any, without waiting. */
  take(): WatchRecords | undefined {
    const records = this.#waitingRecords.shift();
    // Room again: the worker reads on (a stop is never undone).
    if (records && this.#waitingRecords.length < MAX_WAITING) this.#control(CONTROL.paused, CONTROL.reading);
    return records;
  }

  /** How often the worker was paused because MAX_WAITING messages waited (tests, diagnosis). */
  get pauses(): number {
    return this.#pauses;
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
    this.#settle(undefined);
  }

  #received(records: WatchRecords): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve(records);
      return;
    }
    this.#waitingRecords.push(records);
    // The collector is behind (its emits wait): the worker stops reading, the kernel buffers.
    if (this.#waitingRecords.length >= MAX_WAITING && this.#control(CONTROL.reading, CONTROL.paused)) this.#pauses++;
  }

  /** From `from` to `to`, unless the control is something else (stop is never undone); whether it changed. */
  #control(from: number, to: number): boolean {
    if (Atomics.compareExchange(this.#ctl, 0, from, to) !== from) return false;
    if (to === CONTROL.reading) Atomics.notify(this.#ctl, 0);
    return true;
  }

  #settle(records: WatchRecords | undefined): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(records);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#failure);
  }
}
