// Reads the process events connector in a thread of its own: it blocks in
// poll(2) on the netlink socket and an eventfd (the main thread's wake-up
// for stop), so the agent's event loop never waits and an idle node costs no
// wake-ups. The worker keeps the process table (table.ts): it applies each
// exec and exit to it, reads the new process's /proc files, lists /proc at
// the start, after lost records and, once anything happened since the last
// listing, resync_interval after it (a quiet node is not listed again: no
// wake-up while nothing forks, execs or exits), and posts only
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
  MAX_FILTER_PIDS,
  type FilterRole,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  subscribeMessage,
  type ProcRecord,
  type WorkerMessage,
  type WorkerStart,
} from "./connector.ts";
import { ProcessTable } from "./table.ts";
import {
  CLOCK_MONOTONIC,
  CLOCK_REALTIME,
  CLOCK_THREAD_CPUTIME_ID,
  EAGAIN,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINTR,
  ENOBUFS,
  MSG_DONTWAIT,
  openLibc,
  POLLIN,
  SOL_SOCKET,
} from "../../libc.ts";

declare const self: Worker;

const SO_RCVBUF = 8;
const SO_ATTACH_FILTER = 26;
const SO_DETACH_FILTER = 27;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** poll(2)'s timeout is an int: a longer resync_interval waits in steps */
const MAX_POLL_MS = 2 ** 31 - 1;
/** datagrams read before a batch goes out: bounds the delay of the first record of a burst */
const MAX_BATCH = 256;

const ERRNO_NAMES: Record<number, string> = { 1: "EPERM", 13: "EACCES", 93: "EPROTONOSUPPORT", 97: "EAFNOSUPPORT", 105: "ENOBUFS", 111: "ECONNREFUSED" };

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

