// The one call that hands an event to nats.js, shared by the core and the
// JetStream publisher.
import { InvalidArgumentError, type NatsConnection, type PublishOptions } from "@nats-io/nats-core";
import type { QueuedEvent } from "../event/event.ts";
import { PayloadTooLargeError } from "./classify.ts";
import type { MsgIdHeader } from "./msg-id-header.ts";
import type { MessageLimit } from "./publisher.ts";

/**
 * Publishes `event` with `msgId` (already the `headers` of `options`). A
 * message over the server's max_payload is thrown as PayloadTooLargeError:
 * nats.js says so only in the text of an InvalidArgumentError, so the size
 * is checked here, the way nats.js does, once it refused.
 */
export function sendEvent(nc: NatsConnection, event: QueuedEvent, msgId: MsgIdHeader, options: PublishOptions): void {
  msgId.for(event);
  try {
    nc.publish(event.subject, event.bytes, options);
  } catch (err) {
    const maxPayload = nc.info?.max_payload;
    if (err instanceof InvalidArgumentError && maxPayload !== undefined) {
      const bytes = event.bytes.length + msgId.encode().length;
      if (bytes > maxPayload) throw new PayloadTooLargeError(bytes, maxPayload, { cause: err });
    }
    throw err;
  }
}

/** The server's max_payload, from the INFO of the server `nc` is connected to now (another one after a reconnect may differ). */
export function serverLimit(nc: NatsConnection): MessageLimit | undefined {
  const bytes = nc.info?.max_payload;
  return bytes === undefined ? undefined : { bytes, source: "the server's max_payload" };
}
