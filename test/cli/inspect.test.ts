// status, tail and top, run as a person would, against a real agent and a
// real nats-server: one agent that published a known count (JetStream), one
// that keeps publishing at a known rate (core NATS).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "@nats-io/transport-node";
import { freePort, startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import type { StatusDocument } from "../../src/http/server.ts";
import pkg from "../../package.json" with { type: "json" };
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

const COUNT = 750;
const RATE = 200;
const noStack = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+/m);

interface RunningAgent {
  url: string;
  config: string;
  stop(): Promise<number>;
}

/** Starts the agent and resolves once it logged where its HTTP endpoints are. */
async function startAgent(yaml: string): Promise<RunningAgent> {
  const config = writeConfig(yaml);
  const proc = spawnAgent(["run", "--config", config]);
  killAtExit(proc.pid);
  const stderr = new Response(proc.stderr).text();
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let url: string | undefined;
  const deadline = Date.now() + 10_000;
  while (url === undefined) {
    const timeout = Bun.sleep(Math.max(0, deadline - Date.now())).then(() => "timeout" as const);
    const chunk = await Promise.race([reader.read(), timeout]);
    if (chunk === "timeout" || chunk.done) {
      proc.kill("SIGKILL");
      throw new Error(`the agent did not log its HTTP address; stdout:\n${text}\nstderr:\n${await stderr}`);
    }
    text += decoder.decode(chunk.value, { stream: true });
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg?.startsWith("HTTP endpoints on") && entry.url) url = entry.url;
    }
  }
  // keep draining its log so the pipe never fills
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    url,
    config,
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      spare(proc.pid);
      return code;
    },
  };
}

async function getStatus(url: string): Promise<StatusDocument> {
  return (await (await fetch(`${url}/status`)).json()) as StatusDocument;
}

/** A process that should end by itself, killed if it does not within `ms`. */
async function runBounded(args: string[], ms = 15_000) {
  const started = performance.now();
  const r = await runAgent(args, { timeoutMs: ms });
  return { ...r, ms: performance.now() - started };
}

let server: NatsServer;
let counted: RunningAgent;
let live: RunningAgent;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  [counted, live] = await Promise.all([
    startAgent(`
nats:
  url: ${server.url}
  subject: inspect.counted
  mode: jetstream
  stream: { name: INSPECT_COUNTED }
collectors:
  synthetic:
    config: { count: ${COUNT}, rate: 0 }
`),
    startAgent(`
nats:
  url: ${server.url}
  subject: inspect.live
  mode: core
collectors:
  synthetic:
    config: { rate: ${RATE} }
`),
  ]);
  // the count-limited one has finished once every event is published
  await waitFor(async () => (await getStatus(counted.url)).collectors[0]?.events_published === COUNT, `the counted agent to publish ${COUNT} events`, 15_000, 50);
}, 30_000);

afterAll(async () => {
  await Promise.all([counted?.stop(), live?.stop()]);
  await stopAllNatsServers();
});

