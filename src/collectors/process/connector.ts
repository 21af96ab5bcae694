// The kernel's process events connector on the wire (linux/connector.h,
// linux/cn_proc.h): the subscribe message the agent sends and the
// proc_event records it receives. Pure byte layouts, shared by the worker
// that reads the socket and by the tests; and what the worker and the main
// thread tell each other.
import type { EventInput } from "../../event/event.ts";
import type { TableConfig } from "./table.ts";

export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_CONNECTOR = 11;
export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;
export const PROC_CN_MCAST_LISTEN = 1;
const NLMSG_DONE = 3;
const NLMSG_ERROR = 2;
const NLMSG_OVERRUN = 4;

export const PROC_EVENT_NONE = 0;
export const PROC_EVENT_FORK = 0x1;
export const PROC_EVENT_EXEC = 0x2;
export const PROC_EVENT_EXIT = 0x80000000;

/** struct nlmsghdr */
const NLMSG_HDRLEN = 16;
/** struct cn_msg, without its data */
const CN_MSG_LEN = 20;
/** where struct proc_event starts in a datagram */
const EVENT_OFFSET = NLMSG_HDRLEN + CN_MSG_LEN;
/** what, cpu, timestamp_ns: then the event_data union */
const EVENT_DATA = EVENT_OFFSET + 16;

/** struct sockaddr_nl bound to the proc connector's multicast group (nl_pid 0: the kernel picks the port). */
export function bindAddress(): Uint8Array {
  const addr = new DataView(new ArrayBuffer(12));
  addr.setUint16(0, AF_NETLINK, true);
  addr.setUint32(8, CN_IDX_PROC, true);
  return new Uint8Array(addr.buffer);
}

/**
 * nlmsghdr + cn_msg + enum proc_cn_mcast_op: the 4-byte op, which every kernel
 * since 2.6.15 takes (the 8-byte struct proc_input of 6.6+ is ignored by older ones).
 */
export function subscribeMessage(op: number, seq: number): Uint8Array {
  const length = EVENT_OFFSET + 4;
  const msg = new DataView(new ArrayBuffer(length));
  msg.setUint32(0, length, true); // nlmsg_len
  msg.setUint16(4, NLMSG_DONE, true); // nlmsg_type: the whole request is this one message
  msg.setUint32(8, seq, true);
  msg.setUint32(NLMSG_HDRLEN, CN_IDX_PROC, true);
  msg.setUint32(NLMSG_HDRLEN + 4, CN_VAL_PROC, true);
  msg.setUint32(NLMSG_HDRLEN + 8, seq, true); // cn_msg.seq
  msg.setUint32(NLMSG_HDRLEN + 12, 0, true); // cn_msg.ack: the kernel answers with ack + 1
  msg.setUint16(NLMSG_HDRLEN + 16, 4, true); // cn_msg.len
  msg.setUint32(EVENT_OFFSET, op, true);
  return new Uint8Array(msg.buffer);
}

/** One proc_event the collector acts on; pids are thread-group ids (processes) in the host's pid namespace. */
export type ProcRecord =
  /** the kernel's answer to the subscription: err 0, or an errno */
  | { readonly kind: "ack"; readonly err: number }
  | { readonly kind: "fork"; readonly pid: number; readonly ppid: number; readonly ns: number }
  /** ppid: from the fork event the reader saw, else 0 (exec events do not carry it) */
  | { readonly kind: "exec"; readonly pid: number; ppid: number; readonly ns: number }
  /** status: the wait(2) status (exit code << 8, or the signal that killed it) */
  | { readonly kind: "exit"; readonly pid: number; readonly ppid: number; readonly status: number; readonly ns: number };

/**
 * Which records a socket of the worker lets through: `wake`, the one it
 * blocks on, the ack, execs and the exits of processes that count; `lazy`,
 * read only when the other wakes the worker, forks and exits of every process
 * (a fork matters only for the exec that follows; an exit there, only for a
 * process that came to count after it ended).
 */
export type FilterRole = "wake" | "lazy";

/** The most pids an exit filter names (two instructions each; the kernel takes 4096); more: every process's exit passes. */
export const MAX_FILTER_PIDS = 1000;

