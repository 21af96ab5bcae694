// Spool failures the agent must live through, against real nats-servers and
// the agent as a real process: a spool file system that fills while NATS is
// down (workers keep their batches, resume when space and NATS return), a
// spool file with garbage in it (moved aside, a fresh one opened) and a spool
// that cannot be opened at all (the agent runs without one and says why).
// The small file system is a tmpfs, so these tests need root (CI runs as root).
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, statSync, statfsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { sourceCommand, writeConfig } from "../helpers/agent.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { AS_NOBODY } from "../spool/fixtures.ts";
import { exitCode, expectAccounting, expectNoDuplicates, expectSeqs, killAllAgents, msgStartsWith, readStream, startAgent, streamCount, type AgentProcess } from "./harness.ts";

const asRoot = process.getuid?.() === 0;
const servers: NatsServer[] = [];
const mounts: string[] = [];

async function newServer(): Promise<NatsServer> {
  const server = await startNatsServer();
  servers.push(server);
  return server;
}

/** A tmpfs of `size` (e.g. "512k") at a fresh directory, unmounted after the tests. */
function smallFileSystem(size: string): string {
  const dir = makeTempDir("small-fs");
  run(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  mounts.push(dir);
  return dir;
}

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
}

afterEach(async () => {
  await killAllAgents();
  for (const server of servers.splice(0)) await server.stop();
});
afterAll(async () => {
  await stopAllNatsServers();
  for (const dir of mounts.splice(0)) Bun.spawnSync(["umount", "-l", dir]);
});

function agentConfig(server: NatsServer, stream: string, spoolPath: string, synthetic: string, shutdownTimeout = "20s"): string {
  return writeConfig(`
orchestrator:
  shutdown_timeout: ${shutdownTimeout}
nats:
  url: ${server.url}
  subject: ${stream.toLowerCase()}.events
  stream: { name: ${stream} }
collectors:
  synthetic:
    config: ${synthetic}
spool:
  path: ${spoolPath}
  spill_after: 300ms
`);
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, text: await res.text() };
}

async function baseUrl(agent: AgentProcess): Promise<string> {
  return (await agent.waitForLog(msgStartsWith("HTTP endpoints on"), '"HTTP endpoints on"')).url as string;
}

