// Opens the SQLite file behind a spool: creates it with the right layout, or
// checks that an existing file is a spool this release can read, and takes
// the lock that keeps a second agent out.
import { Database } from "bun:sqlite";
import { mkdirSync, renameSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { SpoolError, fileSystemCause, isBusy, toSpoolError } from "./errors.ts";
import { lockHolderPid } from "./lock-holder.ts";

/** Marks the file as ours ("tapi"), so another program's SQLite file is refused, not adopted. */
const APPLICATION_ID = 0x74617069;
/** PRAGMA user_version of the layout below; a file with another version is refused, except the ones before (migrated). */
const SCHEMA_VERSION = 3;
/** Layout 1 had no crc column; its file is migrated on open and its rows replay unchecked (crc NULL). */
const SCHEMA_VERSION_WITHOUT_CRC = 1;
/** Layout 2 had no subject_suffix column; its rows have none (NULL), so migrating it is one ADD COLUMN. */
const SCHEMA_VERSION_WITHOUT_SUFFIX = 2;

// seq is AUTOINCREMENT so a number is never reused, even after the table
// emptied: a caller still holding a peeked row must not delete a newer one.
// crc is the row's checksum (see rowChecksum in spool.ts); NULL only in rows
// migrated from layout 1. subject_suffix is what a collector put after its
// subject (QueuedEvent.subjectSuffix), NULL for most rows. Columns added by
// a layout come last, so that each migration is an ADD COLUMN.
const SCHEMA = `CREATE TABLE spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  subject TEXT NOT NULL,
  id TEXT NOT NULL,
  collector TEXT NOT NULL,
  data BLOB NOT NULL,
  spooled_at INTEGER NOT NULL,
  crc INTEGER,
  subject_suffix TEXT
)`;
/**
 * Where each collector keeps where it stopped in its source (see
 * CollectorState), by collector name. Created in any spool that lacks it,
 * without a new layout version: a release that does not know the table
 * leaves it alone.
 */
const STATE_SCHEMA = `CREATE TABLE IF NOT EXISTS collector_state (
  collector TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  saved_at INTEGER NOT NULL
)`;
const COLUMNS_WITHOUT_CRC = "seq,subject,id,collector,data,spooled_at";
const COLUMNS_WITHOUT_SUFFIX = `${COLUMNS_WITHOUT_CRC},crc`;
const COLUMNS = `${COLUMNS_WITHOUT_SUFFIX},subject_suffix`;
const COLUMNS_OF: Record<number, string> = {
  [SCHEMA_VERSION]: COLUMNS,
  [SCHEMA_VERSION_WITHOUT_SUFFIX]: COLUMNS_WITHOUT_SUFFIX,
  [SCHEMA_VERSION_WITHOUT_CRC]: COLUMNS_WITHOUT_CRC,
};

type Layout = "fresh" | "current" | "without_crc" | "without_suffix";

/**
 * 32 KiB pages: a row never spans pages, so a page wastes what is left after
 * its last whole row. With 4 KiB pages a 1 KiB event costs ~1.4 KiB of file;
 * with 32 KiB the waste stays under ~20% for events up to 4 KiB, and bulk
 * inserts of 1 KiB events ran 3x faster. The price: a small commit writes
 * bigger WAL frames.
 */
const PAGE_SIZE = 32768;
/** A second opener must fail fast, not hang: the holder keeps its lock until it exits. */
const BUSY_TIMEOUT_MS = 100;
/** Checkpoint the WAL every 4 MiB (128 pages) instead of SQLite's 1000 pages (32 MiB here). */
const WAL_AUTOCHECKPOINT_PAGES = 128;
/** And cut it back to that size after a checkpoint, or it keeps its high-water mark on disk. */
const JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024;

/**
 * Opens (creating if needed) the spool file at `path`, locked for this
 * process until closed. `onMigrated` is called when the file was a layout-1
 * spool, now migrated: its rows have no checksum.
 */
export function openSpoolFile(path: string, onMigrated?: () => void): Database {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    const { reason, why } = fileSystemCause(dirname(path), err);
    throw new SpoolError(path, `cannot create the directory of spool ${path}: ${why}`, { cause: err, reason });
  }
  let db: Database;
  try {
    db = new Database(path, { create: true, readwrite: true, strict: true });
  } catch (err) {
    throw toSpoolError(path, "open", err);
  }
  try {
    if (setUp(db, path)) onMigrated?.();
    return db;
  } catch (err) {
    closeQuietly(db);
    if (!isBusy(err)) throw toSpoolError(path, "open", err);
    const pid = lockHolderPid(path);
    throw new SpoolError(path, `spool ${path} is in use by another tapio-collectors process${pid === undefined ? "" : ` (pid ${pid})`}`, { cause: err, reason: "locked" });
  }
}

