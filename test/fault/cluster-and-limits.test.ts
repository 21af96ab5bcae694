// Fault tests against real nats-server processes on
// loopback: a 3-node JetStream cluster losing the node the agent is connected
// to, a stream full at max_bytes with discard=new, and a user without publish
// permission. No NATS mocks. Each test stops the processes it started.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { portOf, startNatsCluster, waitForJetStreamCluster } from "../helpers/nats-cluster.ts";
import { spawnAgent, writeConfig } from "../helpers/agent.ts";
import { makeTempDir } from "../helpers/cleanup.ts";

afterAll(stopAllNatsServers);

// ---------------------------------------------------------------- helpers


type LogLine = Record<string, any>;

interface RunningAgent {
  /** JSON log lines so far (stdout) */
  readonly lines: LogLine[];
  /** resolves with the exit code; the agent is SIGKILLed after timeoutMs */
  readonly exited: Promise<number>;
  stderr(): Promise<string>;
  /** the first log line matching `pred`, waiting up to timeoutMs for it */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  kill(): void;
}

const running = new Set<RunningAgent>();
// an agent left over by a failed assertion must not outlive its test
afterEach(() => {
  for (const a of running) a.kill();
  running.clear();
});

/** Spawns the agent and follows its JSON log lines as they come. */
function startAgent(args: string[], timeoutMs = 35_000): RunningAgent {
  const proc = spawnAgent(args);
  const lines: LogLine[] = [];
  const read = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      for (let i = rest.indexOf("\n"); i >= 0; i = rest.indexOf("\n")) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        if (line.startsWith("{")) lines.push(JSON.parse(line));
      }
    }
  })();
  const stderr = new Response(proc.stderr).text();
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const exited = Promise.all([proc.exited, read]).then(([code]) => {
    clearTimeout(timer);
    return code;
  });
  const agent: RunningAgent = {
    lines,
    exited,
    stderr: () => stderr,
    async waitFor(pred, ms) {
      const until = Date.now() + ms;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (Date.now() > until || proc.exitCode !== null) {
          throw new Error(`no matching log line within ${ms} ms; log:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
        }
        await Bun.sleep(20);
      }
    },
    kill: () => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
  running.add(agent);
  return agent;
}

/** Runs the agent to its end: exit code, log lines and the final "shutdown ..." line. */
async function runToEnd(args: string[], timeoutMs = 35_000): Promise<{ code: number; lines: LogLine[]; final: LogLine; elapsedMs: number }> {
  const started = Date.now();
  const agent = startAgent(args, timeoutMs);
  const code = await agent.exited;
  running.delete(agent);
  const final = agent.lines.findLast((l) => /^shutdown (complete|deadline passed)/.test(l.msg ?? ""));
  if (!final) throw new Error(`agent exited ${code} without a shutdown line; stderr:\n${await agent.stderr()}\nlog:\n${agent.lines.map((l) => JSON.stringify(l)).join("\n")}`);
  return { code, lines: agent.lines, final, elapsedMs: Date.now() - started };
}

/** Every accepted event (and every inherited one) is published, discarded, in the spool or lost. */
function expectAccounting(final: LogLine): void {
  for (const k of ["accepted", "inherited", "published", "discarded", "in_spool", "lost"]) expect(typeof final[k]).toBe("number");
  expect(final.accepted + final.inherited).toBe(final.published + final.discarded + final.in_spool + final.lost);
}

/**
 * A JetStream manager for the test's own checks: no account-info request first, and a long
 * timeout, since a cluster that just lost a node answers API requests only once it has a leader.
 */
function manager(nc: NatsConnection) {
  return jetstreamManager(nc, { checkAPI: false, timeout: 15_000 });
}

async function withConnection<T>(servers: string | string[], opts: { user?: string; pass?: string }, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers, ...opts });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/**
 * Reads the whole stream with an ordered consumer; returns the event ids
 * (Nats-Msg-Id, checked against event_id in the body) of messages on
 * `subjectPrefix`.
 */
async function readStreamIds(nc: NatsConnection, stream: string, subjectPrefix: string, timeoutMs = 15_000): Promise<string[]> {
  const jsm = await manager(nc);
  const info = await jsm.streams.info(stream);
  const ids: string[] = [];
  if (info.state.messages === 0) return ids;
  // In a cluster that just lost a node the meta leader may still be re-elected:
  // creating the (ephemeral) consumer times out until then, so retry.
  const until = Date.now() + timeoutMs;
  let consumer: Awaited<ReturnType<ReturnType<typeof jetstream>["consumers"]["get"]>>;
  for (;;) {
    try {
      consumer = await jetstream(nc, { timeout: 2000 }).consumers.get(stream);
      break;
    } catch (err) {
      if (Date.now() > until) throw err;
      await Bun.sleep(250);
    }
  }
  const messages = await consumer.consume({ max_messages: 1000 });
  const timer = setTimeout(() => messages.stop(), timeoutMs);
  let seen = 0;
  for await (const m of messages) {
    seen++;
    if (m.subject.startsWith(`${subjectPrefix}.`)) {
      const id = m.headers?.get("Nats-Msg-Id") ?? "";
      expect(id).toBe(m.json<{ event_id: string }>().event_id);
      ids.push(id);
    }
    if (m.info.pending === 0) break;
  }
  clearTimeout(timer);
  messages.stop();
  expect(seen).toBe(info.state.messages);
  return ids;
}

function expectExactlyOnce(ids: string[], n: number): void {
  expect(new Set(ids).size).toBe(ids.length); // no duplicates
  expect(ids.length).toBe(n); // no loss
}

/** Log lines worth showing in a report: warnings and errors, and the connection and circuit changes. */
function notable(lines: LogLine[]): string[] {
  return lines
    .filter((l) => l.level !== "info" || /connected|reconnected|circuit|healthy|shutdown|spool/.test(l.msg))
    .map((l) => `${l.level}: ${l.msg}${l.reason ? ` [reason=${l.reason}]` : ""}${l.error ? ` (${l.error})` : ""}${l.server ? ` (server=${l.server})` : ""}`);
}

/** The agent's /status documents, polled while it runs (the HTTP endpoint it logs at start). */
function pollStatus(agent: RunningAgent): { docs: Array<Record<string, any>>; stop: () => Promise<void> } {
  const docs: Array<Record<string, any>> = [];
  let stopped = false;
  const loop = (async () => {
    let url: string | undefined;
    while (!stopped) {
      url ??= agent.lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("HTTP endpoints on"))?.url;
      if (url) {
        try {
          docs.push((await (await fetch(`${url}/status`, { signal: AbortSignal.timeout(1000) })).json()) as Record<string, any>);
        } catch {
          // not up yet, or already gone
        }
      }
      await Bun.sleep(100);
    }
  })();
  return {
    docs,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/**
 * Shared by e1 and e2: a first --once run whose events NATS refuses, then a
 * second run (synthetic disabled) on the same spool once NATS takes them.
 */
async function refusedThenReplayed(o: {
  label: string;
  server: NatsServer;
  subject: string;
  stream: string;
  /** nats keys for each run, e.g. credentials */
  firstAuth: string;
  replayAuth: string;
  /** the error reason the publisher reports */
  reason: string;
  /** what the server said */
  error: RegExp;
  /** between the runs: let NATS take the events */
  fix: () => Promise<void>;
  readIds: () => Promise<string[]>;
}): Promise<void> {
  const t0 = Date.now();
  const N = 500;
  const subject = `${o.subject}.synthetic`;
  const spool = join(makeTempDir("spool"), "spool.db");
  // spill_after 500ms and failure_threshold 3: the circuit opens within ~2 s of the 4 s shutdown_timeout
  const file = writeConfig(`
orchestrator: { shutdown_timeout: 4s }
nats:
  url: ${o.server.url}
  subject: ${o.subject}
  stream: { name: ${o.stream} }
  circuit_breaker: { failure_threshold: 3 }
${o.firstAuth}
spool: { path: ${spool}, spill_after: 500ms }
collectors:
  synthetic: { config: { count: ${N}, rate: 0, payload_bytes: 512 } }
`);
  const started = Date.now();
  const agent = startAgent(["--once", "--config", file]);
  const status = pollStatus(agent);
  const code = await agent.exited;
  await status.stop();
  running.delete(agent);
  const firstMs = Date.now() - started;
  const lines = agent.lines;
  console.log(`[${o.label}] first run (${firstMs} ms, exit ${code}):\n  ${notable(lines).join("\n  ")}`);
  const final = lines.findLast((l) => /^shutdown (complete|deadline passed)/.test(l.msg ?? ""));
  if (!final) throw new Error(`agent exited ${code} without a shutdown line; stderr:\n${await agent.stderr()}`);

  // a clear error naming the cause
  const failed = lines.find((l) => l.msg === "publish failed; retrying" && l.reason === o.reason);
  expect(failed).toBeDefined();
  expect(failed!.error).toMatch(o.error);
  expect(failed!.events).toBeGreaterThan(0);
  // the subject's circuit opens, naming the cause
  const opened = lines.find((l) => l.subject === subject && l.to === "open");
  expect(opened).toBeDefined();
  expect(opened!.msg).toMatch(new RegExp(`${o.reason}|${o.error.source}`, "i"));
  // health degraded, in the log
  const degraded = lines.filter((l) => l.msg?.startsWith("agent degraded"));
  expect(degraded.length).toBeGreaterThan(0);
  expect(degraded.some((l) => l.msg.includes(`circuit open for ${subject}`))).toBe(true);
  // nothing silently lost: all in the spool, exit 1
  expect(code).toBe(1);
  expectAccounting(final);
  expect(final).toMatchObject({ accepted: N, inherited: 0, published: 0, discarded: 0, dropped: 0, in_spool: N, lost: 0 });
  expect(final.msg).toContain(`${N} left in the spool`);
  const password = /password: (\S+)/.exec(o.firstAuth)?.[1];
  if (password) expect(JSON.stringify(lines)).not.toContain(password);
  // and counted: /status while it ran
  const last = status.docs.at(-1);
  expect(status.docs.length).toBeGreaterThan(0);
  expect(last!.publish_errors[o.reason]).toBeGreaterThan(0);
  expect(status.docs.some((d) => d.health?.state === "degraded")).toBe(true);
  expect(status.docs.some((d) => d.delivery?.circuits?.some((c: any) => c.subject === subject && c.state === "open"))).toBe(true);

  await o.fix();

  const replay = writeConfig(`
orchestrator: { shutdown_timeout: 10s }
nats:
  url: ${o.server.url}
  subject: ${o.subject}
  stream: { name: ${o.stream} }
${o.replayAuth}
spool: { path: ${spool} }
collectors:
  synthetic: { enabled: false }
`);
  const second = await runToEnd(["--once", "--config", replay]);
  console.log(`[${o.label}] replay (${second.elapsedMs} ms, exit ${second.code}):\n  ${notable(second.lines).join("\n  ")}`);
  expect(second.code).toBe(0);
  expectAccounting(second.final);
  expect(second.final).toMatchObject({ accepted: 0, inherited: N, published: N, discarded: 0, in_spool: 0, lost: 0 });
  const ids = await o.readIds();
  expectExactlyOnce(ids, N);
  console.log(
    `[${o.label}] first run ${firstMs} ms exit ${code}, final ${JSON.stringify(pick(final))}; /status polled ${status.docs.length}x, ` +
      `last publish_errors ${JSON.stringify(last?.publish_errors)}; replay ${second.elapsedMs} ms exit ${second.code}, final ${JSON.stringify(pick(second.final))}; ` +
      `stream ${ids.length} ids, ${new Set(ids).size} unique; total ${Date.now() - t0} ms`,
  );
}

function pick(final: LogLine) {
  const { accepted, inherited, published, discarded, dropped, in_spool, lost } = final;
  return { accepted, inherited, published, discarded, dropped, in_spool, lost };
}

// ---------------------------------------------------------------- c. cluster

describe("fault: cluster and limits", () => {
  test("c. 3-node cluster, R3 stream: SIGKILL the node the agent is connected to mid-run; no loss, no duplicates", async () => {
    const t0 = Date.now();
    const { nodes, names } = await startNatsCluster();
    const urls = nodes.map((n) => n.url);
    await withConnection(urls, {}, (nc) => waitForJetStreamCluster(nc));
    const tReady = Date.now();

    const RATE = 2000;
    const N = 16_000; // ~8 s at 2000/s
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 20s }
nats:
  url: [${urls.join(", ")}]
  subject: cluster.events
  stream: { name: CLUSTER, replicas: 3 }
  reconnect_wait: 250ms
  timeout: 2s
collectors:
  synthetic: { config: { count: ${N}, rate: ${RATE}, payload_bytes: 512 } }
`);
    const agent = startAgent(["--once", "--config", file]);
    const connected = await agent.waitFor((l) => l.msg === "connected to NATS", 10_000);
    await agent.waitFor((l) => l.msg === "JetStream stream ready", 10_000);
    const victimIndex = nodes.findIndex((n) => n.port === portOf(connected.server));
    expect(victimIndex).toBeGreaterThanOrEqual(0);
    const victim = nodes[victimIndex]!;

    await Bun.sleep(3000);
    const tKill = Date.now();
    await victim.kill("SIGKILL");

    const reconnected = await agent.waitFor((l) => l.msg === "reconnected to NATS", 10_000);
    const tReconnected = Date.now();
    expect(portOf(reconnected.server)).not.toBe(victim.port);
    expect(nodes.some((n, i) => i !== victimIndex && n.port === portOf(reconnected.server))).toBe(true);

    const code = await agent.exited;
    running.delete(agent);
    const tExit = Date.now();
    const lines = agent.lines;
    const final = lines.findLast((l) => /^shutdown (complete|deadline passed)/.test(l.msg ?? ""))!;
    console.log(`[c] agent log:\n  ${notable(lines).join("\n  ")}`);
    expect(final).toBeDefined();
    expect(code).toBe(0);
    expectAccounting(final);
    expect(final).toMatchObject({ accepted: N, inherited: 0, published: N, discarded: 0, in_spool: 0, lost: 0 });
    expect(final.msg).toStartWith("shutdown complete");

    const survivors = nodes.filter((_, i) => i !== victimIndex).map((n) => n.url);
    const { ids, replicas } = await withConnection(survivors, {}, async (nc) => {
      const info = await (await manager(nc)).streams.info("CLUSTER");
      return { ids: await readStreamIds(nc, "CLUSTER", "cluster.events"), replicas: info.config.num_replicas };
    });
    expect(replicas).toBe(3);
    expectExactlyOnce(ids, N);

    console.log(
      `[c] cluster ready in ${tReady - t0} ms; agent on ${names[victimIndex]} (${connected.server}), killed at +${tKill - tReady} ms; ` +
        `reconnected to ${reconnected.server} ${tReconnected - tKill} ms later; exit ${code} ${tExit - tKill} ms after the kill; ` +
        `stream ${ids.length} ids, ${new Set(ids).size} unique; total ${Date.now() - t0} ms\n  ` +
        `final: ${JSON.stringify({ ...final, agent: undefined, time: undefined, level: undefined })}`,
    );
    await Promise.all(nodes.map((n) => n.stop()));
  }, 60_000);

  // ------------------------------------------------------------ e1. stream full

  test("e1. stream at max_bytes with discard=new: stream_full errors, circuit opens, degraded, all spooled (exit 1); replayed once room is made", async () => {
    const server = await startNatsServer();
    const STREAM = "FULL";
    const SUBJECT = "full.events";
    let filler = 0;
    let fullError = "";
    await withConnection(server.url, {}, async (nc) => {
      const jsm = await manager(nc);
      await jsm.streams.add({ name: STREAM, subjects: [`${SUBJECT}.>`], max_bytes: 64 * 1024, discard: DiscardPolicy.New });
      const js = jetstream(nc);
      // 1 KiB messages until one is refused, then empty ones: no agent event fits any more
      for (const size of [1024, 0]) {
        for (;;) {
          try {
            await js.publish(`${SUBJECT}.filler`, new Uint8Array(size));
            filler++;
          } catch (err) {
            fullError = (err as Error).message;
            break;
          }
        }
      }
    });
    expect(fullError).toMatch(/maximum bytes exceeded/i);
    console.log(`[e1] stream ${STREAM} filled with ${filler} messages; the next one: "${fullError}"`);

    await refusedThenReplayed({
      label: "e1",
      server,
      subject: SUBJECT,
      stream: STREAM,
      firstAuth: "",
      replayAuth: "",
      reason: "stream_full",
      error: /maximum bytes exceeded/i,
      // make room: drop the filler, and raise the limit above 500 events
      fix: () =>
        withConnection(server.url, {}, async (nc) => {
          const jsm = await manager(nc);
          await jsm.streams.purge(STREAM);
          const info = await jsm.streams.info(STREAM);
          await jsm.streams.update(STREAM, { ...info.config, max_bytes: 8 * 1024 * 1024 });
        }),
      readIds: () => withConnection(server.url, {}, (nc) => readStreamIds(nc, STREAM, SUBJECT)),
    });
    await server.stop();
  }, 60_000);

  // ------------------------------------------------------------ e2. no publish permission

  test("e2. user without publish permission: permission errors, circuit opens, degraded, all spooled (exit 1); a permitted user replays them once", async () => {
    const server = await startNatsServer({
      config: `
authorization {
  users: [
    { user: admin, password: adminpw }
    { user: reader, password: readerpw, permissions: { publish: { deny: ["tapio.events.>"] }, subscribe: ">" } }
  ]
}
`,
    });
    const STREAM = "TAPIO_PERM";
    const admin = { user: "admin", pass: "adminpw" };
    await withConnection(server.url, admin, async (nc) => {
      await (await manager(nc)).streams.add({ name: STREAM, subjects: ["tapio.events.>"] });
    });

    await refusedThenReplayed({
      label: "e2",
      server,
      subject: "tapio.events",
      stream: STREAM,
      firstAuth: "  username: reader\n  password: readerpw",
      replayAuth: "  username: admin\n  password: adminpw",
      reason: "permission",
      error: /permissions violation for publish to "tapio\.events\.synthetic"/i,
      fix: async () => {},
      readIds: () => withConnection(server.url, admin, (nc) => readStreamIds(nc, STREAM, "tapio.events")),
    });
    await server.stop();
  }, 60_000);
});
