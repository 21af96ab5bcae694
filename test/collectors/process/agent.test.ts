// The process collector in the compiled binary, as root against a real
// nats-server (core): the connector's worker is inside the binary (src/ is
// hidden from it), /status
// says event mode, and a process's start and exit reach a NATS subscriber.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { endpointsUrl, spawnAgent, writeConfig } from "../../helpers/agent.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { collectLines } from "../../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { buildBinary, canHideSource, withSourceHidden } from "../../helpers/binary.ts";

const root = canHideSource;
let server: NatsServer;
let binary: string;

beforeAll(async () => {
  if (!root) return;
  server = await startNatsServer();
  binary = join(makeTempDir("process-bin"), "tapio-collectors");
  buildBinary(binary);
}, 120_000);

afterAll(stopAllNatsServers);

test.skipIf(!root)("compiled binary: event mode in /status; a process's start and exit reach NATS, dated by the kernel", async () => {
  const file = writeConfig(`
nats:
  url: ${server.url}
  mode: core
  subject: proc.bin
collectors:
  process: {}
`);
  const nc: NatsConnection = await connect({ servers: server.url });
  const received: Array<{ event: Record<string, any>; at: number }> = [];
  const sub = nc.subscribe("proc.bin.>");
  void (async () => {
    for await (const m of sub) received.push({ event: m.json(), at: performance.timeOrigin + performance.now() });
  })();
  // With src/ hidden (a mount namespace of its own), so the worker can only come from the binary.
  const hidden = withSourceHidden(binary);
  const agent = spawnAgent(["--config", file], { command: hidden });
  const out = collectLines(agent.stdout);
  try {
    const url = await endpointsUrl(out.lines);
    const mode = async () => {
      const status = (await (await fetch(`${url}/status`)).json()) as { collectors: Array<{ name: string; sources?: Record<string, unknown> }> };
      return status.collectors.find((c) => c.name === "process")?.sources?.proc;
    };
    await waitFor(async () => (await mode()) !== undefined, "the process collector's mode in /status", 10_000);
    expect(await mode()).toEqual({ mode: "event" });

    const child = Bun.spawn(["sleep", "0.2"], { stdout: "ignore", stderr: "ignore" });
    await child.exited;
    const mine = (kind: string) => received.find((r) => r.event.event_data.kernel?.event_type === kind && r.event.metadata.pid === child.pid);
    await waitFor(() => mine("exit") !== undefined, "the exit of sleep on NATS", 10_000);
    expect(mine("start")!.event.event_data.process).toMatchObject({ command: "sleep", arguments: ["sleep", "0.2"] });
    expect(mine("exit")!.event.event_data.custom).toEqual({ exit_code: "0" });
    const latency = (kind: string) => (mine(kind)!.at - Date.parse(mine(kind)!.event.timestamp)).toFixed(1);
    console.log(`kernel -> NATS subscriber: exec ${latency("start")} ms, exit ${latency("exit")} ms`);
  } finally {
    agent.kill("SIGTERM");
    await agent.exited;
    await nc.close();
  }
  expect(agent.exitCode).toBe(0);
}, 60_000);
