// The main thread's end of the process events connector: starts the worker
// (connector-worker.ts), waits for the subscription, then hands over what the
// worker posts: events of the processes that count, ready to emit, and its
// listings' health. pause/resume carry backpressure to the worker; close stops
// it at once, however idle (an eventfd write wakes its poll).
import { writeSync } from "node:fs";
import type { EventInput } from "../../event/event.ts";
import { CONTROL_PAUSE, CONTROL_RUN, CONTROL_STOP, type Listed, type WorkerMessage, type WorkerStart } from "./connector.ts";
import type { TableConfig } from "./table.ts";

export type { Listed } from "./connector.ts";
import { workerScript } from "../common/worker-script.ts";

/**
 * The worker's module. In the compiled binary it is an entry point of its own (build.ts), found by
 * its path under src/, the entry points' common directory; from source, this module's sibling.
 */
const WORKER = workerScript("collectors/process/connector-worker.ts", new URL("./connector-worker.ts", import.meta.url));

export interface ProcEventsOptions {
  readonly receiveBuffer: number;
  readonly ackTimeoutMs: number;
  /** the worker's process table: what counts */
  readonly table: TableConfig;
  /** how often the worker lists /proc anyway */
  readonly resyncMs: number;
  /** events of processes that count, in the kernel's order */
  onEvents(events: EventInput[]): void;
  /** a listing is done (the first: the baseline) */
  onListed(listed: Listed): void;
  onParseError(source: string, detail: string): void;
  /** the kernel dropped records (ENOBUFS); the worker lists /proc to catch up. `overflows`: so far */
  onOverflow(overflows: number): void;
  /** reading stopped for good after the subscription; the worker is gone */
  onFailed(reason: string): void;
}

export type OpenResult = { readonly ok: true; readonly events: ProcEvents } | { readonly ok: false; readonly reason: string; readonly code?: string };

export class ProcEvents {
  readonly #worker: Worker;
  /** [0]: CONTROL_*; [1]: 1 once the main thread will not write to the eventfd again */
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  #wakeFd: number | undefined;
  #closed: Promise<void>;
  #closing = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#closed = new Promise((resolve) => {
      worker.addEventListener("message", (e: MessageEvent<WorkerMessage>) => e.data.type === "closed" && resolve());
      // A worker that threw ends without saying "closed".
      worker.addEventListener("error", () => resolve());
    });
  }

  /** Subscribes; on failure (no permission, another network or pid namespace, no libc) says why and leaves nothing running. */
  static open(options: ProcEventsOptions): Promise<OpenResult> {
    const worker = new Worker(WORKER);
    const events = new ProcEvents(worker);
    return new Promise((resolve) => {
      let opened = false;
      const fail = (reason: string, code?: string) => {
        void events.close();
        if (opened) options.onFailed(reason);
        else resolve({ ok: false, reason, code });
      };
      worker.addEventListener("message", (e: MessageEvent<WorkerMessage>) => {
        const message = e.data;
        if (message.type === "events") options.onEvents(message.events);
        else if (message.type === "listed") options.onListed(message.listed);
        else if (message.type === "parseError") options.onParseError(message.source, message.detail);
        else if (message.type === "overflow") options.onOverflow(message.overflows);
        else if (message.type === "ready") {
          events.#wakeFd = message.wakeFd;
          opened = true;
          resolve({ ok: true, events });
        } else if (message.type === "failed") fail(message.reason, message.code);
      });
      worker.addEventListener("error", (e) => fail(`the connector worker failed: ${e.message}`));
      const start: WorkerStart = {
        control: events.#control.buffer as SharedArrayBuffer,
        receiveBuffer: options.receiveBuffer,
        ackTimeoutMs: options.ackTimeoutMs,
        table: options.table,
        resyncMs: options.resyncMs,
      };
      worker.postMessage(start);
    });
  }

  /** Stop reading (and listing): the kernel buffers meanwhile. Takes effect after the batch the worker is reading. */
  pause(): void {
    Atomics.compareExchange(this.#control, 0, CONTROL_RUN, CONTROL_PAUSE);
  }

  resume(): void {
    if (Atomics.compareExchange(this.#control, 0, CONTROL_PAUSE, CONTROL_RUN) === CONTROL_PAUSE) Atomics.notify(this.#control, 0);
  }

  /** Stops the worker and closes the socket; resolves once they are gone. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      Atomics.store(this.#control, 0, CONTROL_STOP);
      Atomics.notify(this.#control, 0);
      if (this.#wakeFd !== undefined) writeSync(this.#wakeFd, new Uint8Array(new BigUint64Array([1n]).buffer));
      Atomics.store(this.#control, 1, 1);
      Atomics.notify(this.#control, 1);
      void this.#closed.then(() => this.#worker.terminate());
    }
    return this.#closed;
  }
}