/** orchestrator_spool_errors_total{reason=...} from /metrics; 0 when absent. */
async function spoolErrors(base: string, reason: string): Promise<number> {
  const { text } = await get(`${base}/metrics`);
  const m = new RegExp(`^orchestrator_spool_errors_total\\{destination="default",reason="${reason}"\\} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

async function health(base: string): Promise<{ state: string; problems: string[] }> {
  const doc = JSON.parse((await get(`${base}/status`)).text) as { health: { state: string; problems: string[] } };
  return doc.health;
}

describe.skipIf(!asRoot)("spool errors", () => {
  for (const order of ["space, then NATS", "NATS, then space"] as const) {
  test(`the spool's file system fills while NATS is down: workers live on, and every event is published once space and NATS return (${order})`, async () => {
    const COUNT = 6000;
    const fs = smallFileSystem("512k");
    const server = await newServer();
    const file = agentConfig(server, "SPOOLFULL", join(fs, "spool.db"), `{ rate: 3000, count: ${COUNT}, payload_bytes: 512 }`);
    const agent = startAgent(["-c", file]);
    const base = await baseUrl(agent);
    await agent.waitForLog(msgStartsWith("JetStream stream ready"), "stream ready");
    await waitFor(async () => ((await streamCount(server.url, "SPOOLFULL")) ?? 0) > 0, "a first event on the stream", 10_000);
    await server.kill("SIGKILL");

    // ~3 MB of events cannot fit in 512 KiB: the spool's writes fail.
    const failed = await agent.waitForLog(msgStartsWith("spool: cannot write"), '"spool: cannot write"', 20_000);
    expect(failed.reason).toBe("full");
    expect(failed.msg).toContain("disk is full");
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/the spool cannot take events: .*disk is full/);
    const h = await health(base);
    expect(h.state).toBe("degraded");
    expect(h.problems.join("\n")).toMatch(/spool .*disk is full/);
    expect(await spoolErrors(base, "full")).toBeGreaterThan(0);

    // Space and NATS return: everything goes out without a restart.
    if (order === "space, then NATS") {
      run(["mount", "-o", "remount,size=32m", fs]);
      await server.restart();
      await waitFor(async () => (await streamCount(server.url, "SPOOLFULL")) === COUNT, `${COUNT} events on the stream`, 40_000, 200);
    } else {
      // With the disk still full, the workers publish what they hold, and the drainer
      // replays the spool but cannot delete what it published: it must not send it twice.
      await server.restart();
      await waitFor(async () => (await streamCount(server.url, "SPOOLFULL")) === COUNT, `${COUNT} events on the stream`, 40_000, 200);
      expect(statfsSync(fs).bavail).toBe(0);
      run(["mount", "-o", "remount,size=32m", fs]);
    }
    await agent.waitForLog(msgStartsWith("spool: writable again"), '"spool: writable again"');
    await waitFor(async () => (await get(`${base}/readyz`)).status === 200, "/readyz 200 again", 5000, 100);
    await waitFor(async () => (await health(base)).state === "healthy", "healthy again", 10_000, 200);

    agent.kill("SIGTERM");
    expect({ code: await exitCode(agent, 25_000), stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
    expectAccounting(agent.final(), { accepted: COUNT, inherited: 0, published: COUNT, discarded: 0, in_spool: 0, lost: 0 });
    const messages = await readStream(server.url, "SPOOLFULL");
    expect(messages.length).toBe(COUNT);
    expectNoDuplicates(messages);
    expectSeqs(messages, COUNT);
  }, 90_000);
  }

  test("SIGTERM while the spool's disk is full and NATS down: exit 1 with accounts that add up", async () => {
    const COUNT = 6000;
    const fs = smallFileSystem("512k");
    const server = await newServer();
    const agent = startAgent(["-c", agentConfig(server, "FULLSTOP", join(fs, "spool.db"), `{ rate: 3000, count: ${COUNT}, payload_bytes: 512 }`, "2s")]);
    await agent.waitForLog(msgStartsWith("JetStream stream ready"), "stream ready");
    await waitFor(async () => ((await streamCount(server.url, "FULLSTOP")) ?? 0) > 0, "a first event on the stream", 10_000);
    await server.kill("SIGKILL");
    await agent.waitForLog(msgStartsWith("spool: cannot write"), '"spool: cannot write"', 20_000);

    agent.kill("SIGTERM");
    expect(await exitCode(agent, 15_000)).toBe(1);
    const final = expectAccounting(agent.final(), { inherited: 0, discarded: 0 });
    expect(final.unaccounted).toBe(0);
    // held in memory when the deadline passed: counted lost, not forgotten
    expect(final.lost).toBeGreaterThan(0);
    expect(final.in_spool).toBeGreaterThan(0);
    expect(agent.lines.some(msgStartsWith("shutdown deadline passed with the spool failing"))).toBe(true);
  }, 60_000);

  test("garbage written into the spool file: moved aside with its size logged, a fresh spool opened, and the agent runs", async () => {
    const server = await newServer();
    const dir = makeTempDir("corrupt");
    const spoolPath = join(dir, "spool.db");
    writeFileSync(spoolPath, Buffer.from("this is no SQLite database ".repeat(1000)));
    const bytes = statSync(spoolPath).size;
    const agent = startAgent(["--once", "-c", agentConfig(server, "CORRUPT", spoolPath, "{ rate: 0, count: 500 }")]);
    const moved = await agent.waitForLog(msgStartsWith(`spool ${spoolPath} is corrupt: moved aside`), '"moved aside"');
    const movedTo = String(moved.moved_to);
    expect(movedTo).toMatch(/spool\.db\.corrupt-\d{8}T\d{6}Z$/);
    expect({ level: moved.level, path: moved.path, bytes: moved.bytes }).toEqual({ level: "error", path: spoolPath, bytes });
    expect(moved.err).toMatch(/not an SQLite database/);
    expect({ code: await exitCode(agent, 20_000), stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
    expectAccounting(agent.final(), { accepted: 500, published: 500, in_spool: 0, lost: 0 });
    expect(statSync(movedTo).size).toBe(bytes);
    expect(readdirSync(dir).sort()).toEqual(["spool.db", movedTo.slice(dir.length + 1)].sort());
  }, 30_000);

  // Each: where the spool goes, how the agent is run, and the reason and cause it must name.
  const unopenable: Array<{ name: string; setUp: () => { spoolPath: string; command?: string[] }; reason: string; cause: RegExp }> = [
    {
      name: "a directory the agent's user may not write (run as nobody)",
      setUp: () => {
        const dir = makeTempDir("ro-dir");
        // nobody needs a way through the private temp dirs to its config, and to nothing else
        chmodSync(dirname(dir), 0o711);
        chmodSync(dir, 0o755);
        mkdirSync(join(dir, "spool"), { mode: 0o555 });
        return { spoolPath: join(dir, "spool", "spool.db"), command: [...AS_NOBODY, ...sourceCommand()] };
      },
      reason: "permission",
      cause: /permission denied: uid 65534 may not write/,
    },
    {
      name: "a read-only file system",
      setUp: () => {
        const dir = makeTempDir("ro-fs");
        run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir]);
        mounts.push(dir);
        return { spoolPath: join(dir, "spool.db") };
      },
      reason: "read_only",
      cause: /read-only file system/,
    },
    {
      name: "a full disk and no spool file yet",
      setUp: () => {
        const fs = smallFileSystem("256k");
        // fill it: the write fails with ENOSPC once nothing is left
        Bun.spawnSync(["dd", "if=/dev/zero", `of=${join(fs, "filler")}`, "bs=4k"], { stdout: "ignore", stderr: "ignore" });
        return { spoolPath: join(fs, "spool", "spool.db") };
      },
      reason: "full",
      cause: /full/,
    },
  ];

  for (const { name, setUp, reason, cause } of unopenable) {
    test(`no spool can be opened on ${name}: the agent runs without one and says why`, async () => {
      const COUNT = 300;
      const server = await newServer();
      const { spoolPath, command } = setUp();
      const file = agentConfig(server, "NOSPOOL", spoolPath, `{ rate: 1000, count: ${COUNT} }`);
      if (command) {
        chmodSync(dirname(file), 0o755);
        chmodSync(file, 0o644);
      }
      const agent = startAgent(["-c", file], command);
      const base = await baseUrl(agent);
      const without = await agent.waitForLog(msgStartsWith("running WITHOUT a spool"), '"running WITHOUT a spool"');
      expect(without).toMatchObject({ level: "error", reason, path: spoolPath });
      expect(without.msg).toMatch(cause);

      await waitFor(async () => (await streamCount(server.url, "NOSPOOL")) === COUNT, `${COUNT} events on the stream`, 15_000, 100);
      expect(await get(`${base}/readyz`)).toEqual({ status: 200, text: "ready: NATS connected\n" });
      const h = await health(base);
      expect(h.state).toBe("degraded");
      expect(h.problems).toEqual([expect.stringMatching(new RegExp(`^running without a spool: .*${cause.source}.*events wait in memory only`))]);
      const status = JSON.parse((await get(`${base}/status`)).text) as { delivery: { spool_error: { reason: string } } };
      expect(status.delivery.spool_error.reason).toBe(reason);
      expect(await spoolErrors(base, reason)).toBe(1);

      // NATS away and no spool: events have nowhere to go, and /readyz says why.
      await server.kill("SIGKILL");
      await waitFor(async () => (await get(`${base}/readyz`)).status === 503, "/readyz 503", 10_000, 100);
      expect((await get(`${base}/readyz`)).text).toMatch(new RegExp(`^not ready: NATS not connected.* and running without a spool: .*${cause.source}`));
      await server.restart();
      await waitFor(async () => (await get(`${base}/readyz`)).status === 200, "/readyz 200 again", 15_000, 100);

      agent.kill("SIGTERM");
      expect({ code: await exitCode(agent, 25_000), stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
      expectAccounting(agent.final(), { accepted: COUNT, published: COUNT, in_spool: 0, lost: 0, discarded: 0 });
    }, 60_000);
  }
});
