// The compiled binary (bun build.ts) reads /dev/kmsg in event mode: its Worker
// script is in the binary, and records reach a real nats-server as they come.
// The binary runs with src/ hidden (an empty tmpfs over it, in a mount
// namespace of its own): a binary that found the script in the source tree
// would pass here and fail in the image. Needs root; skipped otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { constants, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, stopAllNatsServers } from "../../helpers/nats-server.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../../helpers/cleanup.ts";
import { endpointsUrl, logLines, spawnAgent, writeConfig } from "../../helpers/agent.ts";
import { collectLines } from "../../helpers/lines.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";
import { can } from "./helpers.ts";
import { buildBinary, canHideSource, withSourceHidden } from "../../helpers/binary.ts";

const KMSG = "/dev/kmsg";
const writable = can(KMSG, constants.R_OK) && can(KMSG, constants.W_OK);
const dir = makeTempDir("kernel-binary");
afterAll(async () => {
  await stopAllNatsServers();
  removeTempDir(dir);
});

describe("kernel collector in the compiled binary", () => {
  test.skipIf(!writable || !canHideSource)(
    "reads /dev/kmsg by events: 20 records written reach a NATS subscriber, /status says event, SIGTERM ends it",
    async () => {
      const binary = join(dir, "tapio-collectors");
      buildBinary(binary);
      const server = await startNatsServer({ jetstream: false });
      const nonce = `${process.pid}-${Date.now()}`;
      const rules = join(dir, "rules.json");
      writeFileSync(rules, JSON.stringify({ plugin: "kmsg", source: "binary", rules: [{ type: "temporary", reason: "BinaryMarker", pattern: `tapio binary ${nonce} \\d+` }] }));
      const config = writeConfig(`
nats:
  url: ${server.url}
  subject: kmsgbin
  mode: core
collectors:
  kernel:
    config: { rule_files: [${rules}], builtin_rules: false }
`);
      const nc = await connect({ servers: server.url });
      const arrivedAt: number[] = [];
      const messages: string[] = [];
      nc.subscribe("kmsgbin.>", {
        callback: (_err, msg) => {
          const event = msg.json<{ event_data: { custom: { reason: string; message: string } } }>();
          if (event.event_data.custom.reason !== "BinaryMarker") return;
          arrivedAt.push(performance.now());
          messages.push(event.event_data.custom.message);
        },
      });
      await nc.flush();
      const hidden = withSourceHidden(binary);
      const agent = spawnAgent(["--config", config], { command: hidden });
      killAtExit(agent.pid);
      const out = collectLines(agent.stdout);
      try {
        const url = await endpointsUrl(out.lines);
        const kmsgMode = async () => {
          const status = (await (await fetch(`${url}/status`)).json()) as { collectors: Array<{ name: string; sources?: Record<string, { mode: string }> }> };
          return status.collectors.find((c) => c.name === "kernel")?.sources?.kmsg?.mode;
        };
        await waitFor(async () => (await kmsgMode()) === "event", "/status: kernel reads kmsg by events", 10_000);
        const latencies: number[] = [];
        for (let i = 0; i < 20; i++) {
          const written = performance.now();
          writeFileSync(KMSG, `<3>tapio binary ${nonce} ${i}\n`);
          await waitFor(() => arrivedAt.length > i, `record ${i} on the subscription`, 5000, 1);
          latencies.push(arrivedAt[i]! - written);
        }
        const sorted = latencies.toSorted((a, b) => a - b);
        console.log(`binary: kmsg write -> NATS subscriber, 20 records: p50 ${sorted[9]!.toFixed(2)} ms, p99 ${sorted[19]!.toFixed(2)} ms`);
        expect(messages).toEqual(latencies.map((_, i) => `tapio binary ${nonce} ${i}`));
        // Polling every read_interval (1 s) would take ~500 ms on average.
        expect(sorted[19]!).toBeLessThan(100);
        const stopping = performance.now();
        agent.kill("SIGTERM");
        expect(await agent.exited).toBe(0);
        spare(agent.pid);
        expect(performance.now() - stopping).toBeLessThan(5 * PROMPTLY_MS);
        await out.ended;
        expect(logLines(out.lines.join("\n")).some((l) => l.source === "kmsg" && l.mode === "event")).toBe(true);
      } finally {
        agent.kill("SIGKILL");
        await nc.close();
      }
    },
    180_000,
  );
});
