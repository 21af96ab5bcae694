// Row checksums, the migration of a spool without them, and quick_check on open.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { events, openSpool, queued, rowBytes, spoolPath, tempDir } from "./fixtures.ts";

/** A logger whose lines land in `lines`, parsed. */
function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  return { log: pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) }), lines };
}

/** Changes row `seq` behind the spool's back, as damage on disk would. */
function tamper(path: string, sql: string, ...params: Array<string | number | Uint8Array>): void {
  const db = new Database(path);
  db.query(sql).run(...params);
  db.close();
}

describe("row checksums", () => {
  test("rows whose payload, id, collector or payload type changed on disk are never returned: deleted, handed to takeDamaged once, and no longer counted", () => {
    const path = spoolPath();
    const writer = openSpool(path);
    writer.append(events("a", 6, 200));
    writer.close();
    tamper(path, "UPDATE spool SET data = ? WHERE id = 'a-1'", new Uint8Array(200).fill(7));
    tamper(path, "UPDATE spool SET id = 'a-X' WHERE id = 'a-2'");
    tamper(path, "UPDATE spool SET collector = 'other' WHERE id = 'a-3'");
    tamper(path, "UPDATE spool SET data = CAST(data AS TEXT) WHERE id = 'a-4'");

    const spool = openSpool(path);
    expect(spool.depth).toBe(6);
    const rows = spool.peek(10);
    expect(rows.map((r) => r.id)).toEqual(["a-0", "a-5"]);
    expect(rows.map(queued)).toEqual([events("a", 6, 200)[0]!, events("a", 6, 200)[5]!]);
    const damaged = spool.takeDamaged();
    expect(damaged.map((r) => r.id)).toEqual(["a-1", "a-X", "a-3", "a-4"]);
    for (const row of damaged) expect(row.bytes).toBeInstanceOf(Uint8Array);
    expect(spool.takeDamaged()).toEqual([]);
    expect(spool.stats()).toMatchObject({ depth: 2, bytes: rowBytes(200, 2) });
    expect(spool.peek(10).map((r) => r.id)).toEqual(["a-0", "a-5"]);
    expect(spool.takeDamaged()).toEqual([]);
  });

  test("an intact spool loses nothing to the check: every row comes back after a reopen", () => {
    const path = spoolPath();
    const written = [...events("a", 50, 1000), ...events("b", 3, 0)];
    const writer = openSpool(path);
    writer.append(written);
    writer.close();
    const spool = openSpool(path);
    expect(spool.peek(100).map(queued)).toEqual(written);
    expect(spool.takeDamaged()).toEqual([]);
  });
});

describe("a spool of the previous layout (no crc column)", () => {
  test("is migrated on open, logged once; its rows replay unchecked, new rows are checked", () => {
    const path = spoolPath();
    const old = new Database(path);
    old.run("PRAGMA page_size = 32768");
    old.run("PRAGMA auto_vacuum = INCREMENTAL");
    old.run("PRAGMA journal_mode = WAL");
    old.run(`CREATE TABLE spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  subject TEXT NOT NULL,
  id TEXT NOT NULL,
  collector TEXT NOT NULL,
  data BLOB NOT NULL,
  spooled_at INTEGER NOT NULL
)`);
    old.run("PRAGMA application_id = 1952542825");
    old.run("PRAGMA user_version = 1");
    const insert = old.query("INSERT INTO spool (subject, id, collector, data, spooled_at) VALUES (?, ?, ?, ?, ?)");
    const legacy = events("old", 3, 150);
    for (const e of legacy) insert.run(e.subject, e.id, e.collector, e.bytes, Date.now());
    old.close();

    const first = capturingLogger();
    const spool = openSpool(path, { log: first.log });
    expect(first.lines.filter((l) => l.msg.includes("migrated"))).toHaveLength(1);
    expect(first.lines.find((l) => l.msg.includes("migrated"))).toMatchObject({ depth: 3 });
    spool.append(events("new", 2, 150));
    expect(spool.peek(10).map(queued)).toEqual([...legacy, ...events("new", 2, 150)]);
    spool.close();

    const db = new Database(path, { readonly: true });
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 3 });
    expect(db.query("SELECT id, crc IS NULL AS unchecked FROM spool ORDER BY seq").all()).toEqual([
      { id: "old-0", unchecked: 1 },
      { id: "old-1", unchecked: 1 },
      { id: "old-2", unchecked: 1 },
      { id: "new-0", unchecked: 0 },
      { id: "new-1", unchecked: 0 },
    ]);
    db.close();
    tamper(path, "UPDATE spool SET data = ? WHERE id = 'new-1'", new Uint8Array(150));

    const second = capturingLogger();
    const reopened = openSpool(path, { log: second.log });
    expect(second.lines.some((l) => l.msg.includes("migrated"))).toBe(false);
    expect(reopened.peek(10).map((r) => r.id)).toEqual(["old-0", "old-1", "old-2", "new-0"]);
    expect(reopened.takeDamaged().map((r) => r.id)).toEqual(["new-1"]);
  });
});

