// Opening: the lock that keeps a second agent out, and files that are not a usable spool.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import pino, { type Logger } from "pino";
import { SpoolError } from "../../src/spool/spool.ts";
import { AS_NOBODY, events, openSpool, spawnScript, spoolPath, tempDir } from "./fixtures.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

const HOLDER = `
const spool = Spool.open({ path: process.argv[2], maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
spool.append([{ subject: "tapio.events.x", id: "held", bytes: new Uint8Array([1, 2, 3]), collector: "x" }]);
globalThis.spool = spool; // a collected Database closes, and lets go of its lock
writeSync(1, "ready\\n");
setInterval(() => {}, 1 << 30);
`;

/** Opens the spool at argv[2] and says how that went: "opened" or the error's message. */
const OPEN_AND_SAY = `
try {
  Spool.open({ path: process.argv[2], maxBytes: 1 << 30, whenFull: "block", log: silentLogger() }).close();
  writeSync(1, "opened\\n");
} catch (err) {
  writeSync(1, \`\${(err as Error).message}\\n\`);
}
`;

function openError(path: string): SpoolError {
  try {
    openSpool(path);
  } catch (err) {
    expect(err).toBeInstanceOf(SpoolError);
    expect((err as SpoolError).path).toBe(path);
    expect((err as SpoolError).message).toContain(path);
    return err as SpoolError;
  }
  throw new Error(`opening ${path} succeeded`);
}

describe("lock", () => {
  test("a second opener in the same process fails while the first is open, and succeeds after close", () => {
    const path = spoolPath();
    const first = openSpool(path);
    first.append(events("a", 2));
    const started = Date.now();
    expect(openError(path).message).toBe(`spool ${path} is in use by another tapio-collectors process`);
    expect(Date.now() - started).toBeLessThan(2000);
    // the failed attempt left the holder working
    first.append(events("b", 1));
    first.close();
    expect(openSpool(path).stats().depth).toBe(3);
  });

  test("a reopened spool is locked as well", () => {
    const path = spoolPath();
    openSpool(path).close();
    openSpool(path);
    expect(openError(path).message).toContain("is in use by another tapio-collectors process");
  });

  test("another process holding the spool is named; once it is SIGKILLed the spool opens with its rows", async () => {
    const path = spoolPath();
    const holder = spawnScript(tempDir(), path, HOLDER);
    const out = collectLines(holder.stdout);
    await waitFor(() => out.lines.includes("ready"), "the holder to open the spool", 10_000);
    expect(openError(path).message).toBe(`spool ${path} is in use by another tapio-collectors process (pid ${holder.pid})`);

    holder.kill("SIGKILL");
    await holder.exited;
    const spool = openSpool(path);
    expect(spool.peek(10).map((r) => r.id)).toEqual(["held"]);
  });
});

test("a new spool is a WAL file with incremental auto-vacuum, marked as ours", () => {
  const path = spoolPath();
  openSpool(path).close();
  const db = new Database(path, { readonly: true });
  const pragma = (name: string) => Object.values(db.query(`PRAGMA ${name}`).get() as object)[0];
  expect([pragma("journal_mode"), pragma("auto_vacuum"), pragma("application_id"), pragma("user_version")]).toEqual(["wal", 2, 0x74617069, 3]);
  db.close();
});

/** A logger whose JSON lines are kept, for the tests that read what open() logged. */
function recordingLogger(): { log: Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  return { log: pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) }), lines };
}

/** Opens `path`, which must be corrupt: it is moved aside, logged with its size, and a fresh spool takes its place. */
function expectSetAside(path: string, cause: RegExp): void {
  const bytes = statSync(path).size;
  const { log, lines } = recordingLogger();
  const spool = openSpool(path, { log });
  const aside = readdirSync(dirname(path)).filter((f) => f.startsWith(`${basename(path)}.corrupt-`));
  expect(aside).toEqual([expect.stringMatching(/\.corrupt-\d{8}T\d{6}Z$/)]);
  const movedTo = join(dirname(path), aside[0]!);
  expect(statSync(movedTo).size).toBe(bytes);
  const said = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith(`spool ${path} is corrupt: moved aside`));
  expect(said).toMatchObject({ level: 50, path, moved_to: movedTo, bytes, err: expect.stringMatching(cause) });
  expect(said!.msg).toContain(`(${bytes} bytes)`);
  expect(spool.stats().depth).toBe(0);
  spool.append(events("fresh", 2));
  expect(spool.stats().depth).toBe(2);
}

