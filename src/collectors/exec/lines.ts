// A program's output cut into lines at the byte level, read only as fast as
// the caller takes lines: the next chunk is read when the caller asks for the
// next line, so a caller that waits (a full queue) leaves the pipe to fill and
// the program to block. A line longer than the limit is never kept whole:
// its first bytes are kept for the message, the rest is read and dropped up
// to its newline.

/** How much of a line a message quotes. */
export const EXCERPT_BYTES = 200;

const NEWLINE = 0x0a;
const EMPTY = new Uint8Array(0);

export type Line =
  /** `bytes` is valid until the next line is asked for (it may be a view of the read chunk) */
  | { readonly number: number; readonly bytes: Uint8Array; readonly tooLong?: undefined }
  /** over the limit: `bytes` in all, of which `head` are the first EXCERPT_BYTES */
  | { readonly number: number; readonly tooLong: { readonly bytes: number; readonly head: Uint8Array } };

/** What lines are read from: a stream's reader. */
export interface ByteReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
}

/** The lines of `reader` (1-based numbers), the last one also without its newline. */
export async function* readLines(reader: ByteReader, maxBytes: number): AsyncGenerator<Line> {
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  /** inside a line already over the limit: its head and its length so far */
  let skipping: { head: Uint8Array; bytes: number } | undefined;
  let number = 0;

  const take = (piece: Uint8Array): void => {
    if (skipping) {
      if (skipping.head.length < EXCERPT_BYTES) skipping.head = headOf([skipping.head, piece]);
      skipping.bytes += piece.length;
    } else if (partBytes + piece.length > maxBytes) {
      skipping = { head: headOf([...parts, piece]), bytes: partBytes + piece.length };
      parts = [];
      partBytes = 0;
    } else if (piece.length > 0) {
      // Copied: a piece of a line that goes on in the next chunk must not pin the whole chunk.
      parts.push(piece.slice());
      partBytes += piece.length;
    }
  };

  /** The line ended at a newline (or the end of output): what it was. */
  const finish = (last: Uint8Array): Line => {
    number++;
    if (skipping) {
      const line: Line = { number, tooLong: { head: headOf([skipping.head, last]), bytes: skipping.bytes + last.length } };
      skipping = undefined;
      return line;
    }
    if (partBytes === 0) return { number, bytes: last };
    const bytes = concat([...parts, last], partBytes + last.length);
    parts = [];
    partBytes = 0;
    return { number, bytes };
  };

  for (;;) {
    const { done, value: chunk } = await reader.read();
    if (done || !chunk) break;
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      if (newline === -1) {
        take(chunk.subarray(start));
        break;
      }
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      // The last piece of a line may still take it over the limit.
      if (!skipping && partBytes + piece.length > maxBytes) {
        take(piece);
        yield finish(EMPTY);
      } else {
        yield finish(piece);
      }
    }
  }
  if (partBytes > 0 || skipping) yield finish(EMPTY);
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function headOf(parts: Uint8Array[]): Uint8Array {
  const head: Uint8Array[] = [];
  let bytes = 0;
  for (const part of parts) {
    if (bytes >= EXCERPT_BYTES) break;
    const piece = part.subarray(0, EXCERPT_BYTES - bytes);
    head.push(piece);
    bytes += piece.length;
  }
  return concat(head, bytes);
}

const lossy = new TextDecoder();

/** The first EXCERPT_BYTES of a line as JSON text, for a message ("…" when cut). */
export function excerpt(bytes: Uint8Array, total = bytes.length): string {
  return `${JSON.stringify(lossy.decode(bytes.subarray(0, EXCERPT_BYTES)))}${total > EXCERPT_BYTES ? "…" : ""}`;
}
