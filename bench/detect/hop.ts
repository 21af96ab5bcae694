// The benchmark's NATS hop with no agent: a bare nats.js publisher in this
// thread -> a nats-server of its own -> bench:detect's subscriber worker.
// What the detection latencies include that is not the agent's.
//
//   bun bench/detect/hop.ts [--messages 40]
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, stopAllNatsServers } from "../../test/helpers/nats-server.ts";
import type { ArrivalMessage } from "./subscriber-worker.ts";

const { values: args } = parseArgs({ args: Bun.argv.slice(2), options: { messages: { type: "string", default: "40" } } });
const messages = Number(args.messages);
const nats = await startNatsServer({ jetstream: false });
try {
  const worker = new Worker(new URL("./subscriber-worker.ts", import.meta.url).href);
  let arrived: ((at: number) => void) | undefined;
  await new Promise<void>((ready) => {
    worker.onmessage = (m: MessageEvent<ArrivalMessage | { ready: true }>) => {
      if ("ready" in m.data) ready();
      else arrived?.(m.data.at);
    };
    worker.postMessage({ url: nats.url, subject: "hop" });
  });
  const nc = await connect({ servers: nats.url });
  const latencies: number[] = [];
  for (let i = 0; i < messages; i++) {
    // At random moments, as the benchmark's events come.
    await Bun.sleep(100 + Math.random() * 400);
    const at = new Promise<number>((resolve) => (arrived = resolve));
    const sent = performance.timeOrigin + performance.now();
    nc.publish("hop", JSON.stringify({ i, pad: "x".repeat(600) }));
    latencies.push((await at) - sent);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.max(0, Math.ceil(q * latencies.length) - 1)]!.toFixed(2);
  console.log(`publish -> subscriber, ${messages} messages, ms: min ${at(0)}, p50 ${at(0.5)}, p99 ${at(0.99)}, max ${latencies.at(-1)!.toFixed(2)}`);
  await nc.close();
  worker.terminate();
} finally {
  await stopAllNatsServers();
}
