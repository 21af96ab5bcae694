// The kernel log as the benchmark sees it: lines written to /dev/kmsg, and
// the records read back with the kernel's own timestamp (µs since boot, the
// clock printk stamps records with). That clock is put on the wall clock by
// a calibration record written just before each measurement: the write is
// bracketed by two wall-clock readings, so the offset is known to within
// half the write's duration (a few µs); re-done every repetition, drift
// between the two clocks (NTP slewing the wall clock) stays out.
import { closeSync, openSync, writeSync } from "node:fs";
import { openKmsg, parseKmsgLine, type KmsgRecord, type KmsgSource } from "../../src/collectors/kernel/kmsg.ts";

const KMSG = "/dev/kmsg";
/** Records kept for looking back (an OOM report is ~80 records). */
const KEEP = 4000;

export const wallMs = (): number => performance.timeOrigin + performance.now();

export interface Calibration {
  /** wall ms = usec / 1000 + offsetMs */
  offsetMs: number;
  /** half the write's duration: how far the offset can be off */
  errorMs: number;
}

export class KmsgProbe {
  readonly #source: KmsgSource;
  #records: KmsgRecord[] = [];
  #calibrations = 0;

  constructor(readonly tag: string) {
    // From the end: only what is written from now on.
    this.#source = openKmsg(KMSG, true);
  }

  /**
   * Writes one record. Each write opens the device anew: the kernel
   * rate-limits writers per open file (printk_devkmsg=ratelimit, 10 per 5 s),
   * as `echo ... > /dev/kmsg` never meets.
   */
  write(level: number, text: string): { before: number; after: number } {
    const fd = openSync(KMSG, "w");
    try {
      const before = wallMs();
      writeSync(fd, `<${level}>${text}\n`);
      return { before, after: wallMs() };
    } finally {
      closeSync(fd);
    }
  }

  /** Reads what the kernel logged since the last call into the look-back buffer. */
  drain(): void {
    for (let read = this.#source.read(); read.kind !== "idle"; read = this.#source.read()) {
      if (read.kind !== "data") continue;
      const first = read.text.split("\n", 1)[0]!;
      try {
        this.#records.push(parseKmsgLine(first));
      } catch {
        // not a record (cannot happen on the device); nothing to measure
      }
    }
    if (this.#records.length > KEEP) this.#records = this.#records.slice(-KEEP);
  }

  /** The latest record whose message satisfies `match`, reading what is new first. */
  find(match: (message: string) => boolean): KmsgRecord | undefined {
    this.drain();
    for (let i = this.#records.length - 1; i >= 0; i--) if (match(this.#records[i]!.message)) return this.#records[i];
    return undefined;
  }

  /** A fresh offset between the record clock and the wall clock (a debug-level record). */
  calibrate(): Calibration {
    const text = `${this.tag} calibrate ${++this.#calibrations}`;
    const { before, after } = this.write(7, text);
    const record = this.find((m) => m === text);
    if (!record) throw new Error(`the calibration record "${text}" written to ${KMSG} was not read back`);
    return { offsetMs: (before + after) / 2 - record.usec / 1000, errorMs: (after - before) / 2 };
  }

  close(): void {
    this.#source.close();
  }
}

/** The record's time on the wall clock. */
export function recordWallMs(record: KmsgRecord, c: Calibration): number {
  return record.usec / 1000 + c.offsetMs;
}
