// The NATS subscriber of bench:detect, in a worker thread: it stamps each
// message's arrival on its own event loop, so whatever the harness's main
// thread does meanwhile (spawning, reading /dev/kmsg) does not delay the
// stamp. The clock is the wall clock with sub-millisecond digits
// (performance.timeOrigin + performance.now(), as bench/lib/subscriber.ts).
import { connect } from "@nats-io/transport-node";

declare const self: Worker;

export interface ArrivalMessage {
  /** ms since the epoch, with µs digits */
  at: number;
  subject: string;
  data: string;
}

self.onmessage = async (msg: MessageEvent<{ url: string; subject: string }>) => {
  const { url, subject } = msg.data;
  const nc = await connect({ servers: url });
  const dec = new TextDecoder();
  nc.subscribe(subject, {
    callback: (_err, m) => {
      const at = performance.timeOrigin + performance.now();
      self.postMessage({ at, subject: m.subject, data: dec.decode(m.data) } satisfies ArrivalMessage);
    },
  });
  await nc.flush();
  self.postMessage({ ready: true });
};
