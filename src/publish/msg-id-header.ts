// The header every message carries, Nats-Msg-Id (and Tapio-Batch on batch
// messages), built for the hot path.
// nats.js's MsgHdrs canonicalises the key and rebuilds its text on every
// set() and encode(); publish() only ever calls encode(), synchronously,
// so one instance serves every event and returns fresh bytes each time
// (the client keeps a reference to them until its next socket write).
import type { MsgHdrs } from "@nats-io/nats-core";

const PREFIX = "NATS/1.0\r\nNats-Msg-Id: ";
const SUFFIX = "\r\n\r\n";
/** The header a batch message carries: how many NDJSON events it holds. */
export const BATCH_HEADER = "Tapio-Batch";
const utf8 = new TextEncoder();

export class MsgIdHeader {
  /** the event id the next publish carries */
  id = "";
  /** events in the next message when it is a batch, else undefined */
  batchOf: number | undefined = undefined;

  /** Sets both from the message about to be published. */
  for(event: { id: string; batchOf?: number }): void {
    this.id = event.id;
    this.batchOf = event.batchOf;
  }

  encode(): Uint8Array {
    const batch = this.batchOf === undefined ? "" : `\r\n${BATCH_HEADER}: ${this.batchOf}`;
    return utf8.encode(PREFIX + this.id + batch + SUFFIX);
  }

  /**
   * For nc.publish's options. MsgHdrs has more methods; publish() uses only
   * encode() (nats-core 3.x protocol.publish). The nats.js packages are pinned
   * to exact versions for this; test/publish/msg-id-header.test.ts checks it.
   */
  get headers(): MsgHdrs {
    return this as unknown as MsgHdrs;
  }
}
