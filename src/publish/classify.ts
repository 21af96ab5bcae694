// Short, stable reasons for publish failures: the label on the warn log, the
// PublishErrorListener, /status and metrics. Classification looks through
// `cause` chains because nats.js wraps (RequestError -> NoRespondersError,
// JetStreamNotEnabled -> RequestError).
import {
  AuthorizationError,
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidArgumentError,
  InvalidSubjectError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";

export const PUBLISH_ERROR_REASONS = [
  /** no ack (JetStream) or flush reply (core) within `timeout` */
  "timeout",
  /** nothing listens on the subject: the stream is missing or JetStream is off */
  "no_responders",
  /** the connection dropped or closed while publishing */
  "disconnected",
  /** the server refused the subject or the credentials */
  "permission",
  /** the stream hit max_msgs / max_bytes with discard: new */
  "stream_full",
  /** the server has no room (disk, account limits) */
  "storage",
  /** larger than the server's max_payload or the stream's max_msg_size: dropped, never retried */
  "max_payload",
  /** the subject or the event id (as a header) is not valid for NATS: dropped, never retried */
  "invalid",
  "other",
] as const;
export type PublishErrorReason = (typeof PUBLISH_ERROR_REASONS)[number];
/** The publish errors no retry can fix; they are also drop reasons (event/drop-reasons.ts). */
export type PermanentPublishError = Extract<PublishErrorReason, "max_payload" | "invalid">;

/** Reasons a retry cannot fix: the event is reported and dropped instead of blocking the batch forever. */
export function isPermanent(reason: PublishErrorReason): reason is PermanentPublishError {
  return reason === "max_payload" || reason === "invalid";
}

export function classifyError(err: unknown): PublishErrorReason {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const reason = classifyOne(e);
    if (reason) return reason;
  }
  return "other";
}

function classifyOne(e: Error): PublishErrorReason | undefined {
  if (e instanceof TimeoutError) return "timeout";
  if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) return "no_responders";
  if (e instanceof PermissionViolationError || e instanceof AuthorizationError) return "permission";
  if (e instanceof InvalidArgumentError) return e.message.includes("max_payload") ? "max_payload" : "invalid";
  if (e instanceof InvalidSubjectError) return "invalid";
  if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError || e instanceof ConnectionError) return "disconnected";
  if (e instanceof RequestError && /disconnect|cancelled/.test(e.message)) return "disconnected";
  if (e instanceof JetStreamApiError) return classifyApiError(e.message);
  return undefined;
}

// JetStream API errors carry the server's description; codes vary between server versions, the texts do not.
function classifyApiError(message: string): PublishErrorReason | undefined {
  if (/maximum (messages|bytes|msgs)( per subject)? exceeded/i.test(message)) return "stream_full";
  if (/message size exceeds maximum/i.test(message)) return "max_payload";
  if (/insufficient (storage|resources)|resource limits exceeded/i.test(message)) return "storage";
  if (/permission|authorization/i.test(message)) return "permission";
  return undefined;
}
