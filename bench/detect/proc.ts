// Processes as the benchmark sees them: the kernel's own records of each exec
// and exit, with the kernel's timestamp (timestamp_ns of struct proc_event,
// CLOCK_MONOTONIC), read from a proc connector socket of the benchmark's own,
// independent of the agent's. A process start is its exec: the moment the new
// program starts, what the agent reports; the launcher's fork before it
// (bash forking itself, milliseconds on this VM) is not the kernel's event.
// The socket is read without waiting (MSG_DONTWAIT) when a record is looked
// for: the kernel keeps what came meanwhile (a 4 MiB receive buffer).
import { FFIType, ptr, read } from "bun:ffi";
import {
  AF_NETLINK,
  bindAddress,
  NETLINK_CONNECTOR,
  parseDatagram,
  PROC_CN_MCAST_LISTEN,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  subscribeMessage,
  type ProcRecord,
} from "../../src/collectors/process/connector.ts";
import { CLOCK_MONOTONIC, CLOCK_REALTIME, EAGAIN, EINTR, ENOBUFS, MSG_DONTWAIT, openLibc, SOL_SOCKET } from "../../src/libc.ts";

const SO_RCVBUFFORCE = 33;
/** pids whose records are kept for looking up */
const MAX_PIDS = 20_000;

const libc = (() => {
  const symbols = openLibc({
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  if (typeof symbols === "string") throw new Error(`bench:detect: cannot load libc (${symbols})`);
  return symbols;
})();

const errno = () => read.i32(libc.__errno_location()!, 0);
const timespec = new BigInt64Array(2);
function clockMs(clock: number): number {
  libc.clock_gettime(clock, ptr(timespec));
  return Number(timespec[0]!) * 1000 + Number(timespec[1]!) / 1e6;
}

export type KernelProcessRecord = Extract<ProcRecord, { kind: "exec" | "exit" }> & { /** the record's time on the wall clock, ms */ wallMs: number };

/** Why the process case cannot be timed by the kernel here, if it cannot (the agent needs the same). */
export function procProbeProblem(): string | undefined {
  try {
    new ProcProbe().close();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export class ProcProbe {
  readonly #sock: number;
  readonly #buffer = new Uint8Array(8192);
  readonly #view = new DataView(this.#buffer.buffer);
  /** execs and exits read and not yet looked for, by pid */
  readonly #records = new Map<number, KernelProcessRecord[]>();
  #overruns = 0;

  constructor() {
    const sock = libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (sock < 0) throw new Error(`socket(NETLINK_CONNECTOR): errno ${errno()}`);
    this.#sock = sock;
    // Records of every process on the machine wait here between looks: room for bursts (root may exceed rmem_max).
    libc.setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, ptr(new Int32Array([4 << 20])), 4);
    const addr = bindAddress();
    const request = subscribeMessage(PROC_CN_MCAST_LISTEN, 1);
    if (libc.bind(sock, ptr(addr), addr.byteLength) < 0 || Number(libc.send(sock, ptr(request), request.byteLength, 0)) < 0) {
      const code = errno();
      libc.close(sock);
      throw new Error(`subscribing to the proc connector: errno ${code} (it needs CAP_NET_ADMIN in the host's network namespace)`);
    }
  }

  /** Records lost to a full receive buffer so far (a record looked for may be among them). */
  get overruns(): number {
    return this.#overruns;
  }

  /** The kernel's record of `pid`'s exec or exit, reading what came first; undefined when it has not come (yet). */
  find(pid: number, kind: "exec" | "exit"): KernelProcessRecord | undefined {
    this.#drain();
    const list = this.#records.get(pid);
    const at = list?.findIndex((r) => r.kind === kind) ?? -1;
    if (at < 0) return undefined;
    const [record] = list!.splice(at, 1);
    if (list!.length === 0) this.#records.delete(pid);
    return record;
  }

  /** Waits (polling every millisecond, up to `timeoutMs`) for the record. */
  async waitFor(pid: number, kind: "exec" | "exit", timeoutMs = 2000): Promise<KernelProcessRecord | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const record = this.find(pid, kind);
      if (record || performance.now() > deadline) return record;
      await Bun.sleep(1);
    }
  }

  /** Forgets what was read (records of processes not looked for). */
  clear(): void {
    this.#drain();
    this.#records.clear();
  }

  close(): void {
    libc.close(this.#sock);
  }

  #drain(): void {
    // Monotonic to wall, taken per drain: the wall clock may be slewed.
    const offset = clockMs(CLOCK_REALTIME) - clockMs(CLOCK_MONOTONIC);
    for (;;) {
      const got = Number(libc.recv(this.#sock, ptr(this.#buffer), this.#buffer.byteLength, MSG_DONTWAIT));
      if (got < 0) {
        const code = errno();
        if (code === EAGAIN) return;
        if (code === ENOBUFS) this.#overruns++;
        else if (code !== EINTR) throw new Error(`recv(NETLINK_CONNECTOR): errno ${code}`);
        continue;
      }
      const record = parseDatagram(this.#view, got);
      if (record?.kind !== "exec" && record?.kind !== "exit") continue;
      let list = this.#records.get(record.pid);
      if (!list) this.#records.set(record.pid, (list = []));
      list.push({ ...record, wallMs: record.ns / 1e6 + offset });
      // The other processes of the machine, never looked for: the oldest go.
      if (this.#records.size > MAX_PIDS) this.#records.delete(this.#records.keys().next().value!);
    }
  }
}
