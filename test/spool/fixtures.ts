// Shared pieces of the spool tests: spools in temp dirs that are closed and
// removed after each test, generated events, and child processes (a script
// written to the temp dir that imports src/spool by absolute path), SIGKILLed
// after the test if still running.
import { afterEach } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { QueuedEvent } from "../../src/event/event.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { ROW_OVERHEAD, Spool, type SpoolOptions } from "../../src/spool/spool.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../helpers/cleanup.ts";

const SPOOL_MODULE = resolve(import.meta.dir, "../../src/spool/spool.ts");
const LOG_MODULE = resolve(import.meta.dir, "../helpers/silent-logger.ts");

const spools: Spool[] = [];
const dirs: string[] = [];
const children: Subprocess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill("SIGKILL");
    await child.exited;
    spare(child.pid);
  }
  for (const spool of spools.splice(0)) spool.close();
  for (const dir of dirs.splice(0)) removeTempDir(dir);
});

export function tempDir(): string {
  const dir = makeTempDir("spool");
  dirs.push(dir);
  return dir;
}

/** A spool file path in a fresh temp dir. */
export function spoolPath(): string {
  return join(tempDir(), "spool.db");
}

/** Opens a spool that is closed after the test (closing twice is harmless). */
export function openSpool(path: string, options: Partial<Omit<SpoolOptions, "path">> = {}): Spool {
  const spool = Spool.open({ path, maxBytes: 1 << 30, whenFull: "block", log: silentLogger(), ...options });
  spools.push(spool);
  return spool;
}

/** An event with `size` payload bytes derived from its id, so a mix-up shows. */
export function event(id: string, size = 100, subject = "tapio.events.kubelet", collector = "kubelet"): QueuedEvent {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (id.charCodeAt(i % id.length) + i) & 0xff;
  return { subject, id, bytes, collector };
}

export function events(prefix: string, n: number, size = 100): QueuedEvent[] {
  return Array.from({ length: n }, (_, i) => event(`${prefix}-${i}`, size));
}

/** The byte count the spool charges for an event of `size` payload bytes. */
export function rowBytes(size: number, n = 1): number {
  return n * (size + ROW_OVERHEAD);
}

/** The fields a QueuedEvent is made of, for comparing spooled rows with what went in. */
export function queued(e: QueuedEvent): QueuedEvent {
  return { subject: e.subject, id: e.id, bytes: e.bytes, collector: e.collector };
}

/**
 * Runs a command as nobody (uid and gid 65534, no groups): what root may do is no test of a
 * permission. It keeps CAP_DAC_READ_SEARCH, so it can read the repository and Bun wherever
 * they were cloned (a private folder included), but writes only where nobody may.
 */
export const AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"];

/**
 * Runs `source` with bun, `Spool` and `silentLogger` imported, the spool path as argv[2]; killed after the test.
 * `command` goes before bun, e.g. AS_NOBODY.
 */
export function spawnScript(dir: string, path: string, source: string, command: string[] = []): Subprocess<"ignore", "pipe", "pipe"> {
  const script = join(dir, `child-${children.length}.ts`);
  const imports = [
    `import { writeSync } from "node:fs";`,
    `import { Spool } from ${JSON.stringify(SPOOL_MODULE)};`,
    `import { silentLogger } from ${JSON.stringify(LOG_MODULE)};`,
  ];
  writeFileSync(script, `${imports.join("\n")}\n${source}`);
  const child = Bun.spawn([...command, process.execPath, script, path], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  killAtExit(child.pid);
  children.push(child);
  return child;
}

