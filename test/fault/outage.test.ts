// Fault tests: real nats-server processes on loopback, the agent as a
// real process (from source). Each test starts its own server(s) and agents,
// is bounded in time, and asserts the delivery accounting of the agent's
// final log line: accepted + inherited = published + discarded + in_spool + lost.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { writeConfig } from "../helpers/agent.ts";
import { waitFor } from "../helpers/wait-for.ts";
import {
  MB,
  exitCode,
  expectAccounting,
  expectNoDuplicates,
  expectSeqs,
  endFaultTest,
  msgStartsWith,
  readStream,
  sampleAt,
  sampleRss,
  sampleStatus,
  statusUrl,
  readStatus,
  sleepUntil,
  spoolRows,
  startAgent,
  streamCount,
  type AgentProcess,
  type StatusSample,
} from "./harness.ts";

const RATE = 4000;
const COUNT = 40_000; // 10 s at RATE

/** Rows in the spool of a running agent, which holds it locked: read from a copy (0 while a copy is torn). */
function spoolCount(path: string): number {
  try {
    return spoolRows(path).length;
  } catch {
    return 0;
  }
}

// Each test's servers are thawed and stopped after it, even when it failed
// with one frozen: a stopped process would never act on stop()'s SIGTERM.
const servers: NatsServer[] = [];
async function newServer(): Promise<NatsServer> {
  const server = await startNatsServer();
  servers.push(server);
  return server;
}
afterEach(() => endFaultTest(servers));
afterAll(stopAllNatsServers);

interface AgentConfig {
  server: NatsServer;
  subject: string;
  stream: string;
  /** synthetic collector config; undefined: disabled */
  synthetic?: { rate: number; count: number };
  orchestrator?: string;
  /** a spool path to share between runs; a fresh one in a temp dir otherwise */
  spoolPath?: string;
}

function agentConfig(c: AgentConfig): string {
  const synthetic = c.synthetic
    ? `  synthetic:\n    config: { rate: ${c.synthetic.rate}, count: ${c.synthetic.count} }`
    : "  synthetic:\n    enabled: false";
  return writeConfig(`
orchestrator:
${c.orchestrator ?? "  shutdown_timeout: 30s"}
nats:
  url: ${c.server.url}
  subject: ${c.subject}
  stream: { name: ${c.stream} }
collectors:
${synthetic}
${c.spoolPath ? `spool:\n  path: ${c.spoolPath}\n` : ""}`);
}

/** The moment the synthetic collector starts emitting (the orchestrator logs it). */
async function collectorsStarted(agent: AgentProcess): Promise<number> {
  await agent.waitForLog(msgStartsWith("orchestrator started"), '"orchestrator started"');
  return Date.now();
}

function report(name: string, figures: Record<string, unknown>): void {
  console.log(`[fault ${name}] ${JSON.stringify(figures)}`);
}

