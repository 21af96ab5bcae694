// A Worker thread that waits in poll(2) until the kernel log has a record,
// then tells the main thread, which reads it; see kmsg-watch.ts. Blocking here
// costs nothing: this thread does nothing else, and sleeps in the kernel until
// a record comes or the collector stops (an eventfd).
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { CONTROL, type WatchMessage, type WatchStart } from "./kmsg-watch-protocol.ts";

declare const self: Worker;

const EINTR = 4;
const POLLIN = 0x1;
const POLLNVAL = 0x20;
const EFD_CLOEXEC = 0o2000000;

function post(message: WatchMessage): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<WatchStart>) => {
  const { fd, control } = event.data;
  const ctl = new Int32Array(control);
  let libc;
  try {
    libc = dlopen("libc.so.6", {
      poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
      eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
  } catch (err) {
    post({ type: "failed", reason: `cannot load libc.so.6 for poll(2) (${err instanceof Error ? err.message : String(err)})` });
    return;
  }
  const { poll, eventfd, __errno_location } = libc.symbols;
  const errno = () => read.i32(__errno_location()!, 0);
  const wakeFd = eventfd(0, EFD_CLOEXEC);
  if (wakeFd < 0) {
    post({ type: "failed", reason: `eventfd failed (errno ${errno()})` });
    return;
  }
  post({ type: "ready", wakeFd });
  // Two struct pollfd { int fd; short events; short revents; }: the log, then the wake-up.
  const fds = new Int32Array([fd, POLLIN, wakeFd, POLLIN]);
  const events = new Int16Array(fds.buffer);
  for (;;) {
    Atomics.wait(ctl, 0, CONTROL.idle);
    if (Atomics.load(ctl, 0) === CONTROL.stop) break;
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
    // Readable, or an error for the read to tell (EPIPE after an overrun): the main thread reads.
    Atomics.compareExchange(ctl, 0, CONTROL.armed, CONTROL.idle);
    post({ type: "readable" });
  }
  libc.close();
};
