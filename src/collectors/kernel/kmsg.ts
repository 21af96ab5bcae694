// The kernel log as /dev/kmsg gives it (Documentation/ABI/testing/dev-kmsg):
// one record per read, `prio,seq,usec,flags[,...];message`, then optional
// continuation lines starting with a space (KEY=value context such as
// SUBSYSTEM= and DEVICE=). A regular file of such lines can stand in for the
// device, and is tailed: tests and recorded logs use that.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";

export interface KmsgRecord {
  /** syslog level: 0 (emerg) to 7 (debug) */
  level: number;
  facility: number;
  /** sequence number: consecutive unless records were overwritten before they were read */
  seq: number;
  /** µs since boot */
  usec: number;
  message: string;
}

const HEADER = /^(\d+),(\d+),(\d+),[^;]*;(.*)$/;

/**
 * The longest record the kernel writes (CONSOLE_EXT_LOG_MAX, 8 KiB): a longer
 * one is forged (a file standing in for the device) and refused, so that
 * every pattern runs on at most this much text.
 */
export const MAX_RECORD_BYTES = 8 * 1024;

/** Parses a record's first line; throws an Error on anything else. Continuation lines are not records. */
export function parseKmsgLine(line: string): KmsgRecord {
  // UTF-16 units never outnumber UTF-8 bytes: only a line short in units needs counting in bytes.
  if (line.length > MAX_RECORD_BYTES || Buffer.byteLength(line) > MAX_RECORD_BYTES) {
    throw new Error(`a record longer than the kernel's ${MAX_RECORD_BYTES} bytes: ${JSON.stringify(`${line.slice(0, 80)}…`)}`);
  }
  const m = HEADER.exec(line);
  if (!m) throw new Error(`not a kmsg record: ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)}`);
  const [prio, seq, usec] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(usec) || prio > 1023) throw new Error(`kmsg header out of range: ${line.slice(0, 40)}`);
  return { level: prio & 7, facility: prio >> 3, seq, usec, message: m[4]! };
}

/**
 * The record a line of the log starts, undefined for a continuation line
 * (` KEY=value` context such as SUBSYSTEM=, not message text) or an empty one;
 * throws an Error on a line that is none of these.
 */
export function recordOf(line: string): KmsgRecord | undefined {
  return line === "" || line.startsWith(" ") ? undefined : parseKmsgLine(line);
}

/**
 * Cuts text read in chunks into lines; a line cut at the end of a chunk waits
 * for the rest. A line that grows past MAX_RECORD_BYTES without its end is no
 * record: what came of it is handed on (for the parser to refuse, once) and
 * the rest of it, up to its newline, skipped rather than kept.
 */
export class LineSplitter {
  #partial = "";
  /** inside a line already handed on as too long */
  #skipping = false;

