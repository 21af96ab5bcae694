// The few libc calls the kernel's notifications need and Bun does not offer:
// eventfd(2) (cgroup v1 OOM notifications), poll(2) (waiting for POLLPRI of a
// PSI trigger or an eventfd, in a worker), read/write/close on those fds, and
// statfs(2) (a trigger is only written to procfs or cgroupfs, never to a
// regular file standing in for one in a test). Loaded on first use; where it
// cannot be (not Linux, no libc found), the collector polls.
import { dlopen, FFIType, ptr, read as readPointer, type Pointer } from "bun:ffi";
import { openLibc } from "../../libc.ts";

const SYMBOLS = {
  eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  statfs: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

let loaded: { libc: Libc } | { error: string } | undefined;

/** libc's symbols, or why they cannot be had. */
export function libc(): { libc: Libc } | { error: string } {
  if (loaded) return loaded;
  if (process.platform !== "linux") return (loaded = { error: `not Linux (${process.platform})` });
  const symbols = openLibc(SYMBOLS);
  return (loaded = typeof symbols === "string" ? { error: `no libc to call the kernel with (${symbols})` } : { libc: symbols });
}

export const PROC_SUPER_MAGIC = 0x9fa0;
export const CGROUP_SUPER_MAGIC = 0x27e0eb;
export const CGROUP2_SUPER_MAGIC = 0x63677270;

/** errno of the last failed call on this thread. */
export function errno(c: Libc): number {
  return readPointer.i32(c.__errno_location() as Pointer, 0);
}

/** The file system type (statfs f_type) `path` is on, or undefined when it cannot be told. */
export function fsType(c: Libc, path: string): number | undefined {
  // struct statfs is 120 bytes on 64-bit Linux; f_type (a long) comes first.
  const buf = new BigInt64Array(16);
  if (c.statfs(ptr(Buffer.from(`${path}\0`)), ptr(buf)) !== 0) return undefined;
  return Number(buf[0]! & 0xffffffffn);
}

/** Adds 1 to an eventfd's counter (wakes whoever polls it). */
export function signalEventfd(c: Libc, fd: number): void {
  c.write(fd, ptr(new BigUint64Array([1n])), 8);
}
