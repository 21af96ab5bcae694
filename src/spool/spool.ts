// The persistent outbox: events that cannot be published now wait here, in
// order, and a row is deleted only once the server acknowledged its event.
// One SQLite file (see file.ts), bounded in bytes, one transaction per batch.
import type { Database, Statement } from "bun:sqlite";
import { statSync } from "node:fs";
import type { Logger } from "pino";
import type { QueuedEvent } from "../event/event.ts";
import type { DiscardedReason } from "../event/drop-reasons.ts";
import type { WhenFull } from "../config/schema.ts";
import { SpoolError, errorText, toSpoolError } from "./errors.ts";
import { closeQuietly, openSpoolFile, setAside } from "./file.ts";
import { scanWal, type WalScan } from "./wal.ts";

export { SpoolError } from "./errors.ts";


export interface SpoolOptions {
  path: string;
  /** bound on the spool's size, counted as payload + ROW_OVERHEAD per row */
  maxBytes: number;
  whenFull: WhenFull;
  log: Logger;
}

export interface SpooledEvent extends QueuedEvent {
  /** position in the spool: replay order, and the key remove() deletes by */
  readonly seq: number;
  /** ms since epoch when written */
  readonly spooledAt: number;
}

export interface SpoolDrop {
  readonly event: QueuedEvent;
  readonly reason: Extract<DiscardedReason, "spool_full" | "spool_full_oldest" | "too_large_for_spool">;
}

export interface AppendResult {
  /**
   * How many of `events`, from the start, the spool took: wrote, or dropped
   * (listed in `dropped`). Always all of them, except with "block": then
   * events[appended] is the first that did not fit; wait for space
   * (waitForSpace) and append the rest again.
   */
  readonly appended: number;
  /**
   * Events dropped: too large for the spool on their own (any policy); with
   * drop_newest, the ones that did not fit; with drop_oldest, the oldest rows
   * deleted to make room, then any older events of this batch that did not fit.
   */
  readonly dropped: readonly SpoolDrop[];
}

export interface SpoolStats {
  depth: number;
  /** payload + ROW_OVERHEAD per row, the quantity maxBytes bounds */
  bytes: number;
  /** ms since epoch when the oldest row was written */
  oldestAt: number | undefined;
  /** the file and its write-ahead log on disk */
  fileBytes: number;
}

/**
 * What a row costs beyond its payload, so `bytes` follows the file's growth:
 * subject, id and collector (~60 bytes for a typical subject, a 36-character
 * UUID and a collector name) plus ~30 bytes of rowid, timestamp, checksum, record header
 * and cell pointer; measured at ~90 bytes a row. Not counted: the part of a
 * page too small for the next row (see PAGE_SIZE in file.ts) and the WAL.
 */
export const ROW_OVERHEAD = 96;
/** An emptied spool gives its pages back at most this often, not on every remove() of a busy drain. */
const RECLAIM_INTERVAL_MS = 1000;
/** drop_oldest reads the rows it deletes (to report them) in chunks of this many. */
const EVICT_CHUNK = 256;

const PEEK_COLUMNS = "seq, subject, id, collector, data AS bytes, spooled_at AS spooledAt, crc, subject_suffix AS subjectSuffix";
/** What the drainer's skip list names: a collector, or a collector and its subject suffix ("ingest.app"). */
const ROUTE = "CASE WHEN subject_suffix IS NULL THEN collector ELSE collector || '.' || subject_suffix END";
/** quick_check problems logged at open; SQLite stops at 100 by default. */
const QUICK_CHECK_LOGGED = 10;

/** A row as read: its checksum as written (null in rows from a spool of layout 1, which had none). */
interface StoredRow extends SpooledEvent {
  readonly crc: number | null;
}

