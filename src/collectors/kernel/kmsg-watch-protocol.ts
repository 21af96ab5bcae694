// What the main thread and the kmsg reader worker (kmsg-watch-worker.ts) say
// to each other. The worker spends its life in read(2), poll(2) or
// Atomics.wait, so it never runs its event loop: commands reach it through a
// shared Int32 (CONTROL) and, to get it out of poll(2), an eventfd it creates.
import type { KmsgRecord } from "./kmsg.ts";

/** Sent once to start the worker. */
export interface WatchStart {
  /** the kernel log's fd, opened (non-blocking) by the main thread (shared: one process) */
  fd: number;
  /** an Int32Array's buffer: CONTROL's value at index 0 */
  control: SharedArrayBuffer;
}

/** What the worker read since its last message, in the order read. */
export interface WatchRecords {
  type: "records";
  records: KmsgRecord[];
  /** reads that held no record (parse errors of source `kmsg`), located */
  errors: string[];
  /** reads that failed with EPIPE: records overwritten before they were read */
  overruns: number;
}

export type WatchMessage =
  /** waiting for commands; `wakeFd` is the eventfd that ends a poll(2) (the main thread closes it once the worker is gone) */
  | { type: "ready"; wakeFd: number }
  | WatchRecords
  /** it cannot read or wait on the fd (no libc, poll(2) or read(2) failed): the main thread falls back to polling */
  | { type: "failed"; reason: string };

export const CONTROL = {
  /** the main thread reads (its first round), or has enough records waiting: the worker sleeps in Atomics.wait, the kernel buffers */
  paused: 0,
  /** the worker reads what is there and posts it, then waits in poll(2) for more */
  reading: 1,
  /** the collector stops: the worker leaves its loop */
  stop: 2,
} as const;

/** Records per message at most (an OOM report is ~80): the main thread's share of work between two looks at the event loop. */
export const MAX_RECORDS_PER_MESSAGE = 256;
