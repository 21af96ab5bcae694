// The README's NATS claims on the agent as a process: the server shows the
// connection under nats.name, and by default the agent reconnects forever
// (the Go original gave up after 10 attempts), counted in
// orchestrator_nats_reconnects_total.
import { afterAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { spawnAgent, writeConfig, endpointsUrl } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

const GO_ORIGINAL_ATTEMPTS = 10;

describe("README NATS settings", () => {
  test("the server shows the connection under nats.name; after more than 10 failed reconnect attempts the agent still reconnects", async () => {
    const monitorPort = await freePort();
    const server = await startNatsServer({ jetstream: false, config: `http: "127.0.0.1:${monitorPort}"\n` });
    // No max_reconnects: the default is under test. A short reconnect_wait keeps the test quick.
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core, reconnect_wait: 20ms }
collectors:
  synthetic: { config: { rate: 20 } }
`);
    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const url = await endpointsUrl(out.lines);
      const status = async () => (await (await fetch(`${url}/status`)).json()) as { delivery: { nats: { connected: boolean } } };
      await waitFor(async () => (await status()).delivery.nats.connected, "connected to NATS", 10_000);

      const connz = (await (await fetch(`http://127.0.0.1:${monitorPort}/connz`)).json()) as { connections: Array<{ name?: string }> };
      expect(connz.connections.map((c) => c.name)).toContain("tapio-collectors");

      // The server goes away; whatever then listens on its port hangs up on each attempt.
      await server.kill("SIGKILL");
      let attempts = 0;
      const refuser = createServer((socket) => {
        attempts++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => refuser.listen(server.port, "127.0.0.1", resolve));
      try {
        await waitFor(() => attempts > GO_ORIGINAL_ATTEMPTS + 2, "more reconnect attempts than the Go original made", 20_000);
      } finally {
        await new Promise((resolve) => refuser.close(resolve));
      }
      await server.restart();
      await waitFor(async () => (await status()).delivery.nats.connected, "reconnected to NATS", 20_000);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(Number(/^orchestrator_nats_reconnects_total{destination="default"} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
    }
  }, 60_000);
});