/**
 * The row's checksum, written with it and checked before it is replayed: a
 * CRC-32 over the collector, the id and the payload, the fields a replay
 * sends (the subject is derived from the collector on replay), and the
 * subject suffix when there is one (rows without keep the sum they had
 * before suffixes existed). Bun's crc32
 * is hardware-assisted: ~0.1-0.2 us per event, against ~2.5-4 us of CPU per
 * spooled event (see the README's spool section for the measured cost).
 */
export function rowChecksum(collector: string, id: string, bytes: Uint8Array, subjectSuffix?: string | null): number {
  // Chained, not concatenated: no string to allocate on the insert path. Not
  // in row order (id, collector, data): damage that shifts bytes between
  // adjacent columns still changes the sum.
  const head = subjectSuffix == null ? Bun.hash.crc32(collector) : Bun.hash.crc32(subjectSuffix, Bun.hash.crc32(collector));
  return Bun.hash.crc32(bytes, Bun.hash.crc32(id, head));
}

function intact(row: StoredRow): boolean {
  // A damaged record header can turn any column into text, a number or NULL:
  // checked even in rows without a checksum (from a layout-1 spool).
  if (!(row.bytes instanceof Uint8Array) || typeof row.collector !== "string" || typeof row.id !== "string") return false;
  if (row.subjectSuffix != null && typeof row.subjectSuffix !== "string") return false;
  return row.crc === null || rowChecksum(row.collector, row.id, row.bytes, row.subjectSuffix) === row.crc;
}

interface Change {
  readonly depth: number;
  readonly bytes: number;
}

interface Waiter {
  readonly need: number;
  settle(ok: boolean): void;
}

export class Spool {
  readonly #path: string;
  readonly #db: Database;
  readonly #maxBytes: number;
  readonly #whenFull: WhenFull;
  readonly #log: Logger;
  // Kept in memory so stats() and the full check cost nothing; the table is
  // only counted once, on open.
  #depth: number;
  #bytes: number;
  readonly #insert: Statement<unknown, [string, string, string, Uint8Array, number, number, string | null]>;
  readonly #peek: Statement<StoredRow, [number]>;
  readonly #peekSkipping: Statement<StoredRow, [string, number]>;
  readonly #delete: Statement<unknown, [number]>;
  readonly #deleteDamaged: Statement<{ size: number }, [number]>;
  readonly #deleteThrough: Statement<unknown, [number]>;
  readonly #oldestAt: Statement<{ spooledAt: number }, []>;
  readonly #loadState: Statement<{ value: string }, [string]>;
  readonly #saveState: Statement<unknown, [string, string, number]>;
  readonly #appendTx: (events: readonly QueuedEvent[], now: number) => AppendResult & Change;
  readonly #removeTx: (events: readonly SpooledEvent[]) => Change;
  readonly #removeDamagedTx: (rows: readonly SpooledEvent[]) => Change;
  readonly #waiters = new Set<Waiter>();
  /** rows peek() found damaged and deleted, until takeDamaged() */
  #damaged: SpooledEvent[] = [];
  #lastReclaim = 0;
  #reclaimTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Creates the directory and file if missing. A corrupt file is moved aside
   * (see setAside) and a fresh spool opened in its place: its events are lost
   * either way, and the agent should not stop for them. Throws a SpoolError
   * (with its reason) if no spool can be used.
   */
  static open(options: SpoolOptions): Spool {
    try {
      return Spool.#openFile(options);
    } catch (err) {
      if (!(err instanceof SpoolError) || err.reason !== "corrupt") throw err;
      const { movedTo, bytes } = setAside(options.path);
      options.log.error(
        { path: options.path, moved_to: movedTo, bytes, err: err.message },
        `spool ${options.path} is corrupt: moved aside to ${movedTo} (${bytes} bytes); starting with an empty spool, the events in the old one are not replayed`,
      );
      return Spool.#openFile(options);
    }
  }

