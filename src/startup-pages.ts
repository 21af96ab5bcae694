// Start-up touches far more of the executable than an idle agent ever runs
// again: Bun's runtime code for loading, parsing and first-compiling every
// module, and the bundle's bytecode of code that only runs once. Those pages
// stay mapped, and counted in the agent's RSS, until memory pressure makes
// the kernel reclaim them (measured: 37 MiB of the idle agent's 56 MiB RSS
// were pages of the executable, 11 MiB in bare Bun). Once the agent is up,
// dropStartupPages() unmaps the executable's clean file-backed pages with
// madvise(MADV_DONTNEED): they stay in the page cache, and what the agent
// still runs faults back in as it runs (a minor fault, no disk read while the
// page cache holds the file). What is dropped: the read-only mappings (code,
// constants; in the one made read-only after relocation, only the pages the
// kernel still reports as the file's, /proc/self/pagemap), and in the
// writable one only the bundle (Bun's `.bun` section, which nothing writes):
// a page the process wrote to is a private copy, and DONTNEED would replace it
// with the file's bytes; a writable page could be written between the check
// and the advice.
import { closeSync, openSync, readFileSync, readSync, realpathSync } from "node:fs";

/** When the agent drops them: start-up is over by then (the config read, NATS connected, every collector's first round run). */
export const DROP_STARTUP_PAGES_AFTER_MS = 10_000;

const MADV_DONTNEED = 4;
/** pagemap: bit 63 page present, bit 61 a file page (or shared anonymous); a private copy is anonymous */
const PRESENT = 1n << 63n;
const FILE_PAGE = 1n << 61n;

/** RssFile of /proc/self/status before and after, bytes */
export type DropResult = { before: number; after: number } | { error: string };

/** The file-backed part of this process's RSS, bytes. */
function rssFile(): number {
  const kib = /^RssFile:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  return kib === undefined ? NaN : Number(kib) * 1024;
}

interface Mapping {
  start: number;
  end: number;
  writable: boolean;
  /** where in the file it starts */
  offset: number;
  pageSize: number;
  /** KiB of private (anonymous) pages in it: 0 means every resident page is the file's */
  anonymousKiB: number;
}

/** The executable's mappings, from /proc/self/smaps (readable in every container). */
function executableMappings(exe: string): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      current =
        header[5] === exe
          ? { start: parseInt(header[1]!, 16), end: parseInt(header[2]!, 16), writable: header[3]![1] === "w", offset: parseInt(header[4]!, 16), pageSize: 4096, anonymousKiB: 0 }
          : undefined;
      if (current) out.push(current);
      continue;
    }
    if (!current) continue;
    if (line.startsWith("KernelPageSize:")) current.pageSize = parseInt(line.slice(15), 10) * 1024;
    else if (line.startsWith("Anonymous:")) current.anonymousKiB = parseInt(line.slice(10), 10);
  }
  return out;
}

/** [file offset, size] of the ELF section `name` (64-bit little-endian ELF, as on x64 and arm64), undefined when there is none. */
export function elfSection(file: string, name: string): [number, number] | undefined {
  const fd = openSync(file, "r");
  try {
    const read = (length: number, position: number) => {
      const buf = Buffer.alloc(length);
      return readSync(fd, buf, 0, length, position) === length ? buf : undefined;
    };
    const head = read(64, 0);
    if (!head || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return undefined;
    const shoff = Number(head.readBigUInt64LE(0x28));
    const shentsize = head.readUInt16LE(0x3a);
    const shnum = head.readUInt16LE(0x3c);
    const shstrndx = head.readUInt16LE(0x3e);
    const table = shnum > 0 && shentsize >= 64 ? read(shnum * shentsize, shoff) : undefined;
    if (!table || shstrndx >= shnum) return undefined;
    const at = (i: number, field: number) => Number(table.readBigUInt64LE(i * shentsize + field));
    const names = read(at(shstrndx, 0x20), at(shstrndx, 0x18));
    if (!names) return undefined;
    for (let i = 0; i < shnum; i++) {
      const nameAt = table.readUInt32LE(i * shentsize);
      if (names.toString("latin1", nameAt, names.indexOf(0, nameAt)) === name) return [at(i, 0x18), at(i, 0x20)];
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** [start, length] runs of resident file pages of a mapping, from /proc/self/pagemap. */
function filePageRuns(pagemap: number, m: Mapping, from = m.start, to = m.end): [number, number][] {
  const pages = (to - from) / m.pageSize;
  const entries = new BigUint64Array(pages);
  const bytes = new Uint8Array(entries.buffer);
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(pagemap, bytes, done, bytes.length - done, (from / m.pageSize) * 8 + done);
    if (n <= 0) break;
    done += n;
  }
  const runs: [number, number][] = [];
  let runStart = -1;
  for (let i = 0; i <= pages; i++) {
    const file = i < pages && i * 8 < done && (entries[i]! & (PRESENT | FILE_PAGE)) === (PRESENT | FILE_PAGE);
    if (file && runStart < 0) runStart = i;
    else if (!file && runStart >= 0) {
      runs.push([from + runStart * m.pageSize, (i - runStart) * m.pageSize]);
      runStart = -1;
    }
  }
  return runs;
}

type Madvise = (address: bigint, length: bigint, advice: number) => number;

async function loadMadvise(): Promise<Madvise | string> {
  const [{ FFIType }, { openLibc }] = await Promise.all([import("bun:ffi"), import("./libc.ts")]);
  const libc = openLibc({ madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
  if (typeof libc === "string") return `no libc for madvise (${libc})`;
  return (address, length, advice) => libc.madvise(address, length, advice);
}

/**
 * Unmaps the executable's resident pages that are the file's own (see the
 * top of this file); returns the file-backed RSS before and after, or why
 * nothing was dropped.
 * Never throws: at worst the agent keeps the pages it had.
 */
export async function dropStartupPages(): Promise<DropResult> {
  if (process.platform !== "linux") return { error: `not Linux (${process.platform})` };
  try {
    const madvise = await loadMadvise();
    if (typeof madvise === "string") return { error: madvise };
    const exe = realpathSync("/proc/self/exe");
    const mappings = executableMappings(exe);
    if (mappings.length === 0) return { error: `no mapping of ${exe} in /proc/self/smaps` };
    const bundle = elfSection(exe, ".bun");
    const before = rssFile();
    let pagemap: number | undefined;
    try {
      for (const m of mappings) {
        let from = m.start;
        let to = m.end;
        if (m.writable) {
          // Only the bundle, whole pages of it.
          if (!bundle) continue;
          from = Math.max(from, Math.ceil((m.start + bundle[0] - m.offset) / m.pageSize) * m.pageSize);
          to = Math.min(to, Math.floor((m.start + bundle[0] + bundle[1] - m.offset) / m.pageSize) * m.pageSize);
          if (from >= to) continue;
        }
        // A read-only mapping with no private copy holds only file pages: one call for all of it.
        const runs = !m.writable && m.anonymousKiB === 0 ? [[from, to - from] as [number, number]] : filePageRuns((pagemap ??= openSync("/proc/self/pagemap", "r")), m, from, to);
        for (const [start, length] of runs) madvise(BigInt(start), BigInt(length), MADV_DONTNEED);
      }
    } finally {
      if (pagemap !== undefined) closeSync(pagemap);
    }
    return { before, after: rssFile() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
