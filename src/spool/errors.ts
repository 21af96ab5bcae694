// The one error the spool throws. SQLite's own errors never leave src/spool:
// they are turned into a SpoolError that names the file and says what to do.
import { SQLiteError } from "bun:sqlite";

export class SpoolError extends Error {
  override readonly name = "SpoolError";

  constructor(
    /** the spool file concerned */
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// Primary result codes (https://sqlite.org/rescode.html); SQLiteError.errno is
// the extended code, whose low byte is the primary one.
const SQLITE_BUSY = 5;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
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

/**
 * `action` completes "cannot <action> spool <path>", e.g. "open", "append to".
 * Anything that is not an SQLite error is a bug here, and is passed on as is.
 */
export function toSpoolError(path: string, action: string, err: unknown): unknown {
  if (err instanceof SpoolError || !(err instanceof SQLiteError)) return err;
  switch (primaryCode(err)) {
    case SQLITE_CORRUPT:
      return new SpoolError(path, `spool ${path} is corrupt (${err.message}): move the file aside and restart; the events in it are lost`, { cause: err });
    case SQLITE_NOTADB:
      return new SpoolError(path, `${path} is not a tapio-collectors spool (not an SQLite database, or a damaged one): move it aside or choose another spool path`, { cause: err });
    case SQLITE_FULL:
      return new SpoolError(path, `cannot ${action} spool ${path}: the disk is full`, { cause: err });
    default:
      return new SpoolError(path, `cannot ${action} spool ${path}: ${err.message}`, { cause: err });
  }
}
