// --dry-run: writes each event's JSON as one NDJSON line instead of
// publishing, one write per batch, waiting for the write (backpressure).
import type { QueuedEvent } from "../event/event.ts";
import { NEWLINE } from "../event/arena.ts";
import { DELIVERED, outcome, type Publisher, type PublisherStatus, type PublishOutcome } from "./publisher.ts";

/** The part of a Writable (process.stdout by default) the publisher uses. */
export interface LineSink {
  write(chunk: Uint8Array, callback: (err?: Error | null) => void): boolean;
}

export class StdoutPublisher implements Publisher {
  readonly #out: LineSink;
  #lastError: string | undefined;

  constructor(out: LineSink = process.stdout) {
    this.#out = out;
  }

  async start(): Promise<void> {}

  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    if (batch.length === 0) return DELIVERED;
    if (signal.aborted) return outcome(batch, []);
    let size = 0;
    for (const event of batch) size += event.bytes.length + 1;
    const chunk = new Uint8Array(size);
    let offset = 0;
    for (const event of batch) {
      chunk.set(event.bytes, offset);
      offset += event.bytes.length;
      chunk[offset++] = NEWLINE;
    }
    try {
      await new Promise<void>((resolve, reject) => this.#out.write(chunk, (err) => (err ? reject(err) : resolve())));
      return DELIVERED;
    } catch (err) {
      // a closed stdout (`| head`) cannot be retried into working
      this.#lastError = (err as Error).message;
      return outcome(batch, []);
    }
  }

  status(): PublisherStatus {
    return { mode: "stdout", connected: true, closed: false, reconnects: 0, lastError: this.#lastError };
  }

  /** Always connected, never closed: nothing to report. */
  onStatusChange(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}
