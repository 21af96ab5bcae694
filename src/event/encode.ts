// Turns what a collector emits into queue-ready bytes, once per event.
import { SEVERITIES, type CollectorEvent, type EventInput, type EventMetadata, type QueuedEvent } from "./event.ts";

const SEVERITY_SET: ReadonlySet<string> = new Set(SEVERITIES);
const utf8 = new TextEncoder();

/** Thrown for an event the orchestrator must refuse; `reason` is the drop counter label. */
export class InvalidEventError extends Error {
  constructor(
    readonly reason: "invalid_event" | "unserializable" | "too_large",
    message: string,
  ) {
    super(message);
    this.name = "InvalidEventError";
  }
}

// Wall-clock anchored, monotonic sub-millisecond digits: Date has only
// milliseconds, performance.now() has microseconds but drifts from the wall
// clock, so the offset between them is re-read once a second.
let wallOffset = Date.now() - performance.now();
let offsetReadAt = performance.now();

/** Now as RFC 3339 with nanoseconds, UTC: 2026-11-25T12:00:00.123456789Z */
export function rfc3339Nano(): string {
  const mono = performance.now();
  if (mono - offsetReadAt > 1000) {
    wallOffset = Date.now() - mono;
    offsetReadAt = mono;
  }
  const t = wallOffset + mono;
  const ms = Math.floor(t);
  const subMsNanos = Math.floor((t - ms) * 1e6);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(subMsNanos).padStart(6, "0")}Z`;
}

/** Time-ordered, unique across restarts and nodes (UUIDv7). */
export function newEventId(): string {
  return Bun.randomUUIDv7();
}

/** One per collector: knows its name and subject, so the per-event work is small. */
export class EventEncoder {
  /** the metadata of events that bring none: built once, serialised many times */
  readonly #bareMetadata: EventMetadata;

  constructor(
    readonly collector: string,
    readonly subject: string,
    readonly maxEventBytes: number,
  ) {
    this.#bareMetadata = { attributes: { collector_name: collector } };
  }

  encode(input: EventInput): QueuedEvent {
    if (typeof input?.type !== "string" || input.type === "") {
      throw new InvalidEventError("invalid_event", "event has no type");
    }
    if (!SEVERITY_SET.has(input.severity)) {
      throw new InvalidEventError("invalid_event", `event ${input.type} has severity ${JSON.stringify(input.severity)}, expected one of ${SEVERITIES.join(" ")}`);
    }
    const id = input.event_id ?? newEventId();
    const metadata = input.metadata;
    const event: CollectorEvent = {
      event_id: id,
      timestamp: input.timestamp ?? rfc3339Nano(),
      type: input.type,
      source: this.collector,
      severity: input.severity,
      event_data: input.event_data ?? {},
      metadata: metadata
        ? { ...metadata, attributes: { ...metadata.attributes, collector_name: this.collector } }
        : this.#bareMetadata,
      k8s_context: input.k8s_context,
      correlation_hints: input.correlation_hints,
      trace_context: input.trace_context,
    };
    let json: string;
    try {
      json = JSON.stringify(event);
    } catch (err) {
      throw new InvalidEventError("unserializable", `event ${input.type} cannot be serialised: ${(err as Error).message}`);
    }
    const bytes = utf8.encode(json);
    if (bytes.byteLength > this.maxEventBytes) {
      throw new InvalidEventError("too_large", `event ${input.type} is ${bytes.byteLength} bytes, over the ${this.maxEventBytes}-byte limit`);
    }
    return { subject: this.subject, id, bytes, collector: this.collector };
  }
}
