// What SQLite will make of a spool's write-ahead log, read before the spool
// is opened (opening recovers the log, after which the evidence is gone).
// SQLite replays frames in order while each carries the log's salt and a
// valid running checksum, and stops at the first that does not: that frame
// and every frame after it are ignored, silently. So a damaged frame in the
// middle loses every transaction committed after it. Layout and checksum:
// https://sqlite.org/fileformat.html#the_write_ahead_log
import { closeSync, openSync, readSync, statSync } from "node:fs";

const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** The magic number's low bit gives the byte order of the checksum words. */
const MAGIC_LITTLE_ENDIAN = 0x377f0682;
const MAGIC_BIG_ENDIAN = 0x377f0683;

export interface WalScan {
  /** bytes of the log file */
  bytes: number;
  /** frames SQLite will replay, up to the last complete transaction */
  recovered: number;
  /**
   * Frames of this log (its salt) that follow a frame failing its checksum:
   * SQLite ignores them (and the damaged one). 0 for a log that just ends,
   * torn or not, where the process stopped.
   */
  ignored: number;
  /** 1-based index of the first frame that failed its checksum, when `ignored` > 0 */
  damagedFrame?: number;
  /** the header itself fails its checksum: SQLite ignores the whole log */
  headerDamaged: boolean;
}

/** Reads `<path>-wal`; undefined when there is none (a clean stop) or it is empty. */
export function scanWal(path: string): WalScan | undefined {
  const walPath = `${path}-wal`;
  const size = statSync(walPath, { throwIfNoEntry: false })?.size ?? 0;
  if (size < HEADER_BYTES) return undefined;
  const fd = openSync(walPath, "r");
  try {
    const header = read(fd, 0, HEADER_BYTES);
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const magic = view.getUint32(0);
    if (magic !== MAGIC_LITTLE_ENDIAN && magic !== MAGIC_BIG_ENDIAN) return { bytes: size, recovered: 0, ignored: 0, headerDamaged: true };
    const littleEndian = magic === MAGIC_LITTLE_ENDIAN;
    const pageSize = view.getUint32(8);
    const salt1 = view.getUint32(16);
    const salt2 = view.getUint32(20);
    let sum = checksum(header.subarray(0, 24), [0, 0], littleEndian);
    if (sum[0] !== view.getUint32(24) || sum[1] !== view.getUint32(28)) return { bytes: size, recovered: 0, ignored: 0, headerDamaged: true };

    const frameBytes = FRAME_HEADER_BYTES + pageSize;
    const frames = Math.floor((size - HEADER_BYTES) / frameBytes);
    let valid = 0;
    let recovered = 0;
    let damagedFrame: number | undefined;
    let ignored = 0;
    for (let i = 0; i < frames; i++) {
      const frame = read(fd, HEADER_BYTES + i * frameBytes, frameBytes);
      const fv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
      const ours = fv.getUint32(8) === salt1 && fv.getUint32(12) === salt2;
      if (damagedFrame !== undefined) {
        if (ours) ignored++;
        continue;
      }
      if (!ours) break; // a frame of an earlier log, reused space: the log ends here
      const next = checksum(frame.subarray(FRAME_HEADER_BYTES), checksum(frame.subarray(0, 8), sum, littleEndian), littleEndian);
      if (next[0] !== fv.getUint32(16) || next[1] !== fv.getUint32(20)) {
        damagedFrame = i + 1;
        continue;
      }
      sum = next;
      valid = i + 1;
      // a commit frame records the database size; frames after the last one are an unfinished transaction
      if (fv.getUint32(4) !== 0) recovered = valid;
    }
    if (ignored === 0) damagedFrame = undefined;
    return { bytes: size, recovered, ignored, ...(damagedFrame !== undefined && { damagedFrame }), headerDamaged: false };
  } finally {
    closeSync(fd);
  }
}

function read(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  readSync(fd, buf, 0, length, position);
  return buf;
}

/** SQLite's WAL checksum: two running sums over 32-bit words, continued from `start`. */
function checksum(data: Uint8Array, start: readonly [number, number] | number[], littleEndian: boolean): [number, number] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let s0 = start[0]!;
  let s1 = start[1]!;
  for (let i = 0; i < data.byteLength; i += 8) {
    s0 = (s0 + view.getUint32(i, littleEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, littleEndian) + s0) >>> 0;
  }
  return [s0, s1];
}
