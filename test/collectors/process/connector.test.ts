// The connector's wire format, without a kernel: datagrams laid out as
// linux/cn_proc.h says, parsed; threads and other event kinds left out.
import { expect, test } from "bun:test";
import { CN_IDX_PROC, exitStatus, MAX_FILTER_PIDS, parseDatagram, PROC_CN_MCAST_LISTEN, procEventFilter, subscribeMessage } from "../../../src/collectors/process/connector.ts";

/** nlmsghdr + cn_msg + proc_event {what, cpu, timestamp_ns, event_data as u32s} */
function datagram(what: number, data: number[], ns = 123_456_789n): DataView {
  const length = 16 + 20 + 16 + 4 * data.length;
  const view = new DataView(new ArrayBuffer(length));
  view.setUint32(0, length, true);
  view.setUint16(4, 3, true);
  view.setUint32(16, CN_IDX_PROC, true);
  view.setUint32(20, 1, true);
  view.setUint16(32, 16 + 4 * data.length, true);
  view.setUint32(36, what, true);
  view.setBigUint64(44, ns, true);
  data.forEach((x, i) => view.setUint32(52 + 4 * i, x, true));
  return view;
}

test("exec, exit and fork of processes; threads, other kinds and short datagrams are left out", () => {
  const parse = (view: DataView) => parseDatagram(view, view.byteLength);
  expect(parse(datagram(0x2, [42, 42]))).toEqual({ kind: "exec", pid: 42, ppid: 0, ns: 123_456_789 });
  expect(parse(datagram(0x80000000, [42, 42, 9, 17, 7, 7]))).toEqual({ kind: "exit", pid: 42, ppid: 7, status: 9, ns: 123_456_789 });
  // A kernel before 4.18: no parent in the exit.
  expect(parse(datagram(0x80000000, [42, 42, 256, 17]))).toEqual({ kind: "exit", pid: 42, ppid: 0, status: 256, ns: 123_456_789 });
  expect(parse(datagram(0x1, [7, 7, 42, 42]))).toEqual({ kind: "fork", pid: 42, ppid: 7, ns: 123_456_789 });
  expect(parse(datagram(0x0, [1]))).toEqual({ kind: "ack", err: 1 });
  expect(parse(datagram(0x1, [7, 7, 43, 42]))).toBeUndefined(); // a thread of 42
  expect(parse(datagram(0x80000000, [43, 42, 0, 17, 7, 7]))).toBeUndefined(); // a thread's exit
  expect(parse(datagram(0x200, [42, 42, 0, 0]))).toBeUndefined(); // comm
  const short = datagram(0x2, [42, 42]);
  expect(parseDatagram(short, 55)).toBeUndefined();
});

test("the subscription: nlmsghdr + cn_msg {CN_IDX_PROC, CN_VAL_PROC} + the 4-byte op", () => {
  const msg = new DataView(subscribeMessage(PROC_CN_MCAST_LISTEN, 1).buffer);
  expect(msg.byteLength).toBe(40);
  expect([msg.getUint32(0, true), msg.getUint16(4, true), msg.getUint32(16, true), msg.getUint32(20, true), msg.getUint16(32, true), msg.getUint32(36, true)]).toEqual([40, 3, 1, 1, 4, 1]);
});

test("a wait status: the exit code, or the signal", () => {
  expect(exitStatus(0)).toEqual({ exit_code: "0" });
  expect(exitStatus(3 << 8)).toEqual({ exit_code: "3" });
  expect(exitStatus(9)).toEqual({ signal: "9" });
  expect(exitStatus(0x80 | 11)).toEqual({ signal: "11" }); // core dumped
});

/** A classic BPF interpreter for the instructions procEventFilter uses: what the kernel does with each datagram. */
function runFilter(program: Uint8Array, packet: DataView): number {
  const p = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < p.byteLength / 8; pc++) {
    const [code, jt, jf, k] = [p.getUint16(pc * 8, le), p.getUint8(pc * 8 + 2), p.getUint8(pc * 8 + 3), p.getUint32(pc * 8 + 4, le)];
    switch (code) {
      case 0x20: // ld [k]: network order; out of bounds drops
        if (k + 4 > packet.byteLength) return 0;
        a = packet.getUint32(k, false);
        break;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x1d:
        pc += a === x ? jt : jf;
        break;
      case 0x02:
        mem[k] = a;
        break;
      case 0x61:
        x = mem[k]!;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unknown instruction ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("fell off the end");
}

test("the socket filters: the one waited on lets through the ack, execs and exits of the processes named (or of all); the lazy one, forks and exits of processes; threads and other kinds neither", () => {
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const wake = procEventFilter(le, "wake");
  const lazy = procEventFilter(le, "lazy");
  const passes = (view: DataView) => [runFilter(wake, view) > 0, runFilter(lazy, view) > 0];
  expect(passes(datagram(0x0, [0]))).toEqual([true, false]);
  expect(passes(datagram(0x2, [42, 42]))).toEqual([true, false]);
  expect(passes(datagram(0x1, [7, 7, 42, 42]))).toEqual([false, true]);
  expect(passes(datagram(0x80000000, [42, 42, 9, 17, 7, 7]))).toEqual([true, true]);
  expect(passes(datagram(0x1, [7, 7, 43, 42]))).toEqual([false, false]); // a thread of 42
  expect(passes(datagram(0x80000000, [43, 42, 0, 17, 7, 7]))).toEqual([false, false]); // a thread's exit
  expect(passes(datagram(0x200, [42, 42, 0, 0]))).toEqual([false, false]); // comm
  expect(passes(datagram(0x80, [42, 42]))).toEqual([false, false]); // sid
  // Not a proc event (another connector index): passed on, for the parser to leave out.
  const other = datagram(0x2, [42, 42]);
  other.setUint32(16, 7, true);
  expect(passes(other)).toEqual([true, true]);
  // Every record the parser keeps passes one of them at least.
  for (const [what, data] of [[0x2, [5, 5]], [0x1, [1, 1, 5, 5]], [0x80000000, [5, 5, 0, 17, 1, 1]]] as const) {
    const view = datagram(what, [...data]);
    expect(parseDatagram(view, view.byteLength)).toBeDefined();
    expect(passes(view).some(Boolean)).toBe(true);
  }

  // Exits filtered by pid: only those of the processes named; the rest as before.
  const exitOf = (pid: number) => datagram(0x80000000, [pid, pid, 0, 17, 1, 1]);
  const named = procEventFilter(le, "wake", [42, 70000, 4_194_304]);
  for (const pid of [42, 70000, 4_194_304]) expect(runFilter(named, exitOf(pid))).toBeGreaterThan(0);
  for (const pid of [41, 43, 1, 69999]) expect(runFilter(named, exitOf(pid))).toBe(0);
  expect(runFilter(named, datagram(0x2, [41, 41]))).toBeGreaterThan(0);
  expect(runFilter(named, datagram(0x80000000, [43, 42, 0, 17, 7, 7]))).toBe(0);
  const none = procEventFilter(le, "wake", []);
  expect(runFilter(none, exitOf(42))).toBe(0);
  expect(runFilter(none, datagram(0x0, [0]))).toBeGreaterThan(0);
  // The lazy socket's filter takes no pids: every process's exit.
  expect(runFilter(procEventFilter(le, "lazy", [1]), exitOf(42))).toBeGreaterThan(0);
  // The most pids a filter may name stays within the kernel's 4096 instructions.
  expect(procEventFilter(le, "wake", Array.from({ length: MAX_FILTER_PIDS }, (_, i) => i + 1)).byteLength / 8).toBeLessThanOrEqual(4096);
});
