// Where encoded events live from the encoder to the publisher's ack: text
// encoded straight into shared chunks that are written once, front to back,
// and never reused. A view handed out stays valid (and keeps its chunk
// alive) for as long as anyone holds it, so nobody downstream copies bytes.

/** What ends each event in a chunk, so that events side by side are NDJSON. */
export const NEWLINE = 0x0a;

/**
 * 64 KiB by default: the allocator recycles chunks this size, where fresh
 * 1 MiB ones cost page faults on every first write (measured: a fifth of the
 * CPU of a core-mode run); the tail a chunk wastes stays small. nats.batch
 * asks for chunks as large as its messages (see `follows`).
 */
export const CHUNK_BYTES = 64 * 1024;

/**
 * An event is written in pieces (start, put..., end) so that its JSON never
 * exists as one string: joining the pieces first would allocate and copy
 * every event once more. Each event is followed by a newline outside its
 * view, so events written one after the other are already NDJSON in place.
 */
export class ByteArena {
  #chunk: Buffer = Buffer.alloc(0);
  #used = 0;
  /** where the event being written starts in #chunk */
  #start = 0;

  /** the size of the next chunks (the current one is used up first) */
  constructor(public chunkBytes = CHUNK_BYTES) {}

  start(): void {
    this.#start = this.#used;
  }

  put(text: string): void {
    const room = this.#chunk.byteLength - this.#used;
    // UTF-8 takes at most 3 bytes a UTF-16 unit: the exact size is counted only near the end of a chunk.
    if (text.length * 3 > room && (text.length > room || Buffer.byteLength(text) > room)) this.#moveOn(text.length * 3);
    this.#used += this.#chunk.write(text, this.#used);
  }

  /** The bytes put since start(): a view that no later write overwrites. */
  end(): Uint8Array {
    this.put("\n");
    return this.#chunk.subarray(this.#start, this.#used - 1);
  }

  /**
   * Takes back `view` when it is the last event written and nobody holds it
   * (refused or dropped right after encoding), so dropped events do not keep
   * chunks alive between the queued ones.
   */
  discard(view: Uint8Array): void {
    if (view.buffer === this.#chunk.buffer && view.byteOffset + view.byteLength + 1 === this.#used) this.#used = view.byteOffset;
  }

  /** The event so far moves to a new chunk with room for `more` bytes, and goes on there. */
  #moveOn(more: number): void {
    const sofar = this.#used - this.#start;
    // Not zero-filled: only bytes written here are ever handed out.
    const next = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, sofar + more + 1));
    next.set(this.#chunk.subarray(this.#start, this.#used));
    this.#chunk = next;
    this.#start = 0;
    this.#used = sofar;
  }
}

/**
 * True when `next` starts right after `prev` and its newline in the same
 * chunk, so the two with their newlines are one NDJSON range. `chunk` is a
 * view of prev's whole buffer.
 */
export function follows(chunk: Uint8Array, prev: Uint8Array, next: Uint8Array): boolean {
  const end = prev.byteOffset + prev.byteLength;
  return next.buffer === chunk.buffer && next.byteOffset === end + 1 && chunk[end] === NEWLINE;
}
