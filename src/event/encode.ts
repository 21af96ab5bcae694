// Turns what a collector emits into queue-ready bytes, once per event.
import { SEVERITIES, type EventInput, type EventMetadata, type QueuedEvent } from "./event.ts";
import { ByteArena } from "./arena.ts";
import type { RefusedReason } from "./drop-reasons.ts";
import { SUBJECT_PREFIX } from "../config/schema.ts";

const SEVERITY_SET: ReadonlySet<string> = new Set(SEVERITIES);

/** NATS's default max_payload: a larger event could never be published. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Distinct subject suffixes one encoder routes to, for its whole life. The
 * queue keeps one entry per subject it has seen, for good, so suffixes that
 * come from outside (ingest's senders) must be bounded.
 */
export const MAX_SUBJECT_SUFFIXES = 1000;
/** NATS allows longer subjects, but a suffix is a name, not a payload. */
export const MAX_SUBJECT_SUFFIX_LENGTH = 128;

/** Every encoded event starts with this: its id is the first member. */
const ID_KEY = '{"event_id":';
/**
 * The byte offset of the event id in an encoded event (after ID_KEY and the
 * opening quote), for readers that take the id from the bytes instead of
 * keeping it twice (the queue). A collector's own id that needs escaping is
 * not there verbatim.
 */
export const EVENT_ID_OFFSET = ID_KEY.length + 1;

/** Thrown for an event the orchestrator must refuse; `reason` is the drop counter label. */
export class InvalidEventError extends Error {
  constructor(
    readonly reason: Extract<RefusedReason, "invalid_event" | "unserializable" | "too_large">,
    message: string,
  ) {
    super(message);
    this.name = "InvalidEventError";
  }
}

// Sub-millisecond wall time: timeOrigin + performance.now() (microseconds;
// Date.now() has only milliseconds, and re-anchoring on it would skew every
// timestamp by up to 1 ms). Once a second it is checked against Date.now(),
// and a step of the wall clock (NTP, suspend) moves the anchor with it. The
// text up to the second is cached: it changes once a second, events come far
// more often.
let wallOffset = performance.timeOrigin;
let offsetReadAt = performance.now();
let cachedSecond = -1;
let cachedPrefix = "";

/** Now as RFC 3339 with nanoseconds, UTC: 2026-11-25T12:00:00.123456789Z */
export function rfc3339Nano(): string {
  const mono = performance.now();
  if (mono - offsetReadAt > 1000) {
    // Date.now() is floored to the millisecond: within (-1, 0] is agreement.
    const drift = Date.now() - (wallOffset + mono);
    if (drift > 1 || drift < -2) wallOffset += drift;
    offsetReadAt = mono;
  }
  const t = wallOffset + mono;
  const ms = Math.floor(t);
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "2026-11-25T12:00:00."
  }
  const nanos = (ms - second * 1000) * 1_000_000 + Math.floor((t - ms) * 1e6);
  return `${cachedPrefix}${String(nanos).padStart(9, "0")}Z`;
}

/** Time-ordered, unique across restarts and nodes (UUIDv7). */
export function newEventId(): string {
  return Bun.randomUUIDv7();
}

/**
 * One per collector: knows its name and subject, so the per-event work is
 * small. The envelope is written as text around JSON.stringify of the
 * collector's own members, in the field order of CollectorEvent, without
 * building the event object.
 */
export class EventEncoder {
  /** `"source":"<name>"` and the metadata of events that bring none: built once */
  readonly #sourceJson: string;
  readonly #bareMetadataJson: string;

  /** `<subject>.<suffix>` by suffix, built once each (at most MAX_SUBJECT_SUFFIXES) */
  readonly #suffixed = new Map<string, string>();

  // Bytes go straight into the arena's shared chunks: the queue and the
  // publisher keep views of them, with no copy and no per-event buffer.
  readonly #arena: ByteArena;

  constructor(
    readonly collector: string,
    readonly subject: string,
    readonly maxEventBytes: number,
    arenaChunkBytes?: number,
  ) {
    this.#arena = new ByteArena(arenaChunkBytes);
    this.#sourceJson = JSON.stringify(collector);
    this.#bareMetadataJson = JSON.stringify({ attributes: { collector_name: collector } } satisfies EventMetadata);
  }

