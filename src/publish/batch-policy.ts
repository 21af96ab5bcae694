// nats.batch in one place. With it, events are packed into NDJSON messages
// (batching.ts); that shapes three things upstream of the publisher: how
// large the encoder's chunks are (a run of events side by side in one chunk
// goes out as one message without a copy), how many events a worker takes
// at once (whole messages), and how long it waits for a fuller batch.
import type { Logger } from "pino";
import type { NatsConfig } from "../config/schema.ts";
import { CHUNK_BYTES } from "../event/arena.ts";
import { BatchingPublisher, type BatchLimits } from "./batching.ts";
import type { Publisher } from "./publisher.ts";

/** The largest encoder chunk, whatever nats.batch.max_bytes says. */
const MAX_ARENA_CHUNK_BYTES = 4 * 1024 * 1024;

export class BatchPolicy {
  /** undefined: one message per event */
  readonly limits: BatchLimits | undefined;
  /** how long a worker waits for a fuller batch */
  readonly lingerMs: number;

  constructor(batch: NatsConfig["batch"]) {
    this.limits = batch && { maxEvents: batch.max_events, maxBytes: batch.max_bytes };
    this.lingerMs = batch?.linger.ms ?? 0;
  }

  /** The size of the encoder's byte chunks: large enough for a whole message when packing. */
  get arenaChunkBytes(): number {
    return this.limits ? Math.min(MAX_ARENA_CHUNK_BYTES, Math.max(CHUNK_BYTES, this.limits.maxBytes)) : CHUNK_BYTES;
  }

  /** How many events a worker takes at once: `batchSize`, or when packing whole messages (rounded down, at least one). */
  take(batchSize: number): number {
    if (!this.limits) return batchSize;
    const { maxEvents } = this.limits;
    return maxEvents * Math.max(1, Math.floor(batchSize / maxEvents));
  }

  /** The publisher that packs events into messages, or `publisher` itself when not packing. */
  wrap(publisher: Publisher, log: Logger): Publisher {
    return this.limits ? new BatchingPublisher(publisher, this.limits, log) : publisher;
  }
}