/** The error that made the open fail is the one to report, not a second one from closing. */
export function closeQuietly(db: Database): void {
  try {
    db.close(true);
  } catch {}
}

/** Returns true when it migrated a layout-1 file. */
function setUp(db: Database, path: string): boolean {
  db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Set before the first read and before WAL mode: the connection then never
  // releases its file lock, and keeps the WAL index in its own memory (no -shm).
  db.run("PRAGMA locking_mode = EXCLUSIVE");
  const layout = checkIdentity(db, path);
  const fresh = layout === "fresh";
  if (fresh) {
    // Only take effect before the first table is created.
    db.run(`PRAGMA page_size = ${PAGE_SIZE}`);
    db.run("PRAGMA auto_vacuum = INCREMENTAL");
  }
  const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get()?.journal_mode;
  if (mode !== "wal") throw new SpoolError(path, `cannot open spool ${path}: SQLite refused WAL mode (journal_mode is ${mode})`);
  // In WAL mode NORMAL loses nothing when the process dies, only on a power cut.
  db.run("PRAGMA synchronous = NORMAL");
  db.run(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.run(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
  // A write transaction, fresh file or not: it fails with SQLITE_BUSY now,
  // not on the first append, if another process holds the file.
  db.transaction(() => {
    if (layout === "without_crc") db.run("ALTER TABLE spool ADD COLUMN crc INTEGER");
    if (layout === "without_crc" || layout === "without_suffix") db.run("ALTER TABLE spool ADD COLUMN subject_suffix TEXT");
    if (fresh) {
      db.run(SCHEMA);
      db.run(`PRAGMA application_id = ${APPLICATION_ID}`);
    }
    if (layout !== "current") db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.run(STATE_SCHEMA);
  }).immediate();
  return layout === "without_crc";
}

/** "fresh" for an empty file (a new spool); throws if the file holds anything but a spool of our version or one before. */
function checkIdentity(db: Database, path: string): Layout {
  const appId = db.query<{ application_id: number }, []>("PRAGMA application_id").get()?.application_id ?? 0;
  const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
  const tables = db.query<{ n: number }, []>("SELECT count(*) AS n FROM sqlite_schema").get()?.n ?? 0;
  if (appId === 0 && version === 0 && tables === 0) return "fresh";
  const notOurs = `${path} is not a tapio-collectors spool`;
  if (appId !== APPLICATION_ID) throw new SpoolError(path, `${notOurs} (an SQLite database of another program): move it aside or choose another spool path`, { reason: "incompatible" });
  const expected = COLUMNS_OF[version];
  if (expected === undefined) {
    throw new SpoolError(path, `spool ${path} has layout version ${version}, this tapio-collectors reads version ${SCHEMA_VERSION} (written by another release?): move it aside or use that release to drain it`, { reason: "incompatible" });
  }
  const columns = db.query<{ name: string }, []>("SELECT name FROM pragma_table_info('spool')").all().map((c) => c.name).join(",");
  if (columns !== expected) throw new SpoolError(path, `${notOurs} (table "spool" has columns ${columns || "none"}): move it aside`, { reason: "incompatible" });
  return version === SCHEMA_VERSION ? "current" : version === SCHEMA_VERSION_WITHOUT_SUFFIX ? "without_suffix" : "without_crc";
}

/**
 * Moves a corrupt spool file (and its WAL) aside to `<path>.corrupt-<time>`,
 * so the agent can start with a fresh spool and the damaged one stays for a
 * post-mortem. Returns where it went and its size; throws a SpoolError naming
 * the cause if it cannot be moved.
 */
export function setAside(path: string): { movedTo: string; bytes: number } {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const movedTo = `${path}.corrupt-${stamp}`;
  let bytes = 0;
  for (const suffix of ["", "-wal", "-shm"]) {
    const from = `${path}${suffix}`;
    const size = statSync(from, { throwIfNoEntry: false })?.size;
    if (size === undefined) continue;
    try {
      renameSync(from, `${movedTo}${suffix}`);
    } catch (err) {
      // a rename needs write access to the directory, not the file
      const { reason, why } = fileSystemCause(dirname(from), err);
      throw new SpoolError(path, `spool ${path} is corrupt and cannot be moved aside: ${why}`, { cause: err, reason });
    }
    bytes += size;
  }
  return { movedTo, bytes };
}