describe("at-least-once delivery through faults", () => {
  test("a. JetStream: server SIGKILLed at 3 s, restarted on the same store and port at 6 s: all 40000 events once", async () => {
    const server = await newServer();
    const file = agentConfig({ server, subject: "fa.events", stream: "FAULT_A", synthetic: { rate: RATE, count: COUNT } });
    const agent = startAgent(["--once", "-c", file]);
    const t0 = await collectorsStarted(agent);
    await agent.waitForLog(msgStartsWith("JetStream stream ready"), "stream ready");

    await sleepUntil(t0, 3000);
    const beforeKill = (await streamCount(server.url, "FAULT_A")) ?? 0;
    await server.kill("SIGKILL");
    const killedAt = Date.now() - t0;
    await sleepUntil(t0, 6000);
    await server.restart();
    const restartedAt = Date.now() - t0;

    const code = await exitCode(agent, 35_000);
    expect({ code, stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
    const final = expectAccounting(agent.final(), { accepted: COUNT, inherited: 0, published: COUNT, in_spool: 0, lost: 0, discarded: 0 });
    expect(final.msg).toStartWith("shutdown complete");

    const messages = await readStream(server.url, "FAULT_A");
    expect(messages.length).toBe(COUNT);
    expectNoDuplicates(messages);
    expectSeqs(messages, COUNT);
    // the outage was real: the agent saw it and spooled through it
    expect(agent.lines.some(msgStartsWith("disconnected from NATS"))).toBe(true);
    expect(agent.lines.some(msgStartsWith("reconnected to NATS"))).toBe(true);
    expect(agent.lines.some((l) => /event\(s\) waiting in the spool/.test(l.msg))).toBe(true);

    const runMs = agent.endedAt! - t0;
    report("a", {
      stored_before_kill: beforeKill,
      killed_at_ms: killedAt,
      restarted_at_ms: restartedAt,
      run_ms: runMs,
      events_per_s: Math.round(COUNT / (runMs / 1000)),
      final: pick(final),
    });
  }, 90_000);

  // At 4000 events/s the drainer keeps the disk-mode spool nearly empty, so a
  // kill at an arbitrary moment often finds nothing in it. The second case
  // freezes the server before the kill: the spool then holds at least half a
  // second of events, some of them already stored by the server (published,
  // not yet acknowledged or removed), so the replay must be deduplicated by
  // Nats-Msg-Id.
  for (const { name, freezeAtMs } of [
    { name: "b. disk buffer, the agent SIGKILLed at 5 s", freezeAtMs: undefined },
    { name: "b'. disk buffer, server frozen at 4 s and the agent SIGKILLed once its spool holds half a second of events", freezeAtMs: 4000 },
  ]) {
    test(`${name}: a restart replays its spool; the stream holds every id that was spooled or stored, once`, async () => {
      const server = await newServer();
      const spoolPath = join(makeTempDir("spool-b"), "spool.db");
      const stream = freezeAtMs === undefined ? "FAULT_B" : "FAULT_B2";
      const common = { server, subject: `${stream.toLowerCase()}.events`, stream, spoolPath };
      const first = startAgent([
        "--once",
        "-c",
        agentConfig({ ...common, synthetic: { rate: RATE, count: COUNT }, orchestrator: "  shutdown_timeout: 30s\n  buffer: { type: disk }" }),
      ]);
      const t0 = await collectorsStarted(first);
      if (freezeAtMs !== undefined) {
        await sleepUntil(t0, freezeAtMs);
        await server.kill("SIGSTOP");
        // Killed once the spool holds half a second of events, not at a fixed
        // time: on a busy machine the agent spools more slowly.
        await waitFor(() => spoolCount(spoolPath) > RATE / 2, "the spool to hold half a second of events", 15_000, 100);
      } else {
        await sleepUntil(t0, 5000);
      }
      first.kill("SIGKILL");
      await first.exited;
      const killedAt = first.endedAt! - t0;
      expect(first.proc.signalCode).toBe("SIGKILL");
      expect(first.final()).toBeUndefined();
      if (freezeAtMs !== undefined) await server.kill("SIGCONT");

      // What the agent had accepted into the spool and not yet confirmed, and
      // what the server stored (once publishes the dead agent had sent have landed).
      const spooled = spoolRows(spoolPath);
      await stableStreamCount(server.url, stream);
      const stored = await readStream(server.url, stream);
      expectNoDuplicates(stored);
      const spooledIds = new Set(spooled.map((r) => r.id));
      expect(spooledIds.size).toBe(spooled.length);
      const storedIds = new Set(stored.map((m) => m.eventId));
      const atKill = new Set([...spooledIds, ...storedIds]);
      expect(stored.length).toBeGreaterThan(0);
      if (freezeAtMs !== undefined) expect(spooled.length).toBeGreaterThan(RATE / 2);
      // Spool and stream together hold the synthetic seqs 0..k-1, none missing in
      // between (what the collector emitted later was still in the in-memory queue).
      const k = atKill.size;
      const seqs = new Set<number>();
      for (const r of spooled) seqs.add(r.syntheticSeq);
      for (const m of stored) seqs.add(m.seq);
      expect(seqs.size).toBe(k);
      expect([...seqs].filter((s) => !(Number.isInteger(s) && s >= 0 && s < k))).toEqual([]);

      const second = startAgent(["--once", "-c", agentConfig({ ...common })]);
      const code = await exitCode(second, 30_000);
      expect({ code, stderr: second.stderr() }).toEqual({ code: 0, stderr: "" });
      const final = expectAccounting(second.final(), { accepted: 0, inherited: spooled.length, published: spooled.length, discarded: 0, in_spool: 0, lost: 0 });
      expect(spoolRows(spoolPath)).toEqual([]);

      const after = await readStream(server.url, stream);
      const afterIds = expectNoDuplicates(after);
      expect([...atKill].filter((id) => !afterIds.has(id))).toEqual([]);
      // Nats-Msg-Id absorbed the replays of events stored before the kill: one message per distinct id
      expect(after.length).toBe(afterIds.size);
      expect(after.length).toBe(k);

      report(freezeAtMs === undefined ? "b" : "b'", {
        killed_at_ms: killedAt,
        emitted_by_kill_estimate: Math.round((killedAt / 1000) * RATE),
        in_spool_at_kill: spooled.length,
        in_stream_at_kill: stored.length,
        in_both_at_kill: spooled.filter((r) => storedIds.has(r.id)).length,
        distinct_at_kill: k,
        stream_after: after.length,
        replay_run_ms: second.endedAt! - second.startedAt,
        final: pick(final),
      });
    }, 90_000);
  }

  test("d. server frozen (SIGSTOP) for 5 s at 4000 events/s: the agent keeps collecting, spools, stays under its memory bound, drains after SIGCONT", async () => {
    const server = await newServer();
    const file = agentConfig({ server, subject: "fd.events", stream: "FAULT_D", synthetic: { rate: RATE, count: COUNT } });
    const agent = startAgent(["--once", "-c", file]);
    const rss = sampleRss(agent.pid, 200);
    const status = sampleStatus(await statusUrl(agent), 200);
    const t0 = await collectorsStarted(agent);
    await agent.waitForLog(msgStartsWith("JetStream stream ready"), "stream ready");

    await sleepUntil(t0, 2500);
    await server.kill("SIGSTOP");
    const frozenAt = Date.now();
    await sleepUntil(frozenAt, 5000);
    await server.kill("SIGCONT");
    const thawedAt = Date.now();

    const code = await exitCode(agent, 35_000);
    const { maxBytes, samples: rssSamples } = rss.stop();
    const samples = status.stop();
    expect({ code, stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
    const final = expectAccounting(agent.final(), { accepted: COUNT, inherited: 0, published: COUNT, discarded: 0, in_spool: 0, lost: 0 });
    expect(final.dropped).toBe(0);

    // It kept collecting while the server was frozen (GET /status, every 200 ms).
    const atFreeze = sampleAt(samples, frozenAt);
    const atThaw = sampleAt(samples, thawedAt);
    expect(atFreeze).toBeDefined();
    expect(atThaw).toBeDefined();
    const acceptedWhileFrozen = atThaw!.accepted - atFreeze!.accepted;
    expect(acceptedWhileFrozen).toBeGreaterThan(0.85 * RATE * ((atThaw!.at - atFreeze!.at) / 1000));
    // It spooled, and more events waited than the memory queue can hold
    // (buffer.max_events, 10000 by default): the rest was on disk.
    const last = samples.at(-1)!;
    const deepest = Math.max(...samples.map((s) => s.spoolDepth));
    expect(last.spooled).toBeGreaterThan(10_000);
    expect(deepest).toBeGreaterThan(10_000);
    expect(Math.max(...samples.map((s) => s.queued))).toBeLessThanOrEqual(10_000);
    const circuitOpened = agent.lines.filter((l) => l.to === "open" && typeof l.msg === "string" && l.msg.startsWith("circuit for fd.events.synthetic open"));
    const replaying = agent.lines.find(msgStartsWith("NATS takes events again; replaying the spool"));

    // Memory. The same load without a fault peaks at about 105-112 MB of RSS
    // (Bun, the NATS client, SQLite, the queue); 200 MB leaves ~90 MB for GC
    // timing and the spool's page cache. A 5 s outage of 512-byte events is
    // only ~10 MB of payload, so RSS alone would not catch an unbounded buffer
    // here: the queue and spool figures above do.
    expect(maxBytes).toBeLessThan(200 * MB);
    expect(rssSamples).toBeGreaterThan(20);

    const messages = await readStream(server.url, "FAULT_D");
    expect(messages.length).toBe(COUNT);
    expectNoDuplicates(messages);
    expectSeqs(messages, COUNT);
    // It kept collecting during the pause: the events' own timestamps show the
    // collector's pace did not change (10 s for 40000), and about 5 s worth of
    // events were emitted while the server was frozen.
    const bySeq = new Float64Array(COUNT);
    for (const m of messages) bySeq[m.seq] = m.timestampMs;
    const emitSpanMs = bySeq[COUNT - 1]! - bySeq[0]!;
    expect(emitSpanMs).toBeGreaterThan(9_500);
    expect(emitSpanMs).toBeLessThan(11_000);
    const duringPause = messages.filter((m) => m.timestampMs >= frozenAt && m.timestampMs < thawedAt).length;
    const pauseMs = thawedAt - frozenAt;
    expect(duringPause).toBeGreaterThan(0.85 * RATE * (pauseMs / 1000));
    // ... and it drained the backlog promptly once the server was back
    const runMs = agent.endedAt! - t0;
    expect(runMs).toBeLessThan(25_000);

    report("d", {
      frozen_ms: pauseMs,
      emitted_while_frozen: duringPause,
      emit_span_ms: Math.round(emitSpanMs),
      run_ms: runMs,
      drained_ms_after_thaw: agent.endedAt! - thawedAt,
      rss_max_mb: +(maxBytes / MB).toFixed(1),
      rss_samples: rssSamples,
      accepted_while_frozen: acceptedWhileFrozen,
      spooled_total: last.spooled,
      deepest_spool: deepest,
      max_queued: Math.max(...samples.map((s) => s.queued)),
      circuit_opened: circuitOpened.length,
      replay_from_depth: replaying?.spool_depth,
      final: pick(final),
    });
  }, 90_000);

  // "Buffered": accepted and not delivered; SIGTERM comes as soon as /status
  // shows all 50000 accepted, wherever they wait then (memory queue, workers,
  // spool: the report shows the split). Two ways to get there:
  // - "unreachable": the server is frozen before the agent starts, so the
  //   agent never connects;
  // - "connected": the agent connects and creates the stream, then the server
  //   is frozen under it. Some events are published before the freeze, some
  //   publishes are left in flight, unacknowledged, in the frozen server's
  //   socket (stored after the thaw: the replay must be deduplicated).
  const BUFFERED = 50_000;
  type Setup = "unreachable" | "connected";

  async function bufferedThenSigterm(name: string, setup: Setup, shutdownTimeout: string) {
    const server = await newServer();
    if (setup === "unreachable") await server.kill("SIGSTOP");
    const spoolPath = join(makeTempDir(`spool-${name}`), "spool.db");
    const common = { server, subject: `${name}.events`, stream: name.toUpperCase(), spoolPath };
    const agent = startAgent([
      "-c",
      agentConfig({
        ...common,
        synthetic: { rate: 0, count: BUFFERED },
        orchestrator: `  shutdown_timeout: ${shutdownTimeout}\n  buffer: { max_events: 60000, max_bytes: 128MiB }`,
      }),
    ]);
    const url = await statusUrl(agent);
    const t0 = await collectorsStarted(agent);
    if (setup === "connected") {
      await agent.waitForLog(msgStartsWith("JetStream stream ready"), "stream ready");
      await server.kill("SIGSTOP");
    }
    // SIGTERM as soon as all 50000 are accepted, wherever they wait (queue, workers, spool).
    let atTerm: StatusSample | undefined;
    const until = Date.now() + 15_000;
    while (!(atTerm && atTerm.accepted === BUFFERED)) {
      if (Date.now() > until) throw new Error(`not all ${BUFFERED} events accepted within 15 s: ${JSON.stringify(atTerm)}`);
      await Bun.sleep(20);
      atTerm = await readStatus(url);
    }
    agent.kill("SIGTERM");
    const termAt = Date.now();
    const buffered = { after_ms: termAt - t0, queued: atTerm.queued, in_spool: atTerm.spoolDepth, published: atTerm.published };
    return { server, agent, spoolPath, common, termAt, buffered };
  }

  for (const setup of ["unreachable", "connected"] as const) {
    const tag = setup === "unreachable" ? "" : "'";
    const name = (n: number) => `ff${n}${setup === "unreachable" ? "u" : "c"}`;

    test(`f1${tag}. SIGTERM with 50000 events buffered (server frozen, ${setup}), thawed 1 s later: all published before exit, exit 0`, async () => {
      const { server, agent, common, termAt, buffered } = await bufferedThenSigterm(name(1), setup, "30s");
      await sleepUntil(termAt, 1000);
      await server.kill("SIGCONT");
      const thawedAt = Date.now();

      const code = await exitCode(agent, 35_000);
      expect({ code, stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
      const final = expectAccounting(agent.final(), { accepted: BUFFERED, inherited: 0, published: BUFFERED, discarded: 0, in_spool: 0, lost: 0 });
      expect(final.dropped).toBe(0);
      expect(final.msg).toStartWith("shutdown complete");
      expect(agent.lines.some((l) => l.msg === "SIGTERM received: shutting down")).toBe(true);

      const messages = await readStream(server.url, common.stream);
      expect(messages.length).toBe(BUFFERED);
      expectNoDuplicates(messages);
      expectSeqs(messages, BUFFERED);
      report(`f1${tag}`, {
        at_sigterm: buffered,
        exit_ms_after_sigterm: agent.endedAt! - termAt,
        exit_ms_after_thaw: agent.endedAt! - thawedAt,
        final: pick(final),
      });
    }, 90_000);

    test(`f2${tag}. SIGTERM with 50000 events buffered (server frozen, ${setup}), kept frozen, shutdown_timeout 3s: exit 1, what is left is reported and in the spool; the next start delivers all once`, async () => {
      const { server, agent, spoolPath, common, termAt, buffered } = await bufferedThenSigterm(name(2), setup, "3s");

      const code = await exitCode(agent, 20_000);
      const exitMs = agent.endedAt! - termAt;
      expect({ code, stderr: agent.stderr() }).toEqual({ code: 1, stderr: "" });
      const final = expectAccounting(agent.final(), { accepted: BUFFERED, inherited: 0, discarded: 0, lost: 0 });
      expect(final.dropped).toBe(0);
      expect(final.published + final.in_spool).toBe(BUFFERED);
      expect(final.in_spool).toBeGreaterThan(0);
      if (setup === "unreachable") expect(final.in_spool).toBe(BUFFERED);
      expect(final.msg).toStartWith("shutdown deadline passed");
      expect(final.msg).toContain(`${final.in_spool} left in the spool at ${spoolPath}`);

      // the spool file holds exactly the events the agent said it left there
      const rows = spoolRows(spoolPath);
      expect(rows.length).toBe(final.in_spool);
      const spooledIds = new Set(rows.map((r) => r.id));
      expect(spooledIds.size).toBe(rows.length);

      await server.kill("SIGCONT");
      // publishes the agent had in flight when it froze may land now: stored and also spooled
      const storedBeforeReplay = await stableStreamCount(server.url, common.stream);
      const second = startAgent(["--once", "-c", agentConfig({ ...common })]);
      const code2 = await exitCode(second, 30_000);
      expect({ code: code2, stderr: second.stderr() }).toEqual({ code: 0, stderr: "" });
      const final2 = expectAccounting(second.final(), { accepted: 0, inherited: rows.length, published: rows.length, discarded: 0, in_spool: 0, lost: 0 });
      expect(spoolRows(spoolPath)).toEqual([]);

      const messages = await readStream(server.url, common.stream);
      expect(messages.length).toBe(BUFFERED);
      const ids = expectNoDuplicates(messages);
      expectSeqs(messages, BUFFERED);
      expect([...spooledIds].filter((id) => !ids.has(id))).toEqual([]);
      report(`f2${tag}`, {
        at_sigterm: buffered,
        exit_ms_after_sigterm: exitMs,
        left_in_spool: final.in_spool,
        stored_before_replay: storedBeforeReplay,
        replay_run_ms: second.endedAt! - second.startedAt,
        final_first: pick(final),
        final_second: pick(final2),
      });
      // The shutdown keeps to its deadline (3 s), give or take the process exit
      // (~3010 ms measured when the server is unreachable): closing a
      // connection to a frozen server must not hold the exit past it either.
      // Checked last, so that a slow exit does not hide the checks above.
      expect(exitMs).toBeLessThan(3000 + 2000);
    }, 90_000);
  }
});

/** Waits until the stream's message count stopped changing for 300 ms (0 when there is no stream). */
async function stableStreamCount(url: string, stream: string, timeoutMs = 10_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  let last = await streamCount(url, stream);
  for (;;) {
    await Bun.sleep(300);
    const now = await streamCount(url, stream);
    if (now === last) return now ?? 0; // undefined: no stream (yet)
    if (Date.now() > until) throw new Error(`stream ${stream} still changing after ${timeoutMs} ms`);
    last = now;
  }
}

function pick(final: Record<string, any>) {
  const { accepted, inherited, published, discarded, dropped, in_spool, lost } = final;
  return { accepted, inherited, published, discarded, dropped, in_spool, lost };
}

