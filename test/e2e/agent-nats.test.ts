// The agent as a process against a real nats-server: --once delivery from
// source and from the compiled binary, graceful SIGTERM, fatal stream mismatch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort, startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { logLines, REPO, runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { streamCount } from "../fault/harness.ts";

let server: NatsServer;
let binary: string;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  binary = join(makeTempDir("bin"), "tapio-collectors");
  const build = Bun.spawnSync([process.execPath, "build.ts", "--outfile", binary], { cwd: REPO, stderr: "pipe", stdout: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}, 120_000);

afterAll(stopAllNatsServers);

function agentConfig(opts: { subject: string; stream?: string; mode: "core" | "jetstream"; count: number; rate?: number; extra?: string }): string {
  return writeConfig(`
orchestrator:
  workers: 4
  shutdown_timeout: 20s
nats:
  url: ${server.url}
  subject: ${opts.subject}
  mode: ${opts.mode}
  stream: { name: ${opts.stream ?? "UNUSED"} }
collectors:
  synthetic:
    config: { count: ${opts.count}, rate: ${opts.rate ?? 0}, payload_bytes: 1024 }
${opts.extra ?? ""}`);
}

async function streamIds(stream: string): Promise<string[]> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const ids: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      expect(m!.header.get("Nats-Msg-Id")).toBe(m!.json<{ event_id: string }>().event_id);
      ids.push(m!.header.get("Nats-Msg-Id"));
    }
    return ids;
  } finally {
    await nc.close();
  }
}

describe("agent against nats-server", () => {
  test("compiled binary: version prints the agent and Bun versions", async () => {
    const r = await runAgent(["version"], { command: [binary] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tapio-collectors \d+\.\d+\.\d+ \(bun \d+\.\d+\.\d+, linux\/x64\)/);
  });

  test("compiled binary, JetStream, --once with count N: exactly N events in the stream, each once", async () => {
    const N = 3000;
    const file = agentConfig({ subject: "bin.js", stream: "BIN_JS", mode: "jetstream", count: N });
    const r = await runAgent(["--once", "--config", file], { command: [binary] });
    expect(r.code).toBe(0);
    const ids = await streamIds("BIN_JS");
    expect(ids.length).toBe(N);
    expect(new Set(ids).size).toBe(N);
    const done = logLines(r.stdout).find((l) => l.msg.startsWith("shutdown complete"));
    expect(done).toMatchObject({ accepted: N, published: N, in_spool: 0, lost: 0, dropped: 0 });
  }, 60_000);

  test("compiled binary, core mode, --once: a subscriber receives exactly N events", async () => {
    const N = 2000;
    const nc = await connect({ servers: server.url });
    const seen = new Set<string>();
    let total = 0;
    const sub = nc.subscribe("bin.core.>", {
      callback: (_err, msg) => {
        total++;
        seen.add(msg.headers!.get("Nats-Msg-Id"));
      },
    });
    await nc.flush();
    const file = agentConfig({ subject: "bin.core", mode: "core", count: N });
    const r = await runAgent(["--once", "-c", file], { command: [binary] });
    expect(r.code).toBe(0);
    await nc.flush();
    await waitFor(() => total >= N, `${N} messages on the subscription`);
    sub.unsubscribe();
    await nc.close();
    expect(total).toBe(N);
    expect(seen.size).toBe(N);
  }, 60_000);

  test("SIGTERM: collectors stop, the queue drains, the agent logs what it published and exits 0", async () => {
    const file = agentConfig({ subject: "term", stream: "TERM", mode: "jetstream", count: 0, rate: 2000 });
    const proc = spawnAgent(["--config", file]);
    const stdout = new Response(proc.stdout).text();
    await waitFor(async () => ((await streamCount(server.url, "TERM")) ?? 0) > 500, "500 events in the stream", 10_000);
    proc.kill("SIGTERM");
    const code = await proc.exited;
    const logs = logLines(await stdout);
    expect(code).toBe(0);
    const done = logs.find((l) => l.msg.startsWith("shutdown complete"));
    expect(done).toBeDefined();
    expect(done).toMatchObject({ in_spool: 0, lost: 0 });
    expect(done!.published).toBeGreaterThan(500);
    const ids = await streamIds("TERM");
    expect(ids.length).toBe(done!.published);
  }, 30_000);

  test("an existing stream that does not cover the subjects stops the agent at start (exit 1)", async () => {
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "NARROW", subjects: ["narrow.events.kubelet"] });
    await nc.close();
    const file = agentConfig({ subject: "narrow.events", stream: "NARROW", mode: "jetstream", count: 10 });
    const r = await runAgent(["--once", "-c", file]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("NARROW");
    expect(r.stdout + r.stderr).toContain("narrow.events.>");
  }, 30_000);

  test("NATS down at start: the agent keeps collecting and delivers once the server comes up", async () => {
    const port = await freePort();
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 20s }
nats:
  url: nats://127.0.0.1:${port}
  subject: late.events
  stream: { name: LATE }
  reconnect_wait: 200ms
collectors:
  synthetic:
    config: { count: 500, rate: 0 }
`);
    const proc = spawnAgent(["--once", "-c", file]);
    const out = collectLines(proc.stdout);
    await waitFor(() => out.lines.some((l) => l.includes("cannot connect to NATS yet; retrying")), "the agent to find NATS down", 10_000);
    const late = await startNatsServer({ port });
    try {
      expect(await proc.exited).toBe(0);
      await out.ended;
      const done = logLines(out.lines.join("\n")).find((l) => l.msg.startsWith("shutdown complete"));
      expect(done).toMatchObject({ accepted: 500, published: 500, in_spool: 0, lost: 0 });
      const nc = await connect({ servers: late.url });
      const info = await (await jetstreamManager(nc)).streams.info("LATE");
      await nc.close();
      expect(info.state.messages).toBe(500);
    } finally {
      await late.stop();
    }
  }, 30_000);

  test("NATS never reachable: --once spools at shutdown_timeout, says how many, exits 1; the next start replays them", async () => {
    const port = await freePort();
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: "nats://127.0.0.1:${port}", reconnect_wait: 100ms, subject: replay.events, stream: { name: REPLAY } }
collectors:
  synthetic: { config: { count: 40, rate: 0 } }
`);
    const first = await runAgent(["--once", "-c", file]);
    expect(first.code).toBe(1);
    const done = logLines(first.stdout).find((l) => l.msg.startsWith("shutdown deadline passed"));
    expect(done).toMatchObject({ accepted: 40, published: 0, in_spool: 40, lost: 0 });
    expect(done!.msg).toContain("40 left in the spool");

    const later = await startNatsServer({ port });
    try {
      const replayFile = file.replace(/config\.yaml$/, "replay.yaml");
      await Bun.write(replayFile, (await Bun.file(file).text()).replace("count: 40", "count: 0").replace("synthetic: {", "synthetic: { enabled: false,"));
      const second = await runAgent(["--once", "-c", replayFile]);
      expect(second.code).toBe(0);
      const replayed = logLines(second.stdout).find((l) => l.msg.startsWith("shutdown complete"));
      expect(replayed).toMatchObject({ accepted: 0, inherited: 40, published: 40, in_spool: 0, lost: 0 });
      const nc = await connect({ servers: later.url });
      const info = await (await jetstreamManager(nc)).streams.info("REPLAY");
      await nc.close();
      expect(info.state.messages).toBe(40);
    } finally {
      await later.stop();
    }
  }, 30_000);
});

