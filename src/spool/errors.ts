// The one error the spool throws. SQLite's own errors never leave src/spool:
// they are turned into a SpoolError that names the file, says what to do,
// and carries a reason (the label of orchestrator_spool_errors_total).
import { SQLiteError } from "bun:sqlite";
import { accessSync, constants, statfsSync } from "node:fs";
import { dirname } from "node:path";

/** Why the spool failed; what an operator does differs for each. */
export const SPOOL_ERROR_REASONS = ["full", "read_only", "permission", "corrupt", "incompatible", "locked", "io", "other"] as const;
export type SpoolErrorReason = (typeof SPOOL_ERROR_REASONS)[number];

export class SpoolError extends Error {
  override readonly name = "SpoolError";

  constructor(
    /** the spool file concerned */
    readonly path: string,
    message: string,
    options?: ErrorOptions & { reason?: SpoolErrorReason },
  ) {
    super(message, options);
    this.reason = options?.reason ?? "other";
  }

  readonly reason: SpoolErrorReason;
}

// Primary result codes (https://sqlite.org/rescode.html); SQLiteError.errno is
// the extended code, whose low byte is the primary one.
const SQLITE_PERM = 3;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

function primaryCode(err: unknown): number | undefined {
  return err instanceof SQLiteError ? err.errno & 0xff : undefined;
}

export function isBusy(err: unknown): boolean {
  return primaryCode(err) === SQLITE_BUSY;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What the file system says about writing next to `path`: SQLite's "unable to open" and I/O errors do not. */
export function diagnoseLocation(path: string): { reason: SpoolErrorReason; why: string } | undefined {
  const dir = dirname(path);
  try {
    const fs = statfsSync(dir);
    if (fs.bavail === 0 || fs.ffree === 0) return { reason: "full", why: `the file system of ${dir} is full` };
  } catch {}
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    return fileSystemCause(dir, err);
  }
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") return fileSystemCause(path, err);
  }
  return undefined;
}

/** A Node file system error (mkdir, rename, access) as a reason and a phrase naming the cause. */
export function fileSystemCause(path: string, err: unknown): { reason: SpoolErrorReason; why: string } {
  switch ((err as NodeJS.ErrnoException).code) {
    case "EROFS":
      return { reason: "read_only", why: `${path} is on a read-only file system` };
    case "EACCES":
    case "EPERM":
      return { reason: "permission", why: `permission denied: uid ${process.getuid?.() ?? "?"} may not write ${path}` };
    case "ENOSPC":
    case "EDQUOT":
      return { reason: "full", why: `the file system of ${path} is full` };
    case "EIO":
      return { reason: "io", why: `I/O error on ${path}` };
    default:
      return { reason: "other", why: errorText(err) };
  }
}

/**
 * `action` completes "cannot <action> spool <path>", e.g. "open", "append to".
 * Anything that is not an SQLite error is a bug here, and is passed on as is.
 */
export function toSpoolError(path: string, action: string, err: unknown): unknown {
  if (err instanceof SpoolError || !(err instanceof SQLiteError)) return err;
  const cannot = `cannot ${action} spool ${path}`;
  switch (primaryCode(err)) {
    case SQLITE_CORRUPT:
      return new SpoolError(path, `spool ${path} is corrupt (${err.message}): move the file aside and restart; the events in it are lost`, { cause: err, reason: "corrupt" });
    case SQLITE_NOTADB:
      return new SpoolError(path, `${path} is not a tapio-collectors spool (not an SQLite database, or a damaged one): move it aside or choose another spool path`, { cause: err, reason: "corrupt" });
    case SQLITE_FULL:
      return new SpoolError(path, `${cannot}: the disk is full`, { cause: err, reason: "full" });
    case SQLITE_READONLY: {
      const found = diagnoseLocation(path);
      return new SpoolError(path, `${cannot}: ${found?.why ?? "the file is read-only"}`, { cause: err, reason: found?.reason ?? "read_only" });
    }
    case SQLITE_PERM:
      return new SpoolError(path, `${cannot}: permission denied (${err.message})`, { cause: err, reason: "permission" });
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new SpoolError(path, `${cannot}: ${err.message}`, { cause: err, reason: "locked" });
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
      // SQLite only says "unable to open database file" or "disk I/O error": ask the file system why.
      const found = diagnoseLocation(path);
      const reason = found?.reason ?? (primaryCode(err) === SQLITE_IOERR ? "io" : "other");
      return new SpoolError(path, `${cannot}: ${err.message}${found ? ` (${found.why})` : ""}`, { cause: err, reason });
    }
    default:
      return new SpoolError(path, `${cannot}: ${err.message}`, { cause: err });
  }
}

/** Any error from the spool path as a SpoolError: one that is not (a bug) is reason "other". */
export function asSpoolError(path: string, err: unknown): SpoolError {
  const known = toSpoolError(path, "use", err);
  return known instanceof SpoolError ? known : new SpoolError(path, `spool ${path}: ${errorText(err)}`, { cause: err });
}
