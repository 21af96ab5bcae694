// A sender for the ingest benchmark: POSTs COUNT events to the agent's ingest
// API as NDJSON batches of BATCH, one request after the other over one
// keep-alive connection, each answered 202 (queued) before the next. Events
// are ~1 KB as published, like the synthetic collector's with payload_bytes:
// 1024. Prints one JSON line: {"seconds": ..., "requests": ..., "full": ...}
// (full: requests answered 429, whose Retry-After it waited out).
//   bun bench/lib/ingest-sender.ts URL COUNT BATCH
import * as v from "valibot";
import { EventEncoder } from "../../src/event/encode.ts";
import { externalEventSchema } from "../../src/event/input.ts";
import type { EventInput } from "../../src/event/event.ts";

const [url, countArg, batchArg] = process.argv.slice(2);
const count = Number(countArg);
const batch = Number(batchArg);

const input = (padding: string) => ({ source: "bench", type: "synthetic.event", severity: "info", event_data: { custom: { seq: "0000000", padding } } });
/** What the agent publishes for an input with this padding, in bytes. */
function published(padding: string): number {
  const { source: _, ...rest } = input(padding);
  return new EventEncoder("ingest", "bench.ingest", Number.MAX_SAFE_INTEGER).encode(v.parse(externalEventSchema(), rest) as EventInput, "bench").bytes.byteLength;
}
const padding = "x".repeat(1024 - published(""));
const line = JSON.stringify(input(padding));
const body = `${Array(batch).fill(line).join("\n")}\n`;

const t0 = performance.now();
let requests = 0;
let full = 0;
for (let sent = 0; sent < count; sent += batch) {
  const n = Math.min(batch, count - sent);
  const response = await fetch(`${url}/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/x-ndjson" },
    body: n === batch ? body : `${Array(n).fill(line).join("\n")}\n`,
    keepalive: true,
  });
  requests++;
  if (response.status === 429) {
    full++;
    // the queue is full: the agent publishes slower than this sender sends; wait as told
    await Bun.sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
    sent -= batch;
    continue;
  }
  if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}
console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, requests, full }));