describe("subject suffixes (a collector that routes by sub-subject, like ingest)", () => {
  test("are kept with the row and covered by its checksum", () => {
    const path = spoolPath();
    const writer = openSpool(path);
    const routed = events("s", 3, 120).map((e, i) => ({ ...e, subject: `tapio.events.ingest.app${i}`, collector: "ingest", subjectSuffix: `app${i}` }));
    writer.append([...routed, ...events("plain", 1, 120)]);
    writer.close();
    tamper(path, "UPDATE spool SET subject_suffix = 'other' WHERE id = 's-1'");
    const spool = openSpool(path);
    expect(spool.peek(10).map((r) => [r.id, r.subjectSuffix])).toEqual([["s-0", "app0"], ["s-2", "app2"], ["plain-0", null]]);
    expect(spool.takeDamaged().map((r) => r.id)).toEqual(["s-1"]);
  });

  test("the drainer's skip list names a collector, or a collector and its suffix", () => {
    const spool = openSpool(spoolPath());
    const routed = (id: string, suffix: string) => ({ ...events(id, 1, 50)[0]!, collector: "ingest", subjectSuffix: suffix });
    spool.append([routed("a", "app"), routed("b", "web"), ...events("k", 1, 50)]);
    expect(spool.peek(10, new Set(["ingest.app"])).map((r) => r.id)).toEqual(["b-0", "k-0"]);
    expect(spool.peek(10, new Set(["kubelet", "ingest.web"])).map((r) => r.id)).toEqual(["a-0"]);
  });

  test("a spool of layout 2 (no subject_suffix column) is migrated on open; its rows keep their checksums", () => {
    const path = spoolPath();
    openSpool(path).close();
    const legacy = events("old", 3, 150);
    // Layout 2 as it was: the same table without the last column.
    const db = new Database(path);
    db.run("ALTER TABLE spool DROP COLUMN subject_suffix");
    db.run("PRAGMA user_version = 2");
    const insert = db.query("INSERT INTO spool (subject, id, collector, data, spooled_at, crc) VALUES (?, ?, ?, ?, ?, ?)");
    for (const e of legacy) insert.run(e.subject, e.id, e.collector, e.bytes, Date.now(), Bun.hash.crc32(e.bytes, Bun.hash.crc32(e.id, Bun.hash.crc32(e.collector))));
    db.close();
    const spool = openSpool(path);
    expect(spool.peek(10).map(queued)).toEqual(legacy);
    expect(spool.takeDamaged()).toEqual([]);
    spool.close();
    const after = new Database(path, { readonly: true });
    expect(after.query("PRAGMA user_version").get()).toEqual({ user_version: 3 });
    after.close();
  });
});

describe("quick_check on open", () => {
  test("logs ok on a sound file, and the problems (as an error) on a damaged one, which still opens", () => {
    const path = spoolPath();
    const sound = capturingLogger();
    const spool = openSpool(path, { log: sound.log });
    expect(sound.lines.find((l) => l.msg === "spool quick_check: ok")).toMatchObject({ level: 30, path });
    spool.append(events("a", 200, 1000));
    spool.remove(spool.peek(100));
    spool.close();

    // The header's free-page count (offset 36) now disagrees with the free list.
    const file = readFileSync(path);
    file.writeUInt32BE(file.readUInt32BE(36) + 3, 36);
    writeFileSync(path, file);

    const damaged = capturingLogger();
    const reopened = openSpool(path, { log: damaged.log });
    const line = damaged.lines.find((l) => l.msg.startsWith("spool quick_check found"))!;
    expect(line).toMatchObject({ level: 50, path, problems: 1 });
    expect(line.first[0]).toMatch(/Freelist: size is \d+ but should be \d+/);
    expect(reopened.peek(1000)).toHaveLength(100);
  });
});

