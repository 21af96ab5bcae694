// A separate process that counts what arrives on a subject and measures
// end-to-end latency from the `timestamp` inside each event (the emit time)
// to its arrival. Prints one JSON line when `count` events arrived (or at
// the time limit). The first SKIP arrivals count towards the rate but not
// the latency figures (the warm-up of the publisher).
//   bun bench/lib/subscriber.ts URL SUBJECT COUNT [TIMEOUT_MS] [SKIP]
//
// The clock here is performance.timeOrigin + performance.now(): the wall
// clock with sub-millisecond digits (Date.now() has only milliseconds).
import { connect } from "@nats-io/transport-node";

const [url, subject, countArg, timeoutArg, skipArg] = process.argv.slice(2);
const expected = Number(countArg);
const timeoutMs = Number(timeoutArg ?? 120_000);
const skip = Number(skipArg ?? 0);
const nc = await connect({ servers: url! });
const latenciesUs = new Float64Array(Math.max(0, expected - skip));
const dec = new TextDecoder();
let received = 0;
let measured = 0;
let firstAt = 0;
let lastAt = 0;
// Only the timestamp is needed: it sits at a fixed place near the start of each event.
const TS = /"timestamp":"([^"]+)"/;

function nowEpochUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** RFC 3339 with nanoseconds -> microseconds since the epoch (Date keeps only ms). */
function epochUs(ts: string): number {
  const ms = Date.parse(ts.slice(0, 23) + "Z");
  const frac = ts.slice(23, ts.length - 1); // the digits after the milliseconds
  return ms * 1000 + Number((frac + "000").slice(0, 3));
}

const done = Promise.withResolvers<void>();
nc.subscribe(subject!, {
  callback: (_err, msg) => {
    const now = nowEpochUs();
    if (received === 0) firstAt = now;
    lastAt = now;
    if (received >= skip && measured < latenciesUs.length) {
      const m = TS.exec(dec.decode(msg.data.subarray(0, 160)));
      if (m) latenciesUs[measured++] = now - epochUs(m[1]!);
    }
    // A nats.batch message carries several events (its Tapio-Batch header says how many).
    received += Number(msg.headers?.get("Tapio-Batch") || 1);
    if (received >= expected) done.resolve();
  },
});
await nc.flush();
process.stdout.write(JSON.stringify({ ready: true }) + "\n");
const timer = setTimeout(() => done.resolve(), timeoutMs);
process.on("SIGTERM", () => done.resolve());
await done.promise;
clearTimeout(timer);
const n = measured;
const sorted = latenciesUs.subarray(0, n).sort();
const pct = (p: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.floor(p * n))]! / 1000);
process.stdout.write(
  JSON.stringify({
    received,
    seconds: (lastAt - firstAt) / 1e6,
    rate: received > 1 ? (received - 1) / ((lastAt - firstAt) / 1e6) : 0,
    latency_ms: { min: n ? sorted[0]! / 1000 : NaN, p50: pct(0.5), p99: pct(0.99), p999: pct(0.999), max: n ? sorted[n - 1]! / 1000 : NaN },
  }) + "\n",
);
await nc.close();
