// The watch stream: newline-delimited JSON, one watch event per line, that
// arrives in chunks cut anywhere (inside a line, inside a UTF-8 character).
import { obj, parseJson, str, type Json } from "../common/json.ts";

/**
 * Splits a byte stream into lines, across chunk boundaries. A line longer than
 * `maxLineChars` (a server or proxy gone wrong) is dropped and reported rather
 * than buffered without bound.
 */
export class LineSplitter {
  readonly #decoder = new TextDecoder();
  readonly #maxLineChars: number;
  #partial = "";
  /** inside a line that was too long: skip up to its end */
  #skipping = false;

  constructor(maxLineChars: number) {
    this.#maxLineChars = maxLineChars;
  }

  /** Calls `line` for each complete, non-blank line the chunk finishes; `tooLong` for each dropped one. */
  push(chunk: Uint8Array, line: (text: string) => void, tooLong: (chars: number) => void): void {
    const text = this.#decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl !== -1; nl = text.indexOf("\n", start)) {
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      const full = this.#partial === "" ? piece : this.#partial + piece;
      this.#partial = "";
      if (full.trim() !== "") line(full);
    }
    if (this.#skipping) return;
    this.#partial += text.slice(start);
    if (this.#partial.length > this.#maxLineChars) {
      tooLong(this.#partial.length);
      this.#partial = "";
      this.#skipping = true;
    }
  }

  /** The stream ended: what is left of an unfinished last line ("" if none). */
  end(): string {
    const rest = this.#skipping ? "" : this.#partial + this.#decoder.decode();
    this.#partial = "";
    this.#skipping = false;
    return rest.trim();
  }
}

export type WatchType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
const WATCH_TYPES: ReadonlySet<string> = new Set<WatchType>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

export interface WatchEvent {
  readonly type: WatchType;
  readonly object: Json;
}

/** One line of a watch stream, or why it is not a watch event. */
export function parseWatchLine(line: string): WatchEvent | { readonly error: string } {
  const parsed = parseJson(line);
  if (!parsed.ok) return { error: `not JSON: ${parsed.detail}` };
  const event = obj(parsed.value);
  const type = str(event?.type);
  const object = obj(event?.object);
  if (!type || !WATCH_TYPES.has(type)) return { error: `not a watch event: type ${JSON.stringify(event?.type)}` };
  if (!object) return { error: `${type} watch event without an object` };
  return { type: type as WatchType, object };
}

/** A Status saying the resourceVersion is too old (410 Gone / Expired): list again. */
export function isGone(status: Json): boolean {
  return status.code === 410 || status.reason === "Expired" || status.reason === "Gone";
}