function loadLibc(): Libc {
  const symbols = openLibc(SYMBOLS);
  if (typeof symbols === "string") throw new Error(`cannot load libc (${symbols})`);
  return symbols;
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
    libc = loadLibc();
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
  /**
   * What the worker does not use is dropped in the kernel, before it wakes this thread; attaching again
   * replaces the filter. False when the kernel refused it (everything then passes, and is left out here).
   */
  const attachFilter = (sock: number, role: FilterRole, exitPids?: readonly number[]): boolean => {
    const filter = procEventFilter(LITTLE_ENDIAN, role, exitPids);
    const program = new DataView(new ArrayBuffer(16)); // struct sock_fprog: len, then the pointer
    program.setUint16(0, filter.byteLength / 8, LITTLE_ENDIAN);
    program.setBigUint64(8, BigInt(ptr(filter)), LITTLE_ENDIAN);
    return libc.setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, ptr(program), 16) === 0;
  };
  /** false when the kernel refused the wake socket's filter: every record passes */
  let wakeFiltered = false;
  /** A subscribed socket that lets through what `role` says (the wake socket: no exits yet, as nothing counts yet). */
  const subscribe = (role: FilterRole): number => {
    const sock = check("socket(AF_NETLINK, NETLINK_CONNECTOR)", libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR));
    fds.push(sock);
    // Room for a burst while the main thread pauses the worker (capped by net.core.rmem_max; a failure only leaves the default).
    const size = new Int32Array([start.receiveBuffer]);
    libc.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, ptr(size), 4);
    const filtered = attachFilter(sock, role, role === "wake" ? [] : undefined);
    if (role === "wake") wakeFiltered = filtered;
    const addr = bindAddress();
    check("bind(CN_IDX_PROC)", libc.bind(sock, ptr(addr), addr.byteLength));
    const request = subscribeMessage(PROC_CN_MCAST_LISTEN, 1);
    check("send(PROC_CN_MCAST_LISTEN)", libc.send(sock, ptr(request), request.byteLength, 0));
    return sock;
  };
  try {
    // Forks first: one that the other socket's exec follows is always there to be read.
    const lazy = subscribe("lazy");
    const sock = subscribe("wake");
    const wake = check("eventfd", libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    fds.push(wake);

    const buffer = new Uint8Array(8192);
    const view = new DataView(buffer.buffer);
    // struct pollfd[3]: the wake socket, the eventfd, and the lazy socket (waited on only while quiet: see the loop).
    const pollfds = new DataView(new ArrayBuffer(24));
    pollfds.setInt32(0, sock, true);
    pollfds.setInt16(4, POLLIN, true);
    pollfds.setInt32(8, wake, true);
    pollfds.setInt16(12, POLLIN, true);
    pollfds.setInt32(16, lazy, true);
    pollfds.setInt16(20, POLLIN, true);
    const pollPtr = ptr(pollfds);
    const scratch = new BigUint64Array(1);
    /**
     * Parents of processes forked since the last listing and the one before (exec records do not name
     * them); an exec or a counted exit takes its entry. The forks of processes that never exec, or whose
     * exits the wake socket does not let through, are dropped at the second listing after.
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

    /** Event times are CLOCK_MONOTONIC; the wall clock's distance from it is taken per read, so clock steps (NTP) are followed. */
    let wallOffsetMs: number | undefined;
    const wallMsOf = (ns: number) => ns / 1e6 + (wallOffsetMs ??= clockMs(CLOCK_REALTIME) - clockMs(CLOCK_MONOTONIC));
    /**
     * Exits of processes since the last listing and the one before, from the lazy socket: for a process
     * that came to count after its exit's record was sent (the wake socket's filter dropped it).
     */
    let recentExits = new Map<number, { record: Extract<ProcRecord, { kind: "exit" }>; wallMs: number }>();
    let recentExitsBefore: typeof recentExits = new Map();
    /**
     * The lazy socket (forks and exits of every process): never waited on,
     * read before the records of each wake-up (a fork's record is sent before
     * the child can run, so before its exec's), when the wake socket's filter
     * changes, and before each listing. Lost records (ENOBUFS) cost only the
     * parent of a process gone before its files were read, or the status of
     * one that ended before it came to count.
     */
    const drainLazy = () => {
      for (;;) {
        const got = libc.recv(lazy, ptr(buffer), buffer.byteLength, MSG_DONTWAIT);
        if (got < 0) {
          const e = errno();
          if (e === EAGAIN) return;
          if (e === EINTR || e === ENOBUFS) continue;
          throw new SyscallError("recv", e);
        }
        const record = parseDatagram(view, got);
        if (record?.kind === "fork") parents.set(record.pid, record.ppid);
        // Its parent stays until its exec is read (the lazy socket is read ahead of the other; a fork without exec
        // is dropped at the second listing after).
        else if (record?.kind === "exit") recentExits.set(record.pid, { record, wallMs: wallMsOf(record.ns) });
      }
    };
    /** Reads what the socket holds now into the table; true once the kernel acknowledged the subscription. */
    const drain = (): boolean => {
      let acked = false;
      wallOffsetMs = undefined;
      drainLazy();
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
        } else if (record.kind !== "fork") {
          const wallMs = wallMsOf(record.ns);
          if (record.kind === "exec") {
            // Its fork (and whatever the lazy socket had before it) read by now, or sent since it was last read
            // (or none: a process that execs again). An exit recorded under this pid before this exec is an
            // earlier process's (the lazy socket may be read ahead: this process's own exit can be there already).
            if (!parents.has(record.pid)) drainLazy();
            if ((recentExits.get(record.pid)?.record.ns ?? Infinity) < record.ns) recentExits.delete(record.pid);
            if ((recentExitsBefore.get(record.pid)?.record.ns ?? Infinity) < record.ns) recentExitsBefore.delete(record.pid);
          }
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
    /**
     * The pids whose exits the wake socket lets through: the processes that count, as far as the filter
     * knows (undefined: every process's exit passes). Exits of the others would wake the worker for nothing.
     */
    let exitFilter: Set<number> | undefined = wakeFiltered ? new Set() : undefined;
    /** After the records or a listing changed what counts: the wake socket's filter follows. */
    const refilter = () => {
      if (!table.takeCountedChanged()) return;
      const counted = table.counted();
      const pids = counted.length <= MAX_FILTER_PIDS ? counted : undefined;
      const before = exitFilter;
      const attached = attachFilter(sock, "wake", pids);
      // Refused (the old filter would stay, with its old pids): no filter at all, every record passes.
      if (!attached) libc.setsockopt(sock, SOL_SOCKET, SO_DETACH_FILTER, ptr(scratch), 0);
      exitFilter = attached && pids ? new Set(pids) : undefined;
      if (!before) return;
      // A process that came to count since the last filter may have ended meanwhile, its exit's record dropped
      // there: the lazy socket has it (from now on the wake socket lets it through).
      drainLazy();
      for (const pid of counted) {
        if (before.has(pid)) continue;
        const exit = recentExits.get(pid) ?? recentExitsBefore.get(pid);
        if (exit) for (const event of table.onExit(exit.record, exit.wallMs)) pending.push(event);
      }
    };
    /** One listing of /proc, told to the main thread with its health, wall and CPU time. */
    const list = async () => {
      const wall = performance.now();
      const cpu = clockMs(CLOCK_THREAD_CPUTIME_ID);
      let problem: string | undefined;
      try {
        wallOffsetMs = undefined;
        drainLazy();
        parentsBefore = parents;
        parents = new Map();
        recentExitsBefore = recentExits;
        recentExits = new Map();
        const listing = await table.list(() => undefined);
        for (const event of listing.events) pending.push(event);
        problem = listing.problem;
        refilter();
      } catch (err) {
        problem = (err as Error).message;
      }
      flush();
      const listed = { wallSeconds: (performance.now() - wall) / 1000, cpuSeconds: (clockMs(CLOCK_THREAD_CPUTIME_ID) - cpu) / 1000 };
      post({ type: "listed", listed: problem === undefined ? listed : { ...listed, problem } });
    };
    const wait = (fds: 2 | 3, timeoutMs: number): number => {
      pollfds.setInt16(22, 0, true); // the lazy socket's revents, left from a wait that did not include it
      const ready = libc.poll(pollPtr, fds, timeoutMs);
      if (ready < 0 && errno() !== EINTR) throw new SyscallError("poll", errno());
      return ready;
    };

    // The kernel answers only a listener in the host's pid and user namespaces; elsewhere it stays silent.
    const deadline = performance.now() + start.ackTimeoutMs;
    let acked = false;
    while (!acked) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0 || Atomics.load(control, 0) === CONTROL_STOP) break;
      if (wait(2, left) > 0) acked = drain();
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
    /**
     * Nothing forked, exec'd or exited since the last listing (on the host, not only what counts): a
     * listing now would find what the last one did, so none is due. The worker then waits on the lazy
     * socket too, with no timeout; the first record there or on the other ends the quiet, and the next
     * listing is due resync_interval after that.
     */
    let quiet = false;
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
      if (lost || (!quiet && now >= nextListing)) {
        lost = false;
        await list();
        quiet = true;
        continue;
      }
      // No wake-up but for a record (while quiet, any record), the main thread, or the next listing.
      if (wait(quiet ? 3 : 2, quiet ? -1 : Math.min(MAX_POLL_MS, Math.ceil(nextListing - now))) <= 0) continue;
      if (pollfds.getInt16(14, true) !== 0) libc.read(wake, ptr(scratch), 8);
      const records = pollfds.getInt16(6, true) !== 0;
      if (quiet && (records || pollfds.getInt16(22, true) !== 0)) {
        quiet = false;
        nextListing = performance.now() + start.resyncMs;
      }
      if (records) {
        drain();
        refilter();
      } else if (pollfds.getInt16(22, true) !== 0) drainLazy();
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