describe("not a usable spool", () => {
  test("a file of random bytes: moved aside, a fresh spool opened", () => {
    const path = join(tempDir(), "random.db");
    writeFileSync(path, crypto.getRandomValues(new Uint8Array(8192)));
    expectSetAside(path, /is not a tapio-collectors spool \(not an SQLite database/);
  });

  test("a spool with garbage written over its start: moved aside", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    spool.append(events("a", 50, 1000));
    spool.close();
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.from("garbage ".repeat(64)), 0, 512, 0);
    closeSync(fd);
    expectSetAside(path, /not an SQLite database/);
  });

  test("an SQLite database of another program", () => {
    const path = join(tempDir(), "other.db");
    const db = new Database(path);
    db.run("CREATE TABLE spool (seq INTEGER PRIMARY KEY, data BLOB)");
    db.close();
    expect(openError(path).message).toMatch(/is not a tapio-collectors spool \(an SQLite database of another program\)/);
  });

  test("a spool of another layout version", () => {
    const path = spoolPath();
    openSpool(path).close();
    const db = new Database(path);
    db.run("PRAGMA user_version = 4");
    db.close();
    expect(openError(path).message).toMatch(/has layout version 4, this tapio-collectors reads version 3/);
  });

  test("a spool whose table has other columns", () => {
    const path = spoolPath();
    openSpool(path).close();
    const db = new Database(path);
    db.run("ALTER TABLE spool DROP COLUMN spooled_at");
    db.close();
    expect(openError(path).message).toMatch(/table "spool" has columns seq,subject,id,collector,data,crc,subject_suffix\)/);
  });

  test("a truncated spool: corrupt, moved aside", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    spool.append(events("a", 500, 1000));
    spool.close();
    truncateSync(path, Math.floor(statSync(path).size / 2));
    expectSetAside(path, /^spool .* is corrupt \(database disk image is malformed\)/);
  });

  test("an empty file becomes a spool", () => {
    const path = join(tempDir(), "empty.db");
    writeFileSync(path, "");
    const spool = openSpool(path);
    spool.append(events("a", 1));
    expect(spool.stats().depth).toBe(1);
  });
});

describe("unusable location", () => {
  test("a path under a regular file", () => {
    const file = join(tempDir(), "file");
    writeFileSync(file, "x");
    expect(openError(join(file, "spool", "spool.db")).message).toMatch(/^cannot create the directory of spool .*ENOTDIR/);
  });

  test("a path that is a directory", () => {
    const dir = join(tempDir(), "dir.db");
    mkdirSync(dir);
    expect(openError(dir).message).toMatch(/^cannot open spool .*dir\.db: unable to open database file/);
  });

  // Root may write anywhere: the open runs as nobody, which only root can arrange.
  test.skipIf(process.getuid?.() !== 0)("a corrupt spool in a directory the agent may not write: it cannot be moved aside, and says why", async () => {
    const parent = tempDir();
    const dir = join(parent, "ro");
    mkdirSync(dir);
    const path = join(dir, "spool.db");
    writeFileSync(path, "garbage ".repeat(512));
    chmodSync(path, 0o666);
    chmodSync(dir, 0o555);
    chmodSync(dirname(parent), 0o711);
    chmodSync(parent, 0o755);
    const child = spawnScript(parent, path, OPEN_AND_SAY, AS_NOBODY);
    const out = collectLines(child.stdout);
    const code = await child.exited;
    await out.ended;
    expect({ code, said: out.lines }).toEqual({ code: 0, said: [`spool ${path} is corrupt and cannot be moved aside: permission denied: uid 65534 may not write ${dir}`] });
    expect(readdirSync(dir)).toEqual(["spool.db"]);
  });

  test("a missing directory is created", () => {
    const path = join(tempDir(), "a", "b", "spool.db");
    openSpool(path).append(events("a", 1));
    expect(statSync(path).isFile()).toBe(true);
  });

  test("a read-only directory", async () => {
    const parent = tempDir();
    const dir = join(parent, "ro");
    mkdirSync(dir);
    chmodSync(dir, 0o555);
    // Root writes there anyway (CI runs as root), so the open runs as nobody, as the agent runs
    // unprivileged in its DaemonSet; nobody needs a way through the (private) temp dirs.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      chmodSync(dirname(parent), 0o711);
      chmodSync(parent, 0o755); // bun lists the directory of the script it runs
    }
    const child = spawnScript(parent, join(dir, "spool.db"), OPEN_AND_SAY, asRoot ? AS_NOBODY : []);
    const out = collectLines(child.stdout);
    const stderr = new Response(child.stderr).text();
    const code = await child.exited;
    await out.ended;
    expect({ code, said: out.lines, stderr: await stderr }).toEqual({ code: 0, said: [expect.stringMatching(asRoot ? /^cannot open spool .*spool\.db: .*\(permission denied: uid 65534 may not write .*ro\)$/ : /^cannot open spool .*spool\.db/)], stderr: "" });
  });
});
