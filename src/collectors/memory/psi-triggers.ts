// PSI triggers (Documentation/accounting/psi.rst, what systemd-oomd and
// Android's lmkd use): a "<some|full> <stall µs> <window µs>" line written to
// an O_RDWR fd of /proc/pressure/<resource> makes the kernel raise POLLPRI on
// that fd when the tasks stalled at least that long within the window, at
// most once per window. One trigger per fd.
//
// The collector's thresholds are on avg10, the share of the last ~10 s the
// tasks stalled. A threshold of X % becomes the trigger "stall X % of a 10 s
// window": `some 1000000 10000000` for memory some_avg10 = 10. The 10 s window
// is the horizon of avg10 and the kernel's largest; being a multiple of 2 s it
// is allowed without privileges since Linux 6.5 (before, writing a trigger
// needs CAP_SYS_RESOURCE, and any trigger needs write access to the file).
import { closeSync, openSync, writeSync } from "node:fs";
import { under } from "../common/paths.ts";
import { fsType, libc, PROC_SUPER_MAGIC } from "./libc.ts";

export const PSI_WINDOW_US = 10_000_000;

export type PsiKind = "some" | "full";

export interface PsiTrigger<R extends string> {
  resource: R;
  kind: PsiKind;
  fd: number;
}

/** The trigger line for an avg10 threshold in %, NUL-terminated as the kernel reads it. */
export function triggerLine(kind: PsiKind, thresholdPercent: number): string {
  const stallUs = Math.max(1, Math.round((thresholdPercent / 100) * PSI_WINDOW_US));
  return `${kind} ${stallUs} ${PSI_WINDOW_US}\0`;
}

/**
 * Opens one trigger per (resource, kind) with a threshold above 0: all of
 * them, or none and why (the collector then polls PSI as before).
 */
export function openPsiTriggers<R extends string>(procRoot: string, thresholds: ReadonlyArray<{ resource: R; kind: PsiKind; percent: number }>): PsiTrigger<R>[] | { error: string } {
  const loaded = libc();
  if ("error" in loaded) return loaded;
  const pressureDir = under(procRoot, "pressure");
  const type = fsType(loaded.libc, pressureDir);
  // A regular file (a test's fake /proc) would take the trigger line as its new content.
  if (type !== PROC_SUPER_MAGIC) return { error: type === undefined ? `${pressureDir} is missing (no PSI on this kernel)` : `${pressureDir} is not procfs: no PSI triggers` };
  const opened: PsiTrigger<R>[] = [];
  for (const { resource, kind, percent } of thresholds) {
    const path = under(pressureDir, resource);
    let fd: number | undefined;
    try {
      fd = openSync(path, "r+");
      writeSync(fd, triggerLine(kind, percent));
      opened.push({ resource, kind, fd });
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      for (const trigger of opened) closeSync(trigger.fd);
      return { error: `cannot set a PSI trigger on ${path}: ${explain(err)}` };
    }
  }
  return opened;
}

function explain(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const text = err instanceof Error ? err.message : String(err);
  if (code === "EACCES" || code === "EPERM") return `${text} (needs write access to the file, and before Linux 6.5 CAP_SYS_RESOURCE)`;
  if (code === "EROFS") return `${text} (the host's /proc is mounted read-only)`;
  return text;
}
