// The worker side of FdPoller (poller.ts): blocks in poll(2) over the fds the
// main thread hands over (PSI triggers, cgroup v1 OOM eventfds) and a wake-up
// eventfd, and posts which of them fired. It owns the fds once handed over and
// closes them. After a post it reads nothing more until the main thread says
// "resume", so a slow queue holds it back while the kernel keeps the news
// (an eventfd counts on, a PSI trigger stays fired).
import { ptr } from "bun:ffi";
import { EINTR, POLLERR, POLLHUP, POLLIN, POLLNVAL } from "../../libc.ts";
import { errno, libc } from "./libc.ts";
import type { FromPoller, ToPoller } from "./poller.ts";

declare const self: Worker;

const loaded = libc();
const watched = new Map<number, { fd: number; events: number; drain: boolean }>();
let wakeFd = -1;
let stopping = false;
let resume: (() => void) | undefined;

const post = (message: FromPoller) => self.postMessage(message);

self.onmessage = (event: MessageEvent<ToPoller>) => {
  const message = event.data;
  switch (message.op) {
    case "start":
      wakeFd = message.wakeFd;
      if ("error" in loaded) post({ error: loaded.error });
      else {
        post({ ready: true });
        void loop(loaded.libc);
      }
      break;
    case "add":
      watched.set(message.id, { fd: message.fd, events: message.events, drain: message.drain });
      break;
    case "remove": {
      const entry = watched.get(message.id);
      watched.delete(message.id);
      if (entry && "libc" in loaded) loaded.libc.close(entry.fd);
      break;
    }
    case "resume":
      resume?.();
      break;
    case "stop":
      stopping = true;
      resume?.();
      break;
  }
};

/** Lets the messages that came meanwhile (adds, removes, resume, stop) apply. */
const turn = () => new Promise<void>((r) => setTimeout(r, 0));

async function loop(c: Extract<ReturnType<typeof libc>, { libc: unknown }>["libc"]): Promise<void> {
  const counter = new BigUint64Array(1);
  while (!stopping) {
    const ids = [...watched.keys()];
    // struct pollfd { int fd; short events; short revents; }, the wake-up eventfd first.
    const fds = new Int32Array((ids.length + 1) * 2);
    const shorts = new Int16Array(fds.buffer);
    fds[0] = wakeFd;
    shorts[2] = POLLIN;
    ids.forEach((id, i) => {
      const entry = watched.get(id)!;
      fds[(i + 1) * 2] = entry.fd;
      shorts[(i + 1) * 4 + 2] = entry.events;
    });
    // Blocks this thread only, with no timeout: nothing wakes it but the kernel.
    if (c.poll(ptr(fds), ids.length + 1, -1) < 0) {
      const code = errno(c);
      if (code === EINTR) continue;
      post({ error: `poll(2) failed: errno ${code}` });
      break;
    }
    if (shorts[3]) c.read(wakeFd, ptr(counter), 8);
    const fired: Array<{ id: number; revents: number }> = [];
    ids.forEach((id, i) => {
      const revents = shorts[(i + 1) * 4 + 3]!;
      if (!revents) return;
      const entry = watched.get(id)!;
      // An eventfd stays readable until read: reset it (it is non-blocking).
      if (entry.drain && revents & POLLIN) c.read(entry.fd, ptr(counter), 8);
      // An fd in error would fire at once forever: dropped here, and said so.
      if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        watched.delete(id);
        c.close(entry.fd);
      }
      fired.push({ id, revents });
    });
    if (fired.length > 0) {
      // Posted at once (a turn of this thread's loop first would cost a timer, a millisecond or more):
      // the main thread ignores ids it removed meanwhile, and its "resume" comes after every
      // message it sent before, so the adds, removes or stop that woke us too apply before the next poll.
      const resumed = new Promise<void>((r) => (resume = r));
      post({ fired });
      await resumed;
      resume = undefined;
    } else {
      await turn();
    }
  }
  for (const entry of watched.values()) c.close(entry.fd);
  watched.clear();
  post({ stopped: true });
}
