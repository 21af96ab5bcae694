// The one header every event carries, Nats-Msg-Id, built for the hot path.
// nats.js's MsgHdrs canonicalises the key and rebuilds its text on every
// set() and encode(); publish() only ever calls encode(), synchronously,
// so one instance serves every event and returns fresh bytes each time
// (the client keeps a reference to them until its next socket write).
import type { MsgHdrs } from "@nats-io/nats-core";

const PREFIX = "NATS/1.0\r\nNats-Msg-Id: ";
const SUFFIX = "\r\n\r\n";
const utf8 = new TextEncoder();

export class MsgIdHeader {
  /** the event id the next publish carries */
  id = "";

  encode(): Uint8Array {
    return utf8.encode(PREFIX + this.id + SUFFIX);
  }

  /** For nc.publish's options. MsgHdrs has more methods; publish() uses only encode() (nats-core 3.x protocol.publish). */
  get headers(): MsgHdrs {
    return this as unknown as MsgHdrs;
  }
}
