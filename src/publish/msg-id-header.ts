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

function headerText(id: string, batchOf: number | undefined): string {
  const batch = batchOf === undefined ? "" : `\r\n${BATCH_HEADER}: ${batchOf}`;
  return PREFIX + id + batch + SUFFIX;
}

/**
 * The size of the header a message with this id (and batch count) carries:
 * NATS counts it against max_payload and max_msg_size with the payload.
 */
export function headerBytes(id: string, batchOf?: number): number {
  return Buffer.byteLength(headerText(id, batchOf));
}

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
    return utf8.encode(headerText(this.id, this.batchOf));
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

/** What the header of a batch message adds besides its two ids and its count: "..", names, separators. */
const BATCH_HEADER_OVERHEAD = headerBytes("..", 0) - 1;

/**
 * Whether headerBytes(`${firstId}..${lastId}`, count) is at most `atMost`,
 * without building the text (pack() asks for every event); answers at once
 * when even the largest header those ids could make fits (3 UTF-8 bytes per UTF-16 unit).
 */
export function batchHeaderFits(firstId: string, lastId: string, count: number, atMost: number): boolean {
  const digits = count < 10 ? 1 : count < 100 ? 2 : String(count).length;
  if (BATCH_HEADER_OVERHEAD + 3 * (firstId.length + lastId.length) + digits <= atMost) return true;
  return BATCH_HEADER_OVERHEAD + Buffer.byteLength(firstId) + Buffer.byteLength(lastId) + digits <= atMost;
}

/** What NATS weighs a message at: payload and header. */
export function messageBytes(message: { id: string; batchOf?: number; bytes: Uint8Array }): number {
  return message.bytes.byteLength + headerBytes(message.id, message.batchOf);
}
