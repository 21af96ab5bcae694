// Opening: the lock that keeps a second agent out, and files that are not a usable spool.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
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
  expect([pragma("journal_mode"), pragma("auto_vacuum"), pragma("application_id"), pragma("user_version")]).toEqual(["wal", 2, 0x74617069, 2]);
  db.close();
});

describe("not a usable spool", () => {
  test("a file of random bytes", () => {
    const path = join(tempDir(), "random.db");
    writeFileSync(path, crypto.getRandomValues(new Uint8Array(8192)));
    expect(openError(path).message).toMatch(/is not a tapio-collectors spool \(not an SQLite database.*move it aside/);
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
    db.run("PRAGMA user_version = 3");
    db.close();
    expect(openError(path).message).toMatch(/has layout version 3, this tapio-collectors reads version 2/);
  });

  test("a spool whose table has other columns", () => {
    const path = spoolPath();
    openSpool(path).close();
    const db = new Database(path);
    db.run("ALTER TABLE spool DROP COLUMN spooled_at");
    db.close();
    expect(openError(path).message).toMatch(/table "spool" has columns seq,subject,id,collector,data,crc\)/);
  });

  test("a truncated spool: corrupt, move it aside", () => {
    const path = spoolPath();
    const spool = openSpool(path);
    spool.append(events("a", 500, 1000));
    spool.close();
    truncateSync(path, Math.floor(statSync(path).size / 2));
    expect(openError(path).message).toBe(`spool ${path} is corrupt (database disk image is malformed): move the file aside and restart; the events in it are lost`);
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
    expect({ code, said: out.lines, stderr: await stderr }).toEqual({ code: 0, said: [expect.stringMatching(/^cannot open spool .*spool\.db/)], stderr: "" });
  });
});