  push(chunk: string): string[] {
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop()!;
    if (this.#skipping && lines.length > 0) {
      lines.shift();
      this.#skipping = false;
    }
    if (this.#skipping) {
      this.#partial = "";
    } else if (this.#partial.length > MAX_RECORD_BYTES) {
      lines.push(this.#partial);
      this.#partial = "";
      this.#skipping = true;
    }
    return lines;
  }

  /** The last line if it had no newline (a truncated record, at the end of a one-off read). */
  flush(): string[] {
    const rest = this.#partial;
    this.#partial = "";
    this.#skipping = false;
    return rest === "" ? [] : [rest];
  }
}

export type KmsgRead = { kind: "data"; text: string } | { kind: "idle" } | { kind: "overrun" };

export interface KmsgSource {
  /** the live device: its sequence numbers and timestamps belong to this boot */
  readonly device: boolean;
  /**
   * Opened from the end: the sequence number of the last record skipped, -1
   * when the log was empty, undefined when it could not be told (a file
   * whose end is no record). A collector that saves it resumes after it.
   */
  readonly skippedThrough?: number;
  /** the device's fd (non-blocking), for a worker to wait on with poll(2) until a record is there */
  readonly fd?: number;
  /** What is new: text, nothing yet (idle), or news that records were overwritten before they were read (overrun). */
  read(): KmsgRead;
  close(): void;
}

/** Larger than any record (MAX_RECORD_BYTES); /dev/kmsg fails a read into a buffer too small for the record. */
const BUFFER_BYTES = 16 * 1024;
const IDLE: KmsgRead = { kind: "idle" };
/** The sequence number of a record's first line, from its header alone. */
const SEQ = /^\d+,(\d+),/;

/**
 * Opens the kernel log at `path`: the device, or a regular file to tail.
 * `fromEnd` skips what is there now (the history), like lseek(SEEK_END).
 */
export function openKmsg(path: string, fromEnd: boolean): KmsgSource {
  // Non-blocking: a read with nothing new returns EAGAIN at once instead of holding a thread.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (stat.isCharacterDevice()) return new DeviceSource(fd, fromEnd);
    if (stat.isFile()) return new FileSource(path, fd, fromEnd ? stat.size : 0, fromEnd ? lastSeqBefore(fd, stat.size) : undefined);
    throw new Error(`${path} is neither a character device nor a regular file`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

class DeviceSource implements KmsgSource {
  readonly device = true;
  readonly skippedThrough: number | undefined;
  readonly #buffer = Buffer.alloc(BUFFER_BYTES);

  constructor(
    readonly fd: number,
    fromEnd: boolean,
  ) {
    // lseek(SEEK_END) is what skipping means on /dev/kmsg, but neither Bun nor
    // Node offers lseek: reading the records there now and dropping them lands
    // at the same place, and tells the last one's sequence number.
    if (!fromEnd) return;
    let last: string | undefined;
    for (let read = this.read(); read.kind !== "idle"; read = this.read()) if (read.kind === "data") last = read.text;
    this.skippedThrough = last === undefined ? -1 : seqOf(last);
  }

  read(): KmsgRead {
    try {
      const n = readSync(this.fd, this.#buffer, 0, this.#buffer.length, null);
      return n === 0 ? IDLE : { kind: "data", text: this.#buffer.toString("utf8", 0, n) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") return IDLE;
      // The ring buffer overwrote records before we read them; the next read continues after the gap.
      if (code === "EPIPE") return { kind: "overrun" };
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

class FileSource implements KmsgSource {
  readonly device = false;
  readonly #buffer = Buffer.alloc(BUFFER_BYTES);
  // Streaming: a UTF-8 character can be cut between two reads.
  #decoder = new TextDecoder();

  /** not the source's fd for waiting: a file is always readable, so it is polled */
  #fd: number;

  constructor(
    readonly path: string,
    fd: number,
    private position: number,
    readonly skippedThrough: number | undefined,
  ) {
    this.#fd = fd;
  }

  read(): KmsgRead {
    const size = fstatSync(this.#fd).size;
    // Truncated: start over from its beginning.
    if (size < this.position) this.#restart(this.#fd);
    if (size === this.position) {
      // Rotated (a new file under the path) once this one is read to its end: follow the path.
      if (!this.#replaced()) return IDLE;
      this.#restart(openSync(this.path, constants.O_RDONLY));
      return this.read();
    }
    const n = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, this.position);
    this.position += n;
    return n === 0 ? IDLE : { kind: "data", text: this.#decoder.decode(this.#buffer.subarray(0, n), { stream: true }) };
  }

  #replaced(): boolean {
    try {
      return statSync(this.path).ino !== fstatSync(this.#fd).ino;
    } catch {
      return false; // gone for now: keep the file we have
    }
  }

  #restart(fd: number): void {
    if (fd !== this.#fd) closeSync(this.#fd);
    this.#fd = fd;
    this.position = 0;
    this.#decoder = new TextDecoder();
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function seqOf(line: string): number | undefined {
  const m = SEQ.exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * The sequence number of the last record of a file before `end`, read from
 * its last BUFFER_BYTES (more than any record); -1 for an empty file.
 */
function lastSeqBefore(fd: number, end: number): number | undefined {
  if (end === 0) return -1;
  const from = Math.max(0, end - BUFFER_BYTES);
  const buffer = Buffer.alloc(end - from);
  const n = readSync(fd, buffer, 0, buffer.length, from);
  const lines = buffer.toString("utf8", 0, n).split("\n");
  // A window that starts inside the file starts inside a line.
  const first = from === 0 ? 0 : 1;
  for (let i = lines.length - 1; i >= first; i--) {
    const seq = seqOf(lines[i]!);
    if (seq !== undefined) return seq;
  }
  return undefined;
}
