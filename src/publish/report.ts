// Where failures go: the optional PublishErrorListener (metrics), the
// connection's lastError (status), and a log limited to one line per reason
// per interval, so an outage does not write one line per event.
import type { Logger } from "pino";
import type { QueuedEvent } from "../event/event.ts";
import { eventCount, type PublishErrorListener } from "./publisher.ts";
import { isPermanent, type PublishErrorReason } from "./classify.ts";
import { permissionMessage, type ConnectionManager } from "./connection.ts";
import { PermissionViolationError } from "@nats-io/nats-core";
import { LogThrottle } from "../log.ts";


export class FailureReporter {
  readonly #log: Logger;
  readonly #connection: ConnectionManager;
  readonly #onError: PublishErrorListener | undefined;
  readonly #throttle = new LogThrottle();

  constructor(log: Logger, connection: ConnectionManager, onError: PublishErrorListener | undefined) {
    this.#log = log;
    this.#connection = connection;
    this.#onError = onError;
  }

  /**
   * `messages` failed to publish for `reason`: retried, or dropped if the
   * reason is permanent, except batch messages too large for NATS, which are
   * split and sent again (batching.ts). Counted in events, not messages.
   * Callers pass messages that fail alike: all batch messages or none when the reason is max_payload.
   */
  publishFailed(reason: PublishErrorReason, error: Error, messages: readonly QueuedEvent[]): void {
    const events = eventCount(messages);
    this.#onError?.(reason, error, events);
    this.#connection.recordError(`${reason}: ${error.message}`);
    if (reason === "permission") this.#connection.recordPermission(refusal(error));
    const splitting = reason === "max_payload" && messages[0]?.batchOf !== undefined;
    const suppressed = this.#throttle.take(splitting ? "max_payload:batch" : reason);
    if (suppressed === undefined) return;
    const fields = { reason, events, messages: messages.length, error: error.message, ...(suppressed > 0 ? { suppressed } : {}) };
    if (splitting) this.#log.warn(fields, "batch message larger than NATS accepts; splitting it and sending its events again");
    else if (isPermanent(reason)) this.#log.error(fields, "dropping events NATS can never accept");
    else this.#log.warn(fields, "publish failed; retrying");
  }

  /** Something around publishing failed (stream setup) and is retried; not a publish failure, so no listener call. */
  setupFailed(what: string, reason: PublishErrorReason, error: Error): void {
    this.#connection.recordError(`${what}: ${reason}: ${error.message}`);
    if (reason === "permission") this.#connection.recordPermission(refusal(error));
    // The server answered, so it no longer refuses the request (a timeout or a disconnect proves nothing).
    else if (reason !== "timeout" && reason !== "disconnected") this.#connection.permissionRestored();
    const suppressed = this.#throttle.take(`${what}:${reason}`);
    if (suppressed === undefined) return;
    this.#log.warn({ reason, error: error.message, ...(suppressed > 0 ? { suppressed } : {}) }, `${what} failed; retrying`);
  }

  /** Something that needs the server's permission worked: an earlier refusal no longer stands. */
  succeeded(): void {
    this.#connection.permissionRestored();
  }
}

function refusal(error: Error): string {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return permissionMessage(e);
  }
  return `the NATS server refused: ${error.message}; see README "NATS permissions"`;
}
