// A few seconds of `npm run bench:node`'s simulated busy node, so the
// benchmark cannot rot unnoticed: the node builds, each fake answers, the
// read-loop baseline reads it, and the agent (from source) publishes from
// every collector, the events the node's activity must cause among them.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import dgram from "node:dgram";
import { join } from "node:path";
import { makeTempDir } from "../helpers/cleanup.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { sourceCommand } from "../helpers/agent.ts";
import { killAllAgents, startAgent } from "../../bench/lib/procs.ts";
import { DNS_NAME, startFakeNode } from "../../bench/node/fake-node.ts";
import { NODE_COLLECTORS, startEventCounter, writeNodeConfig } from "../../bench/node/agent.ts";
import { POD_COUNT } from "../../bench/node/pods.ts";
import type { ReadLoopOptions } from "../../bench/node/read-loop.ts";

afterAll(async () => {
  await killAllAgents();
  await stopAllNatsServers();
});

/** One A query, answered or not within a second. */
async function resolves(port: number, name: string): Promise<boolean> {
  const socket = dgram.createSocket("udp4");
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const query = new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
  const answered = new Promise<boolean>((resolve) => {
    socket.on("message", (m) => resolve(m[0] === 0x12 && m[1] === 0x34 && m.readUInt16BE(6) > 0));
    setTimeout(() => resolve(false), 1000);
  });
  socket.send(query, port, "127.0.0.1");
  const ok = await answered;
  socket.close();
  return ok;
}

describe("bench:node", () => {
  test("the simulated node builds, its fakes answer, and the agent publishes from every collector", async () => {
    const dir = makeTempDir("bench-node");
    const node = await startFakeNode(dir, { rxErrorEverySeconds: 1 });
    try {
      const { procRoot, cgroupRoot } = node.files;
      expect(readdirSync(procRoot).filter((n) => /^\d+$/.test(n))).toHaveLength(400);
      const podDirs = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (!e.isDirectory() ? [] : e.name.includes("-pod") ? [e.name] : podDirs(join(d, e.name))));
      expect(podDirs(join(cgroupRoot, "kubepods.slice"))).toHaveLength(POD_COUNT);

      const tls = { ca: readFileSync(node.caFile, "utf8") };
      const headers = { authorization: `Bearer ${readFileSync(node.tokenFile, "utf8").trim()}` };
      const get = async (url: string) => (await fetch(url, { headers, tls })).json() as Promise<Record<string, any>>;
      expect((await get(`${node.kubelet.url}/pods`)).items).toHaveLength(POD_COUNT);
      expect((await get(`${node.kubelet.url}/stats/summary`)).pods).toHaveLength(POD_COUNT);
      expect((await get(`${node.apiServer.url}/api/v1/pods?limit=500`)).items).toHaveLength(POD_COUNT);
      expect(await resolves(node.dns.port, DNS_NAME)).toBe(true);

      // The read-loop baseline: one round of each loop.
      const loops = { process: 1000, memory: 1000, network: 1000, kernel: 1000, vmstat: 1000 };
      const options: ReadLoopOptions = { procRoot, cgroupRoot, kmsgPath: node.files.kmsgPath, loops, once: true };
      const readLoop = Bun.spawn([process.execPath, join(import.meta.dir, "../../bench/node/read-loop.ts"), JSON.stringify(options)], { stdout: "pipe" });
      expect(await readLoop.exited).toBe(0);
      expect(JSON.parse(await new Response(readLoop.stdout).text())).toEqual({ rounds: { process: 1, memory: 1, network: 1, kernel: 1, vmstat: 1 } });

      // The agent, every collector at 1 s (dns also reporting healthy answers).
      const server = await startNatsServer({ jetstream: true });
      const counter = await startEventCounter(server.url, "BENCH_SMOKE", "bench.smoke");
      try {
        const config = writeNodeConfig({
          node,
          natsUrl: server.url,
          subject: "bench.smoke",
          stream: "BENCH_SMOKE",
          dir,
          collectors: NODE_COLLECTORS,
          oneSecond: true,
          extra: { dns: { emit_ok: true } },
        });
        const agent = startAgent(sourceCommand(), config);
        const base = await agent.http;
        await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, "the agent's /readyz", 10_000);
        node.startActivity({ processChurnPerSecond: 2, oomEverySeconds: 2, firstOomAfterSeconds: 1, watchChangeEverySeconds: 1 });
        const what = () => `an event from every collector and of every expected kind; so far ${JSON.stringify(Object.fromEntries(counter.byCollector))}, ${JSON.stringify(counter.found(node.expected))}`;
        await waitFor(
          () => {
            const found = counter.found(node.expected);
            return NODE_COLLECTORS.every((c) => (counter.byCollector.get(c) ?? 0) > 0) && Object.values(found).every((n) => n > 0);
          },
          what(),
          15_000,
          100,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\nnow: ${what()}\nagent log:\n${agent.log().slice(-3000)}`);
        });
        await agent.stop();
      } finally {
        node.stopActivity();
        await counter.stop();
      }
    } finally {
      node.stop();
    }
  }, 30_000);
});
