// Makes sure the JetStream stream exists and captures `<subject>.>`. A
// missing stream is created from the config; an existing one is used as is
// (its limits are the operator's), but if its subjects miss ours every
// publish would fail with no_responders, so that is a PublisherError.
import { JetStreamApiCodes, JetStreamApiError, StorageType, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import type { NatsConfig } from "../config/schema.ts";
import { PublisherError } from "./errors.ts";
import { subjectsCover } from "./subjects.ts";

export type StreamOutcome = "created" | "existing";

/**
 * Resolves when the stream is usable. Rejects with a PublisherError when the
 * server refuses it for good (subjects not covered, invalid limits, subjects
 * overlapping another stream); other errors (timeouts, disconnects) are
 * transient and rejected as they are, for the caller to retry.
 */
export async function ensureStream(jsm: JetStreamManager, config: NatsConfig): Promise<StreamOutcome> {
  const { name } = config.stream;
  const needed = `${config.subject}.>`;
  // Agents on every node start together: another may create the stream between our lookup and our create.
  for (let attempt = 0; ; attempt++) {
    const info = await lookup(jsm, name);
    if (info) {
      const subjects = info.config.subjects ?? [];
      if (!subjectsCover(subjects, config.subject)) {
        throw new PublisherError(
          `JetStream stream "${name}" has subjects [${subjects.map((s) => `"${s}"`).join(", ")}], which do not cover "${needed}"; ` +
            `add "${needed}" to the stream's subjects or configure another stream name`,
        );
      }
      return "existing";
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [needed],
        storage: StorageType.File,
        max_age: config.stream.max_age.nanos,
        max_bytes: config.stream.max_bytes,
        num_replicas: config.stream.replicas,
        duplicate_window: config.stream.duplicate_window.nanos,
      });
      return "created";
    } catch (err) {
      if (attempt === 0 && err instanceof JetStreamApiError && /already in use/i.test(err.message)) continue;
      if (err instanceof JetStreamApiError) {
        throw new PublisherError(`cannot create JetStream stream "${name}" for "${needed}": ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}

async function lookup(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}
