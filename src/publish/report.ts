// Where failures go: the optional PublishErrorListener (metrics), the
// connection's lastError (status), and a log limited to one line per reason
// per interval, so an outage does not write one line per event.
import type { Logger } from "pino";
import type { PublishErrorListener } from "./publisher.ts";
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

  /** `events` failed to publish for `reason`: retried, or dropped if the reason is permanent. */
  publishFailed(reason: PublishErrorReason, error: Error, events: number): void {
    this.#onError?.(reason, error, events);
    this.#connection.recordError(`${reason}: ${error.message}`);
    if (reason === "permission") this.#connection.recordPermission(refusal(error));
    const suppressed = this.#throttle.take(reason);
    if (suppressed === undefined) return;
    const fields = { reason, events, error: error.message, ...(suppressed > 0 ? { suppressed } : {}) };
    if (isPermanent(reason)) this.#log.error(fields, "dropping events NATS can never accept");
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