  /**
   * The event as queue-ready bytes, which stay valid as long as they are
   * held; with `subjectSuffix` (NATS tokens) it goes to `<subject>.<suffix>`.
   */
  encode(input: EventInput, subjectSuffix?: string): QueuedEvent {
    const subject = subjectSuffix === undefined ? this.subject : this.#subjectFor(subjectSuffix);
    if (typeof input?.type !== "string" || input.type === "") {
      throw new InvalidEventError("invalid_event", "event has no type");
    }
    if (!SEVERITY_SET.has(input.severity)) {
      throw new InvalidEventError("invalid_event", `event ${input.type} has severity ${JSON.stringify(input.severity)}, expected one of ${SEVERITIES.join(" ")}`);
    }
    // Generated ids and timestamps need no escaping; a collector's own may.
    const id = input.event_id ?? newEventId();
    const idJson = input.event_id === undefined ? `"${id}"` : JSON.stringify(id);
    const tsJson = input.timestamp === undefined ? `"${rfc3339Nano()}"` : JSON.stringify(input.timestamp);
    // Every piece is made before any is written: a collector's toJSON or
    // getter that emits again cannot interleave with this event's bytes.
    let head: string, data: string, tail: string;
    try {
      const metadata = input.metadata;
      const metadataJson = metadata
        ? JSON.stringify({ ...metadata, attributes: { ...metadata.attributes, collector_name: this.collector } })
        : this.#bareMetadataJson;
      head = `${ID_KEY}${idJson},"timestamp":${tsJson},"type":${JSON.stringify(input.type)},"source":${this.#sourceJson},"severity":"${input.severity}","event_data":`;
      data = JSON.stringify(input.event_data ?? {}) ?? "{}";
      tail = `,"metadata":${metadataJson}`;
      // Absent optional members are left out, never sent as null.
      if (input.k8s_context != null) tail += `,"k8s_context":${JSON.stringify(input.k8s_context)}`;
      if (input.correlation_hints != null) tail += `,"correlation_hints":${JSON.stringify(input.correlation_hints)}`;
      if (input.trace_context != null) tail += `,"trace_context":${JSON.stringify(input.trace_context)}`;
      tail += "}";
    } catch (err) {
      throw new InvalidEventError("unserializable", `event ${input.type} cannot be serialised: ${(err as Error).message}`);
    }
    // UTF-8 never takes fewer bytes than UTF-16 units: an event this long is too large before it is written.
    const units = head.length + data.length + tail.length;
    if (units > this.maxEventBytes) throw this.#tooLarge(input.type, `at least ${units}`);
    const arena = this.#arena;
    arena.start();
    arena.put(head);
    arena.put(data);
    arena.put(tail);
    const bytes = arena.end();
    if (bytes.byteLength > this.maxEventBytes) {
      arena.discard(bytes);
      throw this.#tooLarge(input.type, String(bytes.byteLength));
    }
    return { subject, id, bytes, collector: this.collector, emittedAt: performance.now(), subjectSuffix };
  }

  #subjectFor(suffix: string): string {
    const known = this.#suffixed.get(suffix);
    if (known !== undefined) return known;
    if (suffix.length > MAX_SUBJECT_SUFFIX_LENGTH || !SUBJECT_PREFIX.test(suffix)) {
      throw new InvalidEventError("invalid_event", `subject suffix ${JSON.stringify(suffix.slice(0, MAX_SUBJECT_SUFFIX_LENGTH))} is not NATS tokens (up to ${MAX_SUBJECT_SUFFIX_LENGTH} characters, dot-separated, no spaces, * or >)`);
    }
    if (this.#suffixed.size >= MAX_SUBJECT_SUFFIXES) {
      throw new InvalidEventError("invalid_event", `collector ${this.collector} already routes to ${MAX_SUBJECT_SUFFIXES} subject suffixes; "${suffix}" would be one more`);
    }
    const subject = `${this.subject}.${suffix}`;
    this.#suffixed.set(suffix, subject);
    return subject;
  }

  /** The size of the arena's next chunks. */
  set arenaChunkBytes(bytes: number) {
    this.#arena.chunkBytes = bytes;
  }

  /** Takes back the event encode() just returned, when it is dropped at once, so its bytes hold no memory. */
  discard(event: QueuedEvent): void {
    this.#arena.discard(event.bytes);
  }

  #tooLarge(type: string, bytes: string): InvalidEventError {
    return new InvalidEventError("too_large", `event ${type} is ${bytes} bytes, over the ${this.maxEventBytes}-byte limit`);
  }
}
