// Names the process that holds a spool, for the "in use" message. SQLite
// locks with fcntl(2), and Linux lists those locks, with their pid, in
// /proc/locks; elsewhere the message simply names no pid.
import { readFileSync, statSync } from "node:fs";

/** The pid holding a POSIX lock on `path`, if it can be found. */
export function lockHolderPid(path: string): number | undefined {
  let id: string;
  let locks: string;
  try {
    const { dev, ino } = statSync(path);
    // glibc's encoding of st_dev; /proc/locks prints major:minor in hex
    const major = (dev >>> 8) & 0xfff;
    const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
    id = `${hex2(major)}:${hex2(minor)}:${ino}`;
    locks = readFileSync("/proc/locks", "utf8");
  } catch {
    return undefined;
  }
  // "1: POSIX  ADVISORY  WRITE 9201 fe:00:2147121 1073741824 1073742335";
  // lines with "->" are waiters, not holders
  for (const line of locks.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== "POSIX" || f[5] !== id) continue;
    const pid = Number(f[4]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) return pid;
  }
  return undefined;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