/**
 * A classic BPF socket filter (SO_ATTACH_FILTER) that lets through only the
 * proc events the worker uses (see FilterRole), never threads' forks and exits,
 * comm changes (thread names), setsid and the like: the kernel drops them
 * before they wake the worker. On a busy host that leaves one wake-up in three.
 * Anything that is not a proc event passes (parseDatagram leaves it out). The
 * filter reads 32-bit words in network order: the constants are the host's
 * bytes as such. Returns struct sock_filter[] (8 bytes each: code u16, jt u8,
 * jf u8, k u32, in the host's order). `exitPids`: for `wake`, only the exits
 * of these processes pass (those that count: the others' exits would wake
 * the worker for nothing); undefined, every process's.
 */
export function procEventFilter(littleEndian: boolean, role: FilterRole, exitPids?: readonly number[]): Uint8Array {
  const word = (x: number) => (littleEndian ? (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0 : x >>> 0);
  const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
  const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
  const JEQ_X = 0x1d; // BPF_JMP | BPF_JEQ | BPF_X
  const ST = 0x02; // A -> M[k]
  const LDX_MEM = 0x61; // M[k] -> X
  const RET = 0x06;
  const ACCEPT = 19;
  const DROP = 20;
  const wake = role === "wake";
  // [code, jt, jf, k]; jumps are relative to the next instruction, written here as targets and resolved below.
  const program: Array<[number, number, number, number]> = [
    /* 0 */ [LD_ABS, 0, 0, NLMSG_HDRLEN], // cn_msg.id.idx
    /* 1 */ [JEQ_K, 2, ACCEPT, word(CN_IDX_PROC)],
    /* 2 */ [LD_ABS, 0, 0, NLMSG_HDRLEN + 4], // cn_msg.id.val
    /* 3 */ [JEQ_K, 4, ACCEPT, word(CN_VAL_PROC)],
    /* 4 */ [LD_ABS, 0, 0, EVENT_OFFSET], // what
    /* 5 */ [JEQ_K, wake ? ACCEPT : DROP, 6, word(PROC_EVENT_EXEC)],
    /* 6 */ [JEQ_K, wake ? ACCEPT : DROP, 7, word(PROC_EVENT_NONE)],
    /* 7 */ [JEQ_K, wake ? DROP : 9, 8, word(PROC_EVENT_FORK)],
    /* 8 */ [JEQ_K, 14, DROP, word(PROC_EVENT_EXIT)],
    // fork: child_pid == child_tgid
    /* 9 */ [LD_ABS, 0, 0, EVENT_DATA + 12],
    /* 10 */ [ST, 0, 0, 0],
    /* 11 */ [LD_ABS, 0, 0, EVENT_DATA + 8],
    /* 12 */ [LDX_MEM, 0, 0, 0],
    /* 13 */ [JEQ_X, ACCEPT, DROP, 0],
    // exit: process_pid == process_tgid
    /* 14 */ [LD_ABS, 0, 0, EVENT_DATA + 4],
    /* 15 */ [ST, 0, 0, 0],
    /* 16 */ [LD_ABS, 0, 0, EVENT_DATA],
    /* 17 */ [LDX_MEM, 0, 0, 0],
    /* 18 */ [JEQ_X, wake && exitPids ? 21 : ACCEPT, DROP, 0],
    /* 19 */ [RET, 0, 0, 0xffff],
    /* 20 */ [RET, 0, 0, 0],
  ];
  if (wake && exitPids) {
    if (exitPids.length > MAX_FILTER_PIDS) throw new Error(`an exit filter names at most ${MAX_FILTER_PIDS} pids`);
    // 21: the tgid; then per pid "equal: accept", as a jump over the next return, so every jump is short.
    program.push([LD_ABS, 0, 0, EVENT_DATA + 4]);
    for (const pid of exitPids) {
      const at = program.length;
      program.push([JEQ_K, at + 1, at + 2, word(pid)], [RET, 0, 0, 0xffff]);
    }
    program.push([RET, 0, 0, 0]);
  }
  const out = new DataView(new ArrayBuffer(program.length * 8));
  program.forEach(([code, jt, jf, k], i) => {
    const isJump = code === JEQ_K || code === JEQ_X;
    out.setUint16(i * 8, code, littleEndian);
    out.setUint8(i * 8 + 2, isJump ? jt - i - 1 : 0);
    out.setUint8(i * 8 + 3, isJump ? jf - i - 1 : 0);
    out.setUint32(i * 8 + 4, k, littleEndian);
  });
  return new Uint8Array(out.buffer);
}

/** What the worker applies to its table: forks only feed exec's ppid, the ack only the subscription. */
export type ProcessRecord = Extract<ProcRecord, { kind: "exec" | "exit" }>;

/**
 * Parses one datagram of `length` bytes. Thread forks and exits (pid !=
 * tgid) and the other event kinds (uid, sid, comm, ptrace...) are undefined:
 * the collector reports processes. timestamp_ns (ns) is CLOCK_MONOTONIC.
 */
export function parseDatagram(view: DataView, length: number): ProcRecord | undefined {
  if (length < EVENT_DATA + 4) return undefined;
  const type = view.getUint16(4, true);
  if (type === NLMSG_ERROR || type === NLMSG_OVERRUN) return undefined;
  if (view.getUint32(NLMSG_HDRLEN, true) !== CN_IDX_PROC || view.getUint32(NLMSG_HDRLEN + 4, true) !== CN_VAL_PROC) return undefined;
  const what = view.getUint32(EVENT_OFFSET, true);
  const ns = Number(view.getBigUint64(EVENT_OFFSET + 8, true));
  const u32 = (i: number) => view.getUint32(EVENT_DATA + 4 * i, true);
  switch (what) {
    case PROC_EVENT_NONE:
      return { kind: "ack", err: u32(0) };
    case PROC_EVENT_FORK:
      // parent_pid, parent_tgid, child_pid, child_tgid
      if (length < EVENT_DATA + 16 || u32(2) !== u32(3)) return undefined;
      return { kind: "fork", pid: u32(3), ppid: u32(1), ns };
    case PROC_EVENT_EXEC:
      // process_pid, process_tgid: exec makes the thread the leader, so they agree
      if (length < EVENT_DATA + 8) return undefined;
      return { kind: "exec", pid: u32(1), ppid: 0, ns };
    case PROC_EVENT_EXIT: {
      // process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid (the parent since 4.18)
      if (length < EVENT_DATA + 16 || u32(0) !== u32(1)) return undefined;
      const ppid = length >= EVENT_DATA + 24 ? u32(5) : 0;
      return { kind: "exit", pid: u32(1), ppid, status: u32(2), ns };
    }
    default:
      return undefined;
  }
}

/** A wait(2) status as the event tells it: the exit code, or the signal that ended the process. */
export function exitStatus(status: number): { exit_code: string } | { signal: string } {
  const signal = status & 0x7f;
  return signal === 0 ? { exit_code: String((status >> 8) & 0xff) } : { signal: String(signal) };
}

/** The worker's control word (an Int32Array over a SharedArrayBuffer): the main thread sets it, the worker obeys. */
export const CONTROL_RUN = 0;
/** stop reading: the kernel buffers (and, once its buffer is full, drops and says ENOBUFS) */
export const CONTROL_PAUSE = 1;
export const CONTROL_STOP = 2;

/** main thread -> worker, once */
export interface WorkerStart {
  readonly control: SharedArrayBuffer;
  /** SO_RCVBUF asked for; the kernel caps it at net.core.rmem_max */
  readonly receiveBuffer: number;
  /** how long to wait for the kernel's answer to the subscription */
  readonly ackTimeoutMs: number;
  /** the process table the worker keeps: what counts, where /proc is */
  readonly table: TableConfig;
  /** how often the worker lists /proc anyway (it also does at once, and after ENOBUFS) */
  readonly resyncMs: number;
}

/** A listing of /proc done in the worker: what a poll round tells the collector's health and metrics. */
export interface Listed {
  /** why the listing failed or was incomplete (degraded); undefined: healthy */
  readonly problem?: string;
  readonly wallSeconds: number;
  /** the worker thread's CPU during the listing */
  readonly cpuSeconds: number;
}

/** worker -> main thread */
export type WorkerMessage =
  /** subscribed; writing 8 bytes to wakeFd (an eventfd) makes the worker look at the control word */
  | { readonly type: "ready"; readonly wakeFd: number }
  /** could not subscribe, or reading failed for good: why, for the fallback's reason */
  | { readonly type: "failed"; readonly reason: string; readonly code?: string }
  /** events of processes that count, ready to emit, in the kernel's order */
  | { readonly type: "events"; readonly events: EventInput[] }
  /** a listing of /proc is done (its events came before) */
  | { readonly type: "listed"; readonly listed: Listed }
  /** a /proc file did not parse */
  | { readonly type: "parseError"; readonly source: string; readonly detail: string }
  /** the socket's buffer overflowed (ENOBUFS): records were lost; a listing follows. `overflows`: so far */
  | { readonly type: "overflow"; readonly overflows: number }
  /** the socket and the eventfd are closed; the worker ends */
  | { readonly type: "closed" };