describe("status", () => {
  test("the table shows the collector with its exact counts, queue, NATS, spool and circuits", async () => {
    const r = await runBounded(["status", "--url", counted.url]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`tapio-collectors ${pkg.version} (bun `);
    expect(r.stdout).toContain("ready:  yes (NATS connected)");
    expect(r.stdout).toContain("health: healthy");
    expect(r.stdout).toMatch(/^\s+NAME\s+STATE\s+ACCEPTED\s+PUBLISHED\s+DROPPED\s+SPOOLED\s+RESTARTS\s+LAST EVENT\s+LAST ERROR$/m);
    // name, state, accepted, published, dropped, spooled, restarts, last event age, no error
    // spooled: a burst sent before the stream was ready goes through the spool first, so any count
    expect(r.stdout).toMatch(/^\s+synthetic\s+running\s+750\s+750\s+0\s+[\d,]+\s+0\s+\S+ ago\s+-$/m);
    expect(r.stdout).toMatch(/^\s+0 event\(s\), 0 B, 0\.0% full$/m);
    expect(r.stdout).toMatch(/^\s+jetstream, connected to 127\.0\.0\.1:\d+, 0 reconnect\(s\)$/m);
    expect(r.stdout).toMatch(/^\s+0 event\(s\), 0 B \(.*spool\.db\)$/m);
    expect(r.stdout).toMatch(/^\s+inspect\.counted\.synthetic\s+closed\s+0\s+0$/m);
  });

  test("--json prints the /status document", async () => {
    const r = await runBounded(["status", "--json", "--url", counted.url]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as StatusDocument;
    expect(doc.agent).toMatchObject({ version: pkg.version, ready: true, ready_reason: "NATS connected" });
    expect(doc.agent.uptime_seconds).toBeGreaterThan(0);
    expect(doc.health).toEqual({ state: "healthy", problems: [] });
    expect(doc.collectors).toHaveLength(1);
    expect(doc.collectors[0]).toMatchObject({ name: "synthetic", state: "running", events_accepted: COUNT, events_published: COUNT, events_dropped: {}, restarts: 0 });
    expect(doc.collectors[0]!.events_spooled).toBeLessThanOrEqual(COUNT);
    expect(doc.queue).toMatchObject({ length: 0, bytes: 0 });
    expect(doc.delivery.nats).toMatchObject({ mode: "jetstream", connected: true });
    expect(doc.delivery.spool).toMatchObject({ depth: 0 });
    expect(doc.delivery.circuits.map((c) => c.subject)).toEqual(["inspect.counted.synthetic"]);
  });

  test("--config takes the address from http.listen; a trailing /status and no scheme are fine", async () => {
    const port = new URL(counted.url).port;
    const file = writeConfig(`http:\n  listen: "127.0.0.1:${port}"\nnats:\n  url: ${server.url}\n`);
    const viaConfig = await runBounded(["status", "--config", file]);
    expect(viaConfig.code).toBe(0);
    expect(viaConfig.stdout).toMatch(/^\s+synthetic\s+running\s+750\s+750\s/m);
    const bare = await runBounded(["status", "-u", `127.0.0.1:${port}/status`]);
    expect(bare.code).toBe(0);
    expect(bare.stdout).toMatch(/^\s+synthetic\s+running\s+750\s+750\s/m);
    // port 0 cannot be looked up: a usage error that says what to do
    const zero = await runBounded(["status", "--config", counted.config]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("pass --url");
    noStack(zero.stderr);
  });
});

describe("tail", () => {
  const LINE = /^\d\d:\d\d:\d\d\.\d{3} synthetic\s+synthetic\.event\s+info\s+custom\.seq=(\d+) custom\.padding="x+…?/;

  test("--count 5 --collector synthetic prints 5 events and exits 0", async () => {
    const r = await runBounded(["tail", "--nats", server.url, "--subject", "inspect.live", "--collector", "synthetic", "--count", "5"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    const seqs = lines.map((l) => {
      expect(l).toMatch(LINE);
      return Number(LINE.exec(l)![1]);
    });
    expect(new Set(seqs).size).toBe(5);
    expect(r.stderr).toContain(`tailing inspect.live.synthetic and inspect.live.synthetic.> on ${server.url}`);
    expect(r.ms).toBeLessThan(10_000);
  });

  test("--json --type synthetic.* with --config prints each event's JSON", async () => {
    // the config gives the server and the subject prefix (inspect.live)
    const r = await runBounded(["tail", "--config", live.config, "--json", "--type", "synthetic.*", "--count", "3"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const event = JSON.parse(line);
      expect(event).toMatchObject({ type: "synthetic.event", source: "synthetic", severity: "info" });
      expect(event.event_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(event.event_data.custom.seq).toMatch(/^\d+$/);
    }
    expect(r.stderr).toContain("tailing inspect.live.> on");
  });

  test("--type filters: an exact type matches, another prefix shows nothing", async () => {
    const exact = await runBounded(["tail", "--nats", server.url, "-s", "inspect.live", "-t", "synthetic.event", "--count", "1"]);
    expect(exact.code).toBe(0);
    expect(exact.stdout).toMatch(LINE);

    const proc = spawnAgent(["tail", "--nats", server.url, "--subject", "inspect.live", "--type", "kubelet.*"]);
    const stdoutText = new Response(proc.stdout).text();
    const err = collectLines(proc.stderr);
    // Subscribed (its header comes after the flush); then 50 events of another type go by.
    await waitFor(() => err.lines.some((l) => l.startsWith("tailing ")), "tail to subscribe", 10_000);
    const published = async () => (await getStatus(live.url)).collectors[0]!.events_published;
    const before = await published();
    await waitFor(async () => (await published()) >= before + 50, "50 more synthetic events", 10_000, 50);
    proc.kill("SIGINT"); // Ctrl-C
    const [stdout, code] = await Promise.all([stdoutText, proc.exited]);
    await err.ended;
    const stderr = err.lines.join("\n");
    expect(code).toBe(0);
    expect(stdout).toBe("");
    expect(stderr).toContain("(type kubelet.*)");
  });

  test("an undecodable message is a warning line, not a crash", async () => {
    const proc = spawnAgent(["tail", "--nats", server.url, "--subject", "inspect.garbage", "--count", "1"]);
    const stdoutText = new Response(proc.stdout).text();
    // tail says "tailing ..." once its subscription reached the server
    const reader = proc.stderr.getReader();
    let stderr = "";
    while (!stderr.includes("tailing")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      stderr += new TextDecoder().decode(chunk.value);
    }
    const nc = await connect({ servers: server.url });
    nc.publish("inspect.garbage.probe", "not json {");
    nc.publish("inspect.garbage.array", "[1,2]");
    nc.publish(
      "inspect.garbage.manual",
      JSON.stringify({ event_id: "x", timestamp: "2026-01-02T03:04:05.123456789Z", type: "manual.test", source: "manual", severity: "warning", event_data: { custom: { note: "hello world" } } }),
    );
    await nc.flush();
    await nc.close();
    const code = await proc.exited;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) stderr += new TextDecoder().decode(chunk.value);
    expect(code).toBe(0);
    expect(await stdoutText).toMatch(/^\d\d:\d\d:\d\d\.123 manual\s+manual\.test\s+warning\s+custom\.note="hello world"\n$/);
    expect(stderr).toMatch(/warning: undecodable message on inspect\.garbage\.probe \(10 bytes\): not JSON/);
    expect(stderr).toContain("warning: undecodable message on inspect.garbage.array (5 bytes): JSON but not an event object");
    noStack(stderr);
  });

  test("--collector shows the collector's subject and those below it (named instances, ingest's senders), no other", async () => {
    const proc = spawnAgent(["tail", "--nats", server.url, "--subject", "inspect.below", "--collector", "ingest", "--json", "--count", "3"]);
    const stdoutText = new Response(proc.stdout).text();
    const err = collectLines(proc.stderr);
    await waitFor(() => err.lines.some((l) => l.startsWith("tailing ")), "tail to subscribe", 10_000);
    const event = (type: string) =>
      JSON.stringify({ event_id: type, timestamp: "2026-01-02T03:04:05.123456789Z", type, source: "ingest", severity: "info", event_data: {} });
    const nc = await connect({ servers: server.url });
    nc.publish("inspect.below.ingestx", event("other.collector"));
    nc.publish("inspect.below.dns", event("other.dns"));
    nc.publish("inspect.below.ingest", event("bare.ingest"));
    nc.publish("inspect.below.ingest.cni", event("sender.cni"));
    nc.publish("inspect.below.ingest.x.app", event("named.app"));
    await nc.flush();
    await nc.close();
    const [stdout, code] = await Promise.all([stdoutText, proc.exited]);
    await err.ended;
    expect(code).toBe(0);
    expect(err.lines[0]).toStartWith("tailing inspect.below.ingest and inspect.below.ingest.> on");
    const types = stdout.trimEnd().split("\n").map((l) => JSON.parse(l).type);
    expect(types.sort()).toEqual(["bare.ingest", "named.app", "sender.cni"]);
  });

  test("unreachable NATS: exit 1 with a message naming the URL", async () => {
    const port = await freePort();
    const r = await runBounded(["tail", "--nats", `nats://127.0.0.1:${port}`, "--count", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`tapio-collectors: tail: cannot connect to NATS at nats://127.0.0.1:${port}`);
    noStack(r.stderr);
  });
});

describe("top", () => {
  test("--iterations 3 --interval 200ms without a terminal: 3 frames with rates > 0", async () => {
    const r = await runBounded(["top", "--url", live.url, "--iterations", "3", "--interval", "200ms"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\x1b["); // no screen clearing without a terminal
    const frames = r.stdout.split(/\n(?=tapio-collectors )/);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toContain("rates: average since start");
    for (const [i, frame] of frames.entries()) {
      if (i > 0) expect(frame).toMatch(/rates over the last \d+ms/);
      expect(frame).toMatch(/^NATS core connected to 127\.0\.0\.1:\d+, 0 reconnect\(s\)$/m);
      expect(frame).toMatch(/spool 0 \(0 B\)/);
      const publish = /^publish ([\d.,]+)\/s/m.exec(frame);
      expect(Number(publish![1]!.replace(/,/g, ""))).toBeGreaterThan(0);
      const row = /^synthetic\s+running\s+([\d.,]+)\s+([\d.,]+)\s+0\s+[\d,]+\s+0\s+0\s/m.exec(frame);
      expect(row).not.toBeNull();
      const [inRate, outRate] = [Number(row![1]!.replace(/,/g, "")), Number(row![2]!.replace(/,/g, ""))];
      expect(inRate).toBeGreaterThan(0);
      expect(outRate).toBeGreaterThan(0);
      // a 200/s collector, measured over 200 ms windows: loosely around its rate
      expect(outRate).toBeLessThan(RATE * 3);
    }
    // three frames 200 ms apart, plus the start of bun
    expect(r.ms).toBeLessThan(5000);
  });

  test("an unreachable agent: each frame says so, exit 1 after the last", async () => {
    const port = await freePort();
    const r = await runBounded(["top", "--url", `http://127.0.0.1:${port}`, "-n", "2", "-i", "100ms"]);
    expect(r.code).toBe(1);
    const said = r.stdout.match(new RegExp(`cannot reach the agent at http://127\\.0\\.0\\.1:${port}/status: connection refused`, "g"));
    expect(said).toHaveLength(2);
    expect(r.stderr).toContain(`top: the agent at http://127.0.0.1:${port}/status never answered`);
    noStack(r.stderr);
  });
});

describe("errors a person makes", () => {
  test("status: an unreachable agent is exit 1 naming the URL, without a stack", async () => {
    const port = await freePort();
    const r = await runBounded(["status", "--url", `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`tapio-collectors: cannot reach the agent at http://127.0.0.1:${port}/status: connection refused (is the agent running, with http.listen on this address?)\n`);
    // something that is not the agent
    const notAgent = await runBounded(["status", "--url", `${counted.url}/nope`]);
    expect(notAgent.code).toBe(1);
    expect(notAgent.stderr).toContain(`the agent at ${counted.url}/nope/status answered 404`);
    noStack(notAgent.stderr);
  });

  test("--help for each command", async () => {
    for (const command of ["status", "tail", "top"]) {
      const r = await runBounded([command, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: tapio-collectors ${command}`);
    }
    const main = await runBounded(["--help"]);
    for (const command of ["status", "tail", "top"]) expect(main.stdout).toContain(`tapio-collectors ${command}`);
  });

  test("bad flags are usage errors: exit 2, a message, no stack", async () => {
    const cases = [
      ["status", "--bogus"],
      ["status", "extra"],
      ["status", "--url", "ftp://host:1"],
      ["status", "--url", "http://"],
      ["tail", "--count", "0"],
      ["tail", "--count", "many"],
      ["tail", "--type", "a*b"],
      ["tail", "--subject", "tapio.>"],
      ["tail", "--collector", "a b"],
      ["tail", "--nats", "http://127.0.0.1:4222"],
      ["top", "--interval", "fast"],
      ["top", "--interval", "10ms"],
      ["top", "--iterations", "0"],
      ["top", "--iterations", "-1"],
    ];
    for (const args of cases) {
      const r = await runBounded(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/^tapio-collectors: /);
      noStack(r.stderr);
    }
  });
});
