// A TCP listener that never accepts, for provoking listen queue overflows.
// Bun's own servers accept every connection at once and ignore `backlog`
// (they listen with 512), so the socket is made with libc through bun:ffi:
// the event loop never sees it, nothing accepts, and listen(2) gets the
// backlog asked for.
import { dlopen, FFIType, ptr } from "bun:ffi";

const AF_INET = 2;
const SOCK_STREAM = 1;

export interface Listener {
  port: number;
  close(): void;
}

export function listenWithoutAccepting(ipv4: string, backlog: number): Listener {
  const libc = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  const { socket, bind, listen, getsockname, close } = libc.symbols;
  const fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new Error("socket() failed");
  // struct sockaddr_in: family (host order), port and address (network order), zero padding.
  const address = new Uint8Array(16);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_INET, true);
  address.set(ipv4.split(".").map(Number), 4);
  const length = new Uint32Array([16]);
  if (bind(fd, ptr(address), 16) !== 0 || listen(fd, backlog) !== 0 || getsockname(fd, ptr(address), ptr(length)) !== 0) {
    close(fd);
    libc.close();
    throw new Error(`cannot listen on ${ipv4}`);
  }
  return {
    port: view.getUint16(2, false),
    close() {
      close(fd);
      libc.close();
    },
  };
}