  static #openFile(options: SpoolOptions): Spool {
    const wal = walBeforeOpen(options);
    let migrated = false;
    const db = openSpoolFile(options.path, () => (migrated = true));
    try {
      return new Spool(db, options, migrated, wal);
    } catch (err) {
      closeQuietly(db);
      throw toSpoolError(options.path, "open", err);
    }
  }

  private constructor(db: Database, o: SpoolOptions, migrated: boolean, wal: WalScan | undefined) {
    this.#db = db;
    this.#path = o.path;
    this.#maxBytes = o.maxBytes;
    this.#whenFull = o.whenFull;
    this.#log = o.log;
    this.#insert = db.prepare("INSERT INTO spool (subject, id, collector, data, spooled_at, crc, subject_suffix) VALUES (?, ?, ?, ?, ?, ?, ?)");
    this.#peek = db.prepare(`SELECT ${PEEK_COLUMNS} FROM spool ORDER BY seq LIMIT ?`);
    // One statement for any set of routes: they come in as a JSON array.
    this.#peekSkipping = db.prepare(`SELECT ${PEEK_COLUMNS} FROM spool WHERE ${ROUTE} NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`);
    this.#delete = db.prepare("DELETE FROM spool WHERE seq = ?");
    // A damaged row's payload may read as text or NULL: its size as counted on open, from SQLite.
    this.#deleteDamaged = db.prepare("DELETE FROM spool WHERE seq = ? RETURNING length(data) AS size");
    this.#deleteThrough = db.prepare("DELETE FROM spool WHERE seq <= ?");
    this.#oldestAt = db.prepare("SELECT spooled_at AS spooledAt FROM spool ORDER BY seq LIMIT 1");
    this.#loadState = db.prepare("SELECT value FROM collector_state WHERE collector = ?");
    this.#saveState = db.prepare("INSERT INTO collector_state (collector, value, saved_at) VALUES (?, ?, ?) ON CONFLICT (collector) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at");
    this.#appendTx = db.transaction((events: readonly QueuedEvent[], now: number) => this.#write(events, now));
    this.#removeTx = db.transaction((events: readonly SpooledEvent[]) => this.#deleteRows(events));
    this.#removeDamagedTx = db.transaction((rows: readonly SpooledEvent[]) => this.#deleteDamagedRows(rows));
    // Visits every page of the table: a damaged file fails here, at open.
    const count = db.query<{ depth: number; data: number }, []>("SELECT count(*) AS depth, coalesce(sum(length(data)), 0) AS data FROM spool").get();
    this.#depth = count?.depth ?? 0;
    this.#bytes = (count?.data ?? 0) + this.#depth * ROW_OVERHEAD;
    this.#log.info({ path: o.path, depth: this.#depth, bytes: this.#bytes, maxBytes: o.maxBytes, whenFull: o.whenFull }, "spool opened");
    if (wal) logWal(o, wal);
    if (migrated) this.#log.info({ path: o.path, depth: this.#depth }, "spool: file of the previous layout migrated; its rows have no checksum and replay unchecked");
    this.#quickCheck();
  }

  /**
   * Structural check of the whole file (pages, b-trees, record headers; not
   * the index-to-table cross-check of integrity_check), logged. Damage found
   * here is not fatal: rows that still read are verified by their checksum
   * before replay; a read that hits a broken page fails as a SpoolError.
   */
  #quickCheck(): void {
    const started = performance.now();
    const problems = this.#db.query<{ quick_check: string }, []>("PRAGMA quick_check").all().map((r) => r.quick_check);
    const ms = Math.round(performance.now() - started);
    if (problems.length === 1 && problems[0] === "ok") {
      this.#log.info({ path: this.#path, ms }, "spool quick_check: ok");
      return;
    }
    this.#log.error(
      { path: this.#path, ms, problems: problems.length, first: problems.slice(0, QUICK_CHECK_LOGGED) },
      `spool quick_check found ${problems.length} problem(s): rows that fail their checksum are discarded as spool_corrupt; if reading the spool fails, move ${this.#path} aside`,
    );
  }

  /** Writes `events` in one transaction, as far as max_bytes and the when_full policy allow. */
  append(events: readonly QueuedEvent[]): AppendResult {
    this.#checkOpen();
    if (events.length === 0) return { appended: 0, dropped: [] };
    let result: AppendResult & Change;
    try {
      result = this.#appendTx(events, Date.now());
    } catch (err) {
      throw toSpoolError(this.#path, "append to", err);
    }
    this.#depth = result.depth;
    this.#bytes = result.bytes;
    return { appended: result.appended, dropped: result.dropped };
  }

  /**
   * Up to `limit` of the oldest intact rows, in spool order, leaving out those
   * of the routes in `skipRoutes` (a collector, or "<collector>.<subject
   * suffix>"). Rows that fail their checksum are never returned: they are
   * deleted and kept for takeDamaged().
   */
  peek(limit: number, skipRoutes?: ReadonlySet<string>): SpooledEvent[] {
    this.#checkOpen();
    // SQLite reads a negative LIMIT as "no limit"
    if (limit <= 0) return [];
    let rows: StoredRow[];
    try {
      rows = skipRoutes && skipRoutes.size > 0 ? this.#peekSkipping.all(JSON.stringify([...skipRoutes]), limit) : this.#peek.all(limit);
    } catch (err) {
      throw toSpoolError(this.#path, "read", err);
    }
    let damaged: StoredRow[] | undefined;
    for (const row of rows) if (!intact(row)) (damaged ??= []).push(row);
    if (damaged === undefined) return rows;
    let removed: Change;
    try {
      removed = this.#removeDamagedTx(damaged);
    } catch (err) {
      throw toSpoolError(this.#path, "remove from", err);
    }
    this.#removed(removed);
    for (const row of damaged) this.#damaged.push({ ...row, bytes: asBytes(row.bytes) });
    const bad = new Set(damaged.map((r) => r.seq));
    return rows.filter((r) => !bad.has(r.seq));
  }

  /** The rows peek() found damaged (and deleted) since the last call, for the caller to count as discarded. */
  takeDamaged(): SpooledEvent[] {
    const damaged = this.#damaged;
    this.#damaged = [];
    return damaged;
  }

  /** Deletes acknowledged rows in one transaction. Rows already gone (drop_oldest) are skipped. */
  remove(events: readonly SpooledEvent[]): void {
    this.#checkOpen();
    if (events.length === 0) return;
    let removed: Change;
    try {
      removed = this.#removeTx(events);
    } catch (err) {
      throw toSpoolError(this.#path, "remove from", err);
    }
    this.#removed(removed);
  }

  #removed(removed: Change): void {
    this.#depth -= removed.depth;
    this.#bytes -= removed.bytes;
    for (const waiter of this.#waiters) if (this.#fits(waiter.need)) waiter.settle(true);
    if (this.#depth === 0) this.#reclaimSoon();
  }

  /**
   * Resolves true once an event with a payload of `bytes` would fit, false if
   * `signal` aborts or the spool closes first. An event too large to ever fit
   * resolves true at once: append() drops it.
   */
  waitForSpace(bytes: number, signal: AbortSignal): Promise<boolean> {
    if (this.#closed || signal.aborted) return Promise.resolve(false);
    const need = bytes + ROW_OVERHEAD;
    if (need > this.#maxBytes || this.#fits(need)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = () => waiter.settle(false);
      const waiter: Waiter = {
        need,
        settle: (ok) => {
          this.#waiters.delete(waiter);
          signal.removeEventListener("abort", onAbort);
          resolve(ok);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** What collector `collector` saved last (see CollectorState), undefined if nothing. */
  loadState(collector: string): string | undefined {
    this.#checkOpen();
    try {
      return this.#loadState.get(collector)?.value;
    } catch (err) {
      throw toSpoolError(this.#path, "read", err);
    }
  }

  /** Keeps `value` for collector `collector` in place of what it saved before: one small transaction. */
  saveState(collector: string, value: string): void {
    this.#checkOpen();
    try {
      this.#saveState.run(collector, value, Date.now());
    } catch (err) {
      throw toSpoolError(this.#path, "write to", err);
    }
  }

  /** spool.max_bytes: the bound of `bytes` */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Events in the spool: a field read, for the per-batch checks (stats() reads the disk). */
  get depth(): number {
    return this.#depth;
  }

  stats(): SpoolStats {
    this.#checkOpen();
    let oldestAt: number | undefined;
    try {
      oldestAt = this.#depth > 0 ? this.#oldestAt.get()?.spooledAt : undefined;
    } catch (err) {
      throw toSpoolError(this.#path, "read", err);
    }
    return { depth: this.#depth, bytes: this.#bytes, oldestAt, fileBytes: fileSize(this.#path) + fileSize(`${this.#path}-wal`) };
  }

  /** Releases the file and its lock; pending waitForSpace calls resolve false. */
  close(): void {
    if (this.#closed) return;
    if (this.#reclaimTimer !== undefined) {
      clearTimeout(this.#reclaimTimer);
      this.#reclaimTimer = undefined;
      if (this.#depth === 0) this.#reclaim();
    }
    this.#closed = true;
    for (const waiter of this.#waiters) waiter.settle(false);
    try {
      // true: finalize our prepared statements too, or SQLite keeps the file (and its lock) open
      this.#db.close(true);
    } catch (err) {
      throw toSpoolError(this.#path, "close", err);
    }
  }

  #fits(need: number): boolean {
    return this.#bytes + need <= this.#maxBytes;
  }

  #checkOpen(): void {
    if (this.#closed) throw new SpoolError(this.#path, `spool ${this.#path} is closed`);
  }

  // Runs inside the append transaction: the in-memory counts change only
  // after it committed, from what this returns.
  #write(events: readonly QueuedEvent[], now: number): AppendResult & Change {
    const max = this.#maxBytes;
    const dropped: SpoolDrop[] = [];
    let depth = this.#depth;
    let bytes = this.#bytes;
    let start = 0;
    if (this.#whenFull === "drop_oldest") {
      const kept = newestThatFit(events, max);
      start = kept.start;
      const excess = bytes + kept.need - max;
      if (excess > 0) {
        const evicted = this.#evict(excess, dropped);
        depth -= evicted.depth;
        bytes -= evicted.bytes;
      }
      for (let i = 0; i < start; i++) {
        const event = events[i]!;
        dropped.push({ event, reason: rowSize(event) > max ? "too_large_for_spool" : "spool_full_oldest" });
      }
    }
    for (let i = start; i < events.length; i++) {
      const event = events[i]!;
      const size = rowSize(event);
      if (size > max) {
        dropped.push({ event, reason: "too_large_for_spool" });
        continue;
      }
      if (bytes + size > max) {
        if (this.#whenFull === "block") return { appended: i, dropped, depth, bytes };
        dropped.push({ event, reason: "spool_full" });
        continue;
      }
      const suffix = event.subjectSuffix ?? null;
      this.#insert.run(event.subject, event.id, event.collector, event.bytes, now, rowChecksum(event.collector, event.id, event.bytes, suffix), suffix);
      depth++;
      bytes += size;
    }
    return { appended: events.length, dropped, depth, bytes };
  }

  /** Deletes the oldest rows until at least `excess` bytes are free, reporting each in `dropped`. */
  #evict(excess: number, dropped: SpoolDrop[]): Change {
    let depth = 0;
    let bytes = 0;
    while (bytes < excess) {
      const rows = this.#peek.all(EVICT_CHUNK);
      if (rows.length === 0) break;
      let through = 0;
      for (const row of rows) {
        dropped.push({ event: row, reason: "spool_full_oldest" });
        depth++;
        // (a damaged row's payload may not be bytes: dropped all the same)
        bytes += asBytes(row.bytes).byteLength + ROW_OVERHEAD;
        through = row.seq;
        if (bytes >= excess) break;
      }
      this.#deleteThrough.run(through);
    }
    return { depth, bytes };
  }

  #deleteRows(events: readonly SpooledEvent[]): Change {
    let depth = 0;
    let bytes = 0;
    for (const event of events) {
      if (this.#delete.run(event.seq).changes === 0) continue;
      depth++;
      bytes += rowSize(event);
    }
    return { depth, bytes };
  }

  #deleteDamagedRows(rows: readonly SpooledEvent[]): Change {
    let depth = 0;
    let bytes = 0;
    for (const row of rows) {
      const deleted = this.#deleteDamaged.get(row.seq);
      if (!deleted) continue;
      depth++;
      bytes += (deleted.size ?? 0) + ROW_OVERHEAD;
    }
    return { depth, bytes };
  }

  #reclaimSoon(): void {
    if (this.#reclaimTimer !== undefined) return;
    const wait = this.#lastReclaim + RECLAIM_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.#reclaim();
      return;
    }
    this.#reclaimTimer = setTimeout(() => {
      this.#reclaimTimer = undefined;
      if (this.#depth === 0) this.#reclaim();
    }, wait);
    this.#reclaimTimer.unref();
  }

  /** Gives the free pages back to the file system and empties the WAL. */
  #reclaim(): void {
    this.#lastReclaim = Date.now();
    try {
      this.#db.run("PRAGMA incremental_vacuum");
      this.#db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (err) {
      // Costs only disk space, until the spool empties again.
      this.#log.warn({ path: this.#path, err: errorText(err) }, "spool: cannot reclaim disk space");
    }
  }
}

/** A damaged record header can make the payload column text, a number or NULL: as bytes, for sizes and logs. */
function asBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  return typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(0);
}

function rowSize(event: QueuedEvent): number {
  return event.bytes.byteLength + ROW_OVERHEAD;
}

/**
 * drop_oldest keeps the newest events of a batch that fit in `max` together:
 * those from `start` on, `need` bytes. Events too large on their own are
 * dropped wherever they are, and take no room.
 */
function newestThatFit(events: readonly QueuedEvent[], max: number): { start: number; need: number } {
  let need = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const size = rowSize(events[i]!);
    if (size > max) continue;
    if (need + size > max) return { start: i + 1, need };
    need += size;
  }
  return { start: 0, need };
}

/** The write-ahead log as found, before SQLite recovers it; a log we cannot read is SQLite's to report. */
function walBeforeOpen({ path, log }: SpoolOptions): WalScan | undefined {
  try {
    return scanWal(path);
  } catch (err) {
    log.warn({ path, err: errorText(err) }, "spool: cannot read the write-ahead log to check it");
    return undefined;
  }
}

const WAL_LOSS = "the transactions in it are lost: events spooled then are gone (uncounted), events removed then are replayed again (JetStream drops them as duplicates within its duplicate window)";

function logWal({ path, log }: SpoolOptions, wal: WalScan): void {
  const fields = { path, walBytes: wal.bytes, recoveredFrames: wal.recovered };
  if (wal.headerDamaged) log.error(fields, `spool write-ahead log header damaged: SQLite ignores the whole log; ${WAL_LOSS}`);
  else if (wal.ignored > 0) {
    log.error({ ...fields, damagedFrame: wal.damagedFrame, ignoredFrames: wal.ignored }, `spool write-ahead log damaged at frame ${wal.damagedFrame}: SQLite ignores it and the ${wal.ignored} frame(s) after it; ${WAL_LOSS}`);
  } else log.info(fields, `spool: write-ahead log left by an unclean stop, ${wal.recovered} frame(s) recovered`);
}

function fileSize(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
}
