// Reads the process events connector in a thread of its own: it blocks in
// poll(2) on the netlink socket and an eventfd (the main thread's wake-up
// for stop), so the agent's event loop never waits and an idle node costs no
// wake-ups. The worker keeps the process table (table.ts): it applies each
// exec and exit to it, reads the new process's /proc files, lists /proc at
// the start, every resync_interval and after lost records, and posts only
// the events of processes that count. A busy node whose processes the
// filters drop costs this thread a cgroup read per exec, and the main thread
// nothing. While the main thread says pause, the worker sleeps on the
// control word and the kernel buffers.
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import type { EventInput } from "../../event/event.ts";
import {
  AF_NETLINK,
  bindAddress,
  CONTROL_PAUSE,
  CONTROL_STOP,
  NETLINK_CONNECTOR,
  parseDatagram,
  PROC_CN_MCAST_LISTEN,
  procEventFilter,
  type FilterRole,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  subscribeMessage,
  type WorkerMessage,
  type WorkerStart,
} from "./connector.ts";
import { ProcessTable } from "./table.ts";

declare const self: Worker;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_ATTACH_FILTER = 26;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const MSG_DONTWAIT = 0x40;
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_THREAD_CPUTIME_ID = 3;
const POLLIN = 0x1;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;
/** poll(2)'s timeout is an int: a longer resync_interval waits in steps */
const MAX_POLL_MS = 2 ** 31 - 1;
/** datagrams read before a batch goes out: bounds the delay of the first record of a burst */
const MAX_BATCH = 256;

const ERRNO_NAMES: Record<number, string> = { 1: "EPERM", 13: "EACCES", 93: "EPROTONOSUPPORT", 97: "EAFNOSUPPORT", 105: "ENOBUFS", 111: "ECONNREFUSED" };

/** glibc's soname first (distroless, Debian), then musl's. */
const LIBC_NAMES = ["libc.so.6", "libc.so", `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`];

const SYMBOLS = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  // ssize_t results are read as int: every size here is far below 2 GiB, and -1 stays -1.
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

function openLibc(): Libc {
  const errors: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name, SYMBOLS).symbols;
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load libc (${errors.join("; ")})`);
}

class SyscallError extends Error {
  constructor(
    call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}`);
  }
  get code(): string | undefined {
    return ERRNO_NAMES[this.errno];
  }
}

const post = (message: WorkerMessage) => self.postMessage(message);

self.onmessage = (event: MessageEvent<WorkerStart>) => {
  self.onmessage = null;
  void run(event.data);
};

const failed = (err: unknown): WorkerMessage => ({ type: "failed", reason: (err as Error).message, code: err instanceof SyscallError ? err.code : undefined });

