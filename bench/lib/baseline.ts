// The baseline: a bare nats.js v3 publisher under Bun doing the honest
// minimum per event (build the event, JSON.stringify, set Nats-Msg-Id,
// publish) with the same 1 KB events as the agent's synthetic collector.
//   core:      publish, flush at the end
//   jetstream: js.publish with 256 acks in flight (pipelined)
// bun bench/lib/baseline.ts URL SUBJECT MODE COUNT RATE(0=max) [STREAM] [TICK_MS]
import { connect } from "@nats-io/transport-node";
import { headers } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";

const [url, subject, mode, countArg, rateArg, stream, tickArg] = process.argv.slice(2);
const tickMs = Number(tickArg ?? 10);
const count = Number(countArg);
const rate = Number(rateArg);
const nc = await connect({ servers: url! });
let padding = "";

/**
 * Now as RFC 3339 with microseconds. performance.timeOrigin + performance.now()
 * is the wall clock with sub-millisecond digits, the subscriber's clock;
 * Date.now() would cut up to a millisecond off and make the baseline look slower.
 */
function timestamp(): string {
  const t = performance.timeOrigin + performance.now();
  const ms = Math.floor(t);
  const us = Math.floor((t - ms) * 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us).padStart(3, "0")}000Z`;
}

function event(seq: number) {
  return {
    event_id: crypto.randomUUID(),
    timestamp: timestamp(),
    type: "synthetic.event",
    source: "baseline",
    severity: "info",
    event_data: { custom: { seq: String(seq), padding } },
    metadata: { attributes: { collector_name: "baseline" } },
  };
}

// ~1 KB of JSON per event, as the agent's synthetic collector with payload_bytes: 1024
padding = "x".repeat(1024 - JSON.stringify(event(0)).length);

const t0 = performance.now();
/**
 * With a rate, paced as the agent's synthetic collector paces itself: every
 * TICK_MS it sends every event due by then, so both offer the same bursts.
 * Resolves at once while event i is due.
 */
const paced = async (i: number) => {
  if (rate <= 0) return;
  while (i >= Math.floor(((performance.now() - t0) / 1000) * rate)) await Bun.sleep(tickMs);
};

if (mode === "core") {
  for (let i = 0; i < count; i++) {
    if (rate > 0) await paced(i);
    const e = event(i);
    const h = headers();
    h.set("Nats-Msg-Id", e.event_id);
    nc.publish(subject!, JSON.stringify(e), { headers: h });
    if (rate === 0 && i % 4096 === 0) await new Promise((r) => setImmediate(r));
  }
  await nc.flush();
} else {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream!, subjects: [subject!] }).catch(() => {});
  const js = jetstream(nc);
  const window = 256;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let failed = 0;
  for (let i = 0; i < count; i++) {
    if (rate > 0) await paced(i);
    while (inFlight >= window) await new Promise<void>((r) => (wake = r));
    const e = event(i);
    inFlight++;
    js.publish(subject!, JSON.stringify(e), { msgID: e.event_id }).then(
      () => {},
      () => failed++,
    ).finally(() => {
      inFlight--;
      const w = wake;
      wake = undefined;
      w?.();
    });
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  if (failed) console.error(`${failed} publishes failed`);
}
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ published: count, seconds, rate: count / seconds }) + "\n");
await nc.close();
