// A Worker thread that reads the kernel log as records come and posts them to
// the main thread; see kmsg-watch.ts. It is awake anyway when a record comes
// (poll(2) returned), so it reads what is there itself, one record per
// read(2) until EAGAIN, and posts it in one message: the main thread gets the
// records parsed, without ~80 reads of its own for an OOM report. The record
// that completes an OOM kill (`Killed process N ...`, the last of a report) is
// posted at once with what came before it, so the kill goes out before what
// follows it is read. Blocking here costs nothing: this thread does nothing
// else, and sleeps in the kernel until a record comes or the collector stops
// (an eventfd).
import { FFIType, ptr, read as readPointer } from "bun:ffi";
import { EAGAIN, EFD_CLOEXEC, EINTR, EPIPE, openLibc, POLLIN, POLLNVAL } from "../../libc.ts";
import { CONTROL, MAX_RECORDS_PER_MESSAGE, type WatchMessage, type WatchRecords, type WatchStart } from "./kmsg-watch-protocol.ts";
import { recordOf, type KmsgRecord } from "./kmsg.ts";
import { completesKill } from "./oom.ts";

declare const self: Worker;

/** Larger than any record (the kernel's are at most 8 KiB); /dev/kmsg fails a read into a buffer too small for the record (EINVAL). */
const BUFFER_BYTES = 16 * 1024;

function post(message: WatchMessage): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<WatchStart>) => {
  const { fd, control } = event.data;
  const ctl = new Int32Array(control);
  const libc = openLibc({
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  if (typeof libc === "string") {
    post({ type: "failed", reason: `cannot load libc for poll(2) (${libc})` });
    return;
  }
  const { poll, read, eventfd, __errno_location } = libc;
  const errno = () => readPointer.i32(__errno_location()!, 0);
  const wakeFd = eventfd(0, EFD_CLOEXEC);
  if (wakeFd < 0) {
    post({ type: "failed", reason: `eventfd failed (errno ${errno()})` });
    return;
  }
  post({ type: "ready", wakeFd });
  // Two struct pollfd { int fd; short events; short revents; }: the log, then the wake-up.
  const fds = new Int32Array([fd, POLLIN, wakeFd, POLLIN]);
  const events = new Int16Array(fds.buffer);
  const buffer = new Uint8Array(BUFFER_BYTES);
  const bufferPtr = ptr(buffer);
  const decoder = new TextDecoder();

  let message: WatchRecords = { type: "records", records: [], errors: [], overruns: 0 };
  const flush = () => {
    if (message.records.length === 0 && message.errors.length === 0 && message.overruns === 0) return;
    post(message);
    message = { type: "records", records: [], errors: [], overruns: 0 };
  };
  /** One record (a read of the device is one), with its continuation lines; true when it completes an OOM kill. */
  const take = (text: string): boolean => {
    let kill = false;
    for (const line of text.split("\n")) {
      let record: KmsgRecord | undefined;
      try {
        record = recordOf(line);
      } catch (err) {
        message.errors.push(`${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      if (!record) continue;
      message.records.push(record);
      // Trimmed as the collector trims before the OOM tracker sees it.
      if (completesKill(record.message.trim())) kill = true;
    }
    return kill;
  };

  for (;;) {
    Atomics.wait(ctl, 0, CONTROL.paused);
    if (Atomics.load(ctl, 0) === CONTROL.stop) break;
    // Read what is there, while the main thread wants records.
    let drained = false;
    while (Atomics.load(ctl, 0) === CONTROL.reading) {
      const n = Number(read(fd, bufferPtr, BUFFER_BYTES));
      if (n > 0) {
        if (take(decoder.decode(buffer.subarray(0, n))) || message.records.length >= MAX_RECORDS_PER_MESSAGE) flush();
        continue;
      }
      const code = n === 0 ? 0 : errno();
      if (n === 0 || code === EAGAIN) {
        drained = true;
        break;
      }
      // The ring buffer overwrote records before they were read; the next read continues after the gap.
      if (code === EPIPE) message.overruns++;
      else if (code !== EINTR) {
        flush();
        post({ type: "failed", reason: `read(2) of the kernel log failed (errno ${code})` });
        return;
      }
    }
    flush();
    // Paused or stopping: the top of the loop waits or leaves.
    if (!drained) continue;
    events[3] = 0;
    events[7] = 0;
    if (poll(ptr(fds), 2, -1) < 0) {
      // Signals (the garbage collector's among them) interrupt poll(2): wait again.
      const code = errno();
      if (code === EINTR) continue;
      post({ type: "failed", reason: `poll(2) failed (errno ${code})` });
      break;
    }
    if (events[7] !== 0 || Atomics.load(ctl, 0) === CONTROL.stop) break;
    if (events[3]! & POLLNVAL) {
      post({ type: "failed", reason: `poll(2): fd ${fd} is not open` });
      break;
    }
    // Readable, or an error for the next read to tell (EPIPE after an overrun).
  }
};
