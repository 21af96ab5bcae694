// What the main thread and the kmsg watch worker (kmsg-watch-worker.ts) say to
// each other. The worker spends its life blocked in poll(2) or Atomics.wait,
// so it never runs its event loop: commands reach it through a shared Int32
// (CONTROL) and, to get it out of poll(2), an eventfd it creates.

/** Sent once to start the worker. */
export interface WatchStart {
  /** the kernel log's fd, opened by the main thread (shared: one process) */
  fd: number;
  /** an Int32Array's buffer: CONTROL's value at index 0 */
  control: SharedArrayBuffer;
}

export type WatchMessage =
  /** waiting for commands; `wakeFd` is the eventfd that ends a poll(2) (the main thread closes it once the worker is gone) */
  | { type: "ready"; wakeFd: number }
  /** the fd has a record to read (or an overrun to tell): the worker is idle again until armed */
  | { type: "readable" }
  /** it cannot wait on the fd (no libc, poll(2) failed): the main thread falls back to polling */
  | { type: "failed"; reason: string };

export const CONTROL = {
  /** the main thread reads, or waits for nothing: the worker sleeps in Atomics.wait */
  idle: 0,
  /** the main thread read everything: the worker waits in poll(2) until the fd is readable */
  armed: 1,
  /** the collector stops: the worker leaves its loop */
  stop: 2,
} as const;
