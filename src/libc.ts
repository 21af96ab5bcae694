// The one place libc is loaded for bun:ffi (the kernel calls Bun does not
// offer: poll(2), eventfd(2), netlink sockets, madvise(2), statfs(2)). Each
// caller names the symbols it needs; every caller tries the same libraries.
import { dlopen, type FFIFunction, type Library } from "bun:ffi";

const MUSL_ARCH: Record<string, string> = { x64: "x86_64", arm64: "aarch64" };
const muslArch = MUSL_ARCH[process.arch] ?? process.arch;

/** glibc's soname first (the distroless image, Debian), then musl's two names (Alpine), then a bare libc.so. */
export const LIBC_NAMES = ["libc.so.6", `libc.musl-${muslArch}.so.1`, `/lib/ld-musl-${muslArch}.so.1`, "libc.so"];

/** libc's `symbols`, or why none of LIBC_NAMES could be loaded (each name with its error). */
export function openLibc<Fns extends Readonly<Record<string, FFIFunction>>>(symbols: Fns): Library<Fns>["symbols"] | string {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  const errors: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return errors.join("; ");
}

// Linux's values (the same on x86_64 and aarch64) for the calls made through openLibc.
export const EINTR = 4;
export const EAGAIN = 11;
export const EPIPE = 32;
export const ENOBUFS = 105;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const SOL_SOCKET = 1;
export const MSG_DONTWAIT = 0x40;
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_THREAD_CPUTIME_ID = 3;
