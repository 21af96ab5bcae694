// What a SIGKILL under load loses, against a real nats-server and the agent
// as a real process: in disk mode nothing whose emit resolved; in memory mode
// at most the queue and the batches in flight (README, "What a SIGKILL loses").
// The agent runs through agent-recording-resolved.ts, which writes how many
// of the synthetic collector's emits had resolved (seqs 0..k-1) to a file.
import { afterAll, afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { writeConfig } from "../helpers/agent.ts";
import { exitCode, expectNoDuplicates, endFaultTest, msgStartsWith, readStream, sleepUntil, spoolRows, startAgent, streamCount } from "./harness.ts";

const WRAPPER = join(import.meta.dir, "agent-recording-resolved.ts");
const MAX_EVENTS = 2000;
const WORKERS = 4;
const BATCH_SIZE = 256;

const servers: NatsServer[] = [];
afterEach(() => endFaultTest(servers));
afterAll(stopAllNatsServers);

function config(server: NatsServer, stream: string, spoolPath: string, bufferType: "memory" | "disk", synthetic: boolean): string {
  return writeConfig(`
orchestrator:
  workers: ${WORKERS}
  batch_size: ${BATCH_SIZE}
  shutdown_timeout: 30s
  buffer: { type: ${bufferType}, max_events: ${MAX_EVENTS} }
nats:
  url: ${server.url}
  subject: ${stream.toLowerCase()}.events
  stream: { name: ${stream} }
spool:
  path: ${spoolPath}
collectors:
  synthetic:
${synthetic ? "    config: { rate: 0, count: 10000000 }" : "    enabled: false"}
`);
}

/** The stream's count once it stops changing (publishes the dead agent sent have landed). */
async function stableStreamCount(url: string, stream: string, timeoutMs = 10_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  let last = await streamCount(url, stream);
  for (;;) {
    await Bun.sleep(300);
    const now = await streamCount(url, stream);
    if (now === last) return now ?? 0;
    if (Date.now() > until) throw new Error(`stream ${stream} still changing after ${timeoutMs} ms`);
    last = now;
  }
}

/**
 * Floods the agent (synthetic at full speed), optionally freezes the server,
 * SIGKILLs the agent at 3 s, restarts it on the same spool, and returns how
 * many emits had resolved (k) and which of the seqs 0..k-1 are in the stream after the replay.
 */
async function killUnderLoad(bufferType: "memory" | "disk", stream: string, freezeAtMs: number | undefined) {
  const server = await startNatsServer();
  servers.push(server);
  const dir = makeTempDir("crash-window");
  const spoolPath = join(dir, "spool.db");
  const countFile = join(dir, "resolved");
  const first = startAgent(["run", "-c", config(server, stream, spoolPath, bufferType, true)], [process.execPath, WRAPPER, countFile]);
  await first.waitForLog(msgStartsWith("orchestrator started"), '"orchestrator started"');
  const t0 = Date.now();
  if (freezeAtMs !== undefined) {
    await sleepUntil(t0, freezeAtMs);
    await server.kill("SIGSTOP");
  }
  await sleepUntil(t0, 3000);
  first.kill("SIGKILL");
  await first.exited;
  expect(first.proc.signalCode).toBe("SIGKILL");
  if (freezeAtMs !== undefined) await server.kill("SIGCONT");
  const resolved = Number(readFileSync(countFile, "latin1").trim());
  expect(resolved).toBeGreaterThan(0);

  const spooled = spoolRows(spoolPath);
  const inStreamAtKill = await stableStreamCount(server.url, stream);
  const second = startAgent(["--once", "-c", config(server, stream, spoolPath, bufferType, false)]);
  const code = await exitCode(second, 30_000);
  expect({ code, stderr: second.stderr() }).toEqual({ code: 0, stderr: "" });
  expect(spoolRows(spoolPath)).toEqual([]);
  const after = await readStream(server.url, stream);
  expectNoDuplicates(after);
  const seen = new Uint8Array(resolved);
  for (const m of after) if (m.seq < resolved) seen[m.seq]!++;
  const missing = seen.reduce((n, c) => n + (c === 0 ? 1 : 0), 0);
  const twice = seen.reduce((n, c) => n + (c > 1 ? 1 : 0), 0);
  console.log(`[crash-window ${bufferType}${freezeAtMs !== undefined ? ", server frozen" : ""}] ${JSON.stringify({ resolved, in_spool_at_kill: spooled.length, in_stream_at_kill: inStreamAtKill, stream_after: after.length, resolved_missing: missing, resolved_twice: twice })}`);
  return { resolved, missing, twice };
}

for (const freezeAtMs of [undefined, 1500]) {
  const how = freezeAtMs === undefined ? "" : ", the server frozen at 1.5 s";
  test(`disk buffer, the agent SIGKILLed at 3 s under full load${how}: every event whose emit resolved is delivered after the restart, once`, async () => {
    const { missing, twice } = await killUnderLoad("disk", freezeAtMs === undefined ? "CRASH_DISK" : "CRASH_DISK_FROZEN", freezeAtMs);
    expect({ missing, twice }).toEqual({ missing: 0, twice: 0 });
  }, 90_000);
}

test("memory buffer, the agent SIGKILLed at 3 s under full load, the server frozen at 1.5 s: it loses at most the queue and the batches in flight", async () => {
  const { missing, twice } = await killUnderLoad("memory", "CRASH_MEMORY", 1500);
  expect(twice).toBe(0);
  expect(missing).toBeLessThanOrEqual(MAX_EVENTS + WORKERS * BATCH_SIZE);
}, 90_000);