async function run(start: WorkerStart): Promise<void> {
  let libc: Libc;
  try {
    libc = openLibc();
  } catch (err) {
    post(failed(err));
    post({ type: "closed" });
    return;
  }
  // Read right after the failing call, on this thread: errno is per thread.
  const errno = () => read.i32(libc.__errno_location()!, 0);
  const check = (call: string, result: number) => {
    if (result < 0) throw new SyscallError(call, errno());
    return result;
  };
  const control = new Int32Array(start.control);
  const fds: number[] = [];
  /** A subscribed socket that lets through what `role` says. */
  const subscribe = (role: FilterRole): number => {
    const sock = check("socket(AF_NETLINK, NETLINK_CONNECTOR)", libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR));
    fds.push(sock);
    // Room for a burst while the main thread pauses the worker (capped by net.core.rmem_max; a failure only leaves the default).
    const size = new Int32Array([start.receiveBuffer]);
    libc.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, ptr(size), 4);
    // What the worker does not use is dropped in the kernel, before it wakes this thread (a failure only leaves it in).
    const filter = procEventFilter(LITTLE_ENDIAN, role);
    const program = new DataView(new ArrayBuffer(16)); // struct sock_fprog: len, then the pointer
    program.setUint16(0, filter.byteLength / 8, LITTLE_ENDIAN);
    program.setBigUint64(8, BigInt(ptr(filter)), LITTLE_ENDIAN);
    libc.setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, ptr(program), 16);
    const addr = bindAddress();
    check("bind(CN_IDX_PROC)", libc.bind(sock, ptr(addr), addr.byteLength));
    const request = subscribeMessage(PROC_CN_MCAST_LISTEN, 1);
    check("send(PROC_CN_MCAST_LISTEN)", libc.send(sock, ptr(request), request.byteLength, 0));
    return sock;
  };
  try {
    // Forks first: one that the other socket's exec follows is always there to be read.
    const forks = subscribe("forks");
    const sock = subscribe("wake");
    const wake = check("eventfd", libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    fds.push(wake);

    const buffer = new Uint8Array(8192);
    const view = new DataView(buffer.buffer);
    const pollfds = new DataView(new ArrayBuffer(16));
    pollfds.setInt32(0, sock, true);
    pollfds.setInt16(4, POLLIN, true);
    pollfds.setInt32(8, wake, true);
    pollfds.setInt16(12, POLLIN, true);
    const pollPtr = ptr(pollfds);
    const scratch = new BigUint64Array(1);
    /**
     * Parents of processes forked since the last listing and the one before (exec records do not name
     * them). Read lazily, a fork can come after its process's exit was handled: the older half is
     * dropped at each listing, so such leftovers do not pile up.
     */
    let parents = new Map<number, number>();
    let parentsBefore = new Map<number, number>();
    const table = new ProcessTable(start.table, (source, detail) => post({ type: "parseError", source, detail }));
    /** events for the main thread, posted once the socket is drained */
    let pending: EventInput[] = [];
    let overflows = 0;
    /** records were lost: list /proc before reading on */
    let lost = false;
    const timespec = new BigInt64Array(2);
    const clockMs = (clock: number) => {
      libc.clock_gettime(clock, ptr(timespec));
      return Number(timespec[0]!) * 1000 + Number(timespec[1]!) / 1e6;
    };

    /**
     * The forks socket: never waited on, read before the records of each
     * wake-up (a fork's record is sent before the child can run, so before its
     * exec's) and before each listing. Lost forks (ENOBUFS) cost only the
     * parent of a process gone before its files were read.
     */
    const drainForks = () => {
      for (;;) {
        const got = libc.recv(forks, ptr(buffer), buffer.byteLength, MSG_DONTWAIT);
        if (got < 0) {
          const e = errno();
          if (e === EAGAIN) return;
          if (e === EINTR || e === ENOBUFS) continue;
          throw new SyscallError("recv", e);
        }
        const record = parseDatagram(view, got);
        if (record?.kind === "fork") parents.set(record.pid, record.ppid);
      }
    };
    /** Reads what the socket holds now into the table; true once the kernel acknowledged the subscription. */
    const drain = (): boolean => {
      let acked = false;
      drainForks();
      // Event times are CLOCK_MONOTONIC; the wall clock's distance from it is taken per drain, so clock steps (NTP) are followed.
      let wallOffsetMs: number | undefined;
      for (let n = 0; n < MAX_BATCH; n++) {
        const got = libc.recv(sock, ptr(buffer), buffer.byteLength, MSG_DONTWAIT);
        if (got < 0) {
          const e = errno();
          if (e === EAGAIN || e === EINTR) break;
          if (e === ENOBUFS) {
            lost = true;
            post({ type: "overflow", overflows: ++overflows });
            continue;
          }
          throw new SyscallError("recv", e);
        }
        const record = parseDatagram(view, got);
        if (!record) continue;
        if (record.kind === "ack") {
          if (record.err !== 0) throw new SyscallError("PROC_CN_MCAST_LISTEN", record.err);
          acked = true;
        } else if (record.kind === "fork") parents.set(record.pid, record.ppid);
        else {
          wallOffsetMs ??= clockMs(CLOCK_REALTIME) - clockMs(CLOCK_MONOTONIC);
          const wallMs = record.ns / 1e6 + wallOffsetMs;
          // A fork read by now, or sent since the forks socket was last read (or none: a process that execs again).
          if (record.kind === "exec" && !parents.has(record.pid)) drainForks();
          const ppid = parents.get(record.pid) ?? parentsBefore.get(record.pid) ?? 0;
          parents.delete(record.pid);
          parentsBefore.delete(record.pid);
          const events = record.kind === "exec" ? table.onExec(record.pid, ppid, wallMs) : table.onExit(record, wallMs);
          for (const event of events) pending.push(event);
        }
      }
      return acked;
    };
    /** Posts what is pending: one message per drain or listing. */
    const flush = () => {
      if (pending.length === 0) return;
      post({ type: "events", events: pending });
      pending = [];
    };
    /** One listing of /proc, told to the main thread with its health, wall and CPU time. */
    const list = async () => {
      const wall = performance.now();
      const cpu = clockMs(CLOCK_THREAD_CPUTIME_ID);
      let problem: string | undefined;
      try {
        drainForks();
        parentsBefore = parents;
        parents = new Map();
        const listing = await table.list(() => undefined);
        for (const event of listing.events) pending.push(event);
        problem = listing.problem;
      } catch (err) {
        problem = (err as Error).message;
      }
      flush();
      const listed = { wallSeconds: (performance.now() - wall) / 1000, cpuSeconds: (clockMs(CLOCK_THREAD_CPUTIME_ID) - cpu) / 1000 };
      post({ type: "listed", listed: problem === undefined ? listed : { ...listed, problem } });
    };
    const wait = (timeoutMs: number): number => {
      const ready = libc.poll(pollPtr, 2, timeoutMs);
      if (ready < 0 && errno() !== EINTR) throw new SyscallError("poll", errno());
      return ready;
    };

    // The kernel answers only a listener in the host's pid and user namespaces; elsewhere it stays silent.
    const deadline = performance.now() + start.ackTimeoutMs;
    let acked = false;
    while (!acked) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0 || Atomics.load(control, 0) === CONTROL_STOP) break;
      if (wait(left) > 0) acked = drain();
    }
    if (!acked) {
      if (Atomics.load(control, 0) !== CONTROL_STOP) {
        post({ type: "failed", reason: "the kernel did not acknowledge PROC_CN_MCAST_LISTEN (it answers only in the host's pid and user namespaces: hostPID)" });
      }
      return;
    }
    post({ type: "ready", wakeFd: wake });

    // The baseline listing comes first; records that came meanwhile wait in the socket.
    let nextListing = 0;
    for (;;) {
      flush();
      const state = Atomics.load(control, 0);
      if (state === CONTROL_STOP) break;
      if (state === CONTROL_PAUSE) {
        // Sleeps until the main thread changes the word and notifies: no polling while paused.
        Atomics.wait(control, 0, CONTROL_PAUSE);
        continue;
      }
      const now = performance.now();
      if (lost || now >= nextListing) {
        lost = false;
        await list();
        nextListing = performance.now() + start.resyncMs;
        continue;
      }
      // No wake-up but for a record, the main thread, or the next listing.
      if (wait(Math.min(MAX_POLL_MS, Math.ceil(nextListing - now))) <= 0) continue;
      if (pollfds.getInt16(14, true) !== 0) libc.read(wake, ptr(scratch), 8);
      if (pollfds.getInt16(6, true) !== 0) drain();
    }
  } catch (err) {
    post(failed(err));
  } finally {
    // The main thread may still write to the eventfd until it says it is done (control[1]): a closed fd number could be reused meanwhile.
    while (Atomics.load(control, 1) === 0) Atomics.wait(control, 1, 0);
    for (const fd of fds) libc.close(fd);
    post({ type: "closed" });
  }
}
