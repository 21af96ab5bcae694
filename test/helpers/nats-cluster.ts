// A 3-node nats-server cluster with JetStream on loopback, for tests that need
// R3 streams or a node to fail over from. Each node is a startNatsServer
// (tracked, killed by stopAllNatsServers and the cleanup watchdog).
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort, startNatsServer, type NatsServer } from "./nats-server.ts";

export interface NatsCluster {
  nodes: NatsServer[];
  names: string[];
}

/** Three nodes (n1, n2, n3) routed to each other; wait with waitForJetStreamCluster before relying on JetStream. */
export async function startNatsCluster(): Promise<NatsCluster> {
  const routePorts = [await freePort(), await freePort(), await freePort()];
  const names = ["n1", "n2", "n3"];
  const nodes = await Promise.all(
    names.map((name, i) =>
      startNatsServer({
        config: `
server_name: ${name}
cluster {
  name: tapio
  listen: 127.0.0.1:${routePorts[i]}
  routes: [${routePorts
    .filter((_, j) => j !== i)
    .map((p) => `nats-route://127.0.0.1:${p}`)
    .join(", ")}]
}
`,
      }),
    ),
  );
  return { nodes, names };
}

/**
 * Waits until the cluster has a JetStream meta leader that sees all three
 * peers: an R3 probe stream can be created (then deleted).
 */
export async function waitForJetStreamCluster(nc: NatsConnection, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      // no account info check: without a meta leader it times out
      const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
      await jsm.streams.add({ name: "PROBE", subjects: ["probe.>"], num_replicas: 3 });
      await jsm.streams.delete("PROBE");
      return;
    } catch (err) {
      last = err;
      await Bun.sleep(250);
    }
  }
  throw new Error(`JetStream cluster not ready within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

/** "127.0.0.1:1234" or "nats://127.0.0.1:1234" -> 1234 */
export const portOf = (server: string): number => Number(/:(\d+)$/.exec(server)?.[1]);
