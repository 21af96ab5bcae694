// Short, stable reasons for publish failures: the label on the warn log, the
// PublishErrorListener, /status and metrics. Classification goes by error class and
// JetStream API error code, never by message text (texts change between
// client and server versions), and looks through `cause` chains because
// nats.js wraps (RequestError -> NoRespondersError, JetStreamNotEnabled -> RequestError).
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
  UserAuthenticationExpiredError,
} from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";

/** Every reason a publish fails, with its meaning (the metric's help text and the README list these). */
export const PUBLISH_ERRORS = {
  timeout: "no ack (JetStream) or flush reply (core) within nats.timeout",
  no_responders: "nothing listens on the subject: the stream is missing or JetStream is off",
  disconnected: "the connection dropped or closed while publishing",
  permission: "the server refused the subject or the credentials",
  stream_full: "the stream hit max_msgs, max_bytes or max_msgs_per_subject with discard: new (or its store refused the message)",
  storage: "the server has no room (disk, account limits)",
  max_payload: "NATS refused it: larger than the server's max_payload or the stream's max_msg_size; a batch message is split and its events sent again, a single event is dropped",
  invalid: "NATS refused its subject or its event id (as a header); dropped, never retried",
  other: "any other error",
} as const;
export const PUBLISH_ERROR_REASONS = Object.keys(PUBLISH_ERRORS) as Array<keyof typeof PUBLISH_ERRORS>;
export type PublishErrorReason = keyof typeof PUBLISH_ERRORS;
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

/**
 * nats.js refuses a message over the server's max_payload with the same
 * InvalidArgumentError as any other bad argument; publishers throw this
 * instead once they have checked the size themselves.
 */
export class PayloadTooLargeError extends Error {
  constructor(bytes: number, maxPayload: number, options?: ErrorOptions) {
    super(`message of ${bytes} bytes exceeds the server's max_payload of ${maxPayload}`, options);
    this.name = "PayloadTooLargeError";
  }
}

/** JetStream API error codes (nats-server errors.json) that a publish ack can carry. */
export const JS_ERR = {
  /** resource limits exceeded for account */
  accountResourcesExceeded: 10002,
  /** insufficient resources (the server's JetStream limits) */
  insufficientResources: 10023,
  /** insufficient memory resources available */
  memoryResourcesExceeded: 10028,
  /** JetStream not enabled for account */
  notEnabledForAccount: 10039,
  /** insufficient storage resources available */
  storageResourcesExceeded: 10047,
  /** message size exceeds maximum allowed (the stream's max_msg_size) */
  messageExceedsMaximum: 10054,
  /** JetStream not enabled */
  notEnabled: 10076,
  /** storing the message failed: the description carries the store's own error, e.g. "maximum messages exceeded" */
  storeFailed: 10077,
  /** header size exceeds maximum allowed of 64k */
  headerExceedsMaximum: 10097,
} as const;

function classifyOne(e: Error): PublishErrorReason | undefined {
  if (e instanceof TimeoutError) return "timeout";
  if (e instanceof NoRespondersError) return "no_responders";
  if (e instanceof RequestError) {
    if (e.isNoResponders()) return "no_responders";
    // nats-core raises a RequestError without a cause only when the connection drops or closes under it.
    if (e.cause === undefined) return "disconnected";
    return undefined;
  }
  if (e instanceof PermissionViolationError || e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) return "permission";
  if (e instanceof PayloadTooLargeError) return "max_payload";
  if (e instanceof InvalidArgumentError || e instanceof InvalidSubjectError) return "invalid";
  if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError || e instanceof ConnectionError) return "disconnected";
  if (e instanceof JetStreamApiError) return classifyApiError(e.code);
  return undefined;
}

function classifyApiError(code: number): PublishErrorReason | undefined {
  switch (code) {
    // With discard: new, a stream at max_msgs, max_bytes or max_msgs_per_subject refuses the message
    // (a failing disk lands here too, and is retried the same way).
    case JS_ERR.storeFailed:
      return "stream_full";
    case JS_ERR.messageExceedsMaximum:
    case JS_ERR.headerExceedsMaximum:
      return "max_payload";
    case JS_ERR.accountResourcesExceeded:
    case JS_ERR.insufficientResources:
    case JS_ERR.memoryResourcesExceeded:
    case JS_ERR.storageResourcesExceeded:
      return "storage";
    case JS_ERR.notEnabled:
    case JS_ERR.notEnabledForAccount:
      return "no_responders";
    default:
      return undefined;
  }
}