describe("a write-ahead log left by an unclean stop", () => {
  const PAGE = 32768;
  const FRAME = 24 + PAGE;

  /** A copy of the spool files as a SIGKILL leaves them: five committed appends still only in the WAL. */
  function uncleanCopy(): string {
    const path = spoolPath();
    const spool = openSpool(path);
    for (let i = 0; i < 5; i++) spool.append(events(`t${i}`, 4, 500));
    const copy = join(tempDir(), "spool.db");
    copyFileSync(path, copy);
    copyFileSync(`${path}-wal`, `${copy}-wal`);
    return copy;
  }

  test("an intact log is recovered, and the recovery logged", () => {
    const copy = uncleanCopy();
    const { log, lines } = capturingLogger();
    const spool = openSpool(copy, { log });
    expect(spool.depth).toBe(20);
    const line = lines.find((l) => l.msg.startsWith("spool: write-ahead log left by an unclean stop"))!;
    expect(line).toMatchObject({ level: 30 });
    expect(line.recoveredFrames).toBeGreaterThanOrEqual(5);
    expect(lines.some((l) => l.level >= 50)).toBe(false);
  });

  test("a frame damaged in the middle: SQLite silently drops it and every later transaction; the agent logs where and how many, as an error", () => {
    const copy = uncleanCopy();
    const wal = readFileSync(`${copy}-wal`);
    const frames = (wal.length - 32) / FRAME;
    // A commit frame records the database size (its header's second word). The
    // first commit creates the table, the second is the first append.
    const commits = Array.from({ length: frames }, (_, i) => i + 1).filter((n) => wal.readUInt32BE(32 + (n - 1) * FRAME + 4) !== 0);
    expect(commits).toHaveLength(6);
    const firstCommit = commits[1]!;
    // a byte in the page of the frame after it
    const at = 32 + firstCommit * FRAME + 24 + 1000;
    wal[at] = wal[at]! ^ 0xff;
    writeFileSync(`${copy}-wal`, wal);

    const { log, lines } = capturingLogger();
    const spool = openSpool(copy, { log });
    const line = lines.find((l) => l.msg.startsWith(`spool write-ahead log damaged at frame ${firstCommit + 1}:`))!;
    expect(line).toMatchObject({ level: 50, damagedFrame: firstCommit + 1, ignoredFrames: frames - firstCommit - 1, recoveredFrames: firstCommit });
    expect(line.msg).toContain("events spooled then are gone");
    // what SQLite kept: the first append, as the line says
    expect(spool.peek(100).map((r) => r.id)).toEqual(events("t0", 4, 500).map((e) => e.id));
  });

  test("a damaged header: the whole log is ignored, logged as an error", () => {
    const copy = uncleanCopy();
    const wal = readFileSync(`${copy}-wal`);
    wal[20] = wal[20]! ^ 0xff;
    writeFileSync(`${copy}-wal`, wal);
    const { log, lines } = capturingLogger();
    const spool = openSpool(copy, { log });
    expect(lines.find((l) => l.msg.startsWith("spool write-ahead log header damaged"))).toMatchObject({ level: 50 });
    expect(spool.depth).toBe(0);
  });

  test("a clean close leaves no log, and nothing about one is logged", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    spool.append(events("a", 3));
    spool.close();
    const { log, lines } = capturingLogger();
    expect(openSpool(path, { log }).depth).toBe(3);
    expect(lines.some((l) => l.msg.includes("write-ahead log"))).toBe(false);
  });
});

test("a migrated row without a checksum whose payload no longer reads as bytes is damaged too", () => {
  const path = spoolPath();
  const writer = openSpool(path);
  writer.append(events("a", 3, 50));
  writer.close();
  tamper(path, "UPDATE spool SET crc = NULL");
  tamper(path, "UPDATE spool SET data = 'text now' WHERE id = 'a-1'");
  const spool = openSpool(path);
  expect(spool.peek(10).map((r) => r.id)).toEqual(["a-0", "a-2"]);
  expect(spool.takeDamaged().map((r) => r.id)).toEqual(["a-1"]);
  expect(spool.stats()).toMatchObject({ depth: 2, bytes: rowBytes(50, 2) });
});

test("drop_oldest evicting a row whose payload no longer reads as bytes keeps the byte count a number", () => {
  const path = spoolPath();
  const writer = openSpool(path);
  writer.append(events("a", 3, 50));
  writer.close();
  tamper(path, "UPDATE spool SET data = 'text now' WHERE id = 'a-0'");
  const spool = openSpool(path, { maxBytes: rowBytes(50, 3), whenFull: "drop_oldest" });
  const { dropped } = spool.append(events("b", 1, 50));
  expect(dropped.map((d) => [d.event.id, d.reason])).toEqual([["a-0", "spool_full_oldest"]]);
  expect(Number.isFinite(spool.stats().bytes)).toBe(true);
  expect(spool.stats().depth).toBe(3);
});
