// The spool across restarts, with the agent as a process and a real
// nats-server: damaged rows are counted and never published, and replays
// follow the nats.subject configured now.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Spool } from "../../src/spool/spool.ts";
import { endpointsUrl, logLines, runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { readStream } from "../publish/fixtures.ts";

afterAll(stopAllNatsServers);

/** Rows as a previous run leaves them: JSON payloads that name their id. */
function spoolRows(path: string, subject: string, collector: string, ids: string[], subjectSuffix?: string): void {
  const spool = Spool.open({ path, maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
  spool.append(ids.map((id) => ({ subject, id, collector, subjectSuffix, bytes: new TextEncoder().encode(JSON.stringify({ event_id: id, note: `payload of ${id}` })) })));
  spool.close();
}

/** Overwrites `text` where it occurs (once) in the file, as a bad sector or a stray write would. */
function damage(path: string, text: string, replacement: string): void {
  const file = readFileSync(path);
  const at = file.indexOf(text);
  expect(at).toBeGreaterThanOrEqual(0);
  expect(file.indexOf(text, at + 1)).toBe(-1);
  file.write(replacement, at);
  writeFileSync(path, file);
}

function report(stdout: string): Record<string, any> {
  return logLines(stdout).find((l) => typeof l.msg === "string" && l.msg.startsWith("shutdown"))!;
}

describe("spool integrity", () => {
  test("a row whose payload bytes were damaged on disk is counted as spool_corrupt, logged and not published; the others are", async () => {
    const server = await startNatsServer({ jetstream: true });
    const dir = makeTempDir("spool-corrupt");
    const spoolFile = join(dir, "spool.db");
    const ids = Array.from({ length: 10 }, (_, i) => `ev-${i}`);
    spoolRows(spoolFile, "tapio.events.synthetic", "synthetic", ids);
    // Same length, still valid JSON: only the checksum can tell.
    damage(spoolFile, "payload of ev-4", "PAYLOAD OF EV-4");

    const config = writeConfig(`
orchestrator: { shutdown_timeout: 5s }
nats: { url: "${server.url}", subject: tapio.events, stream: { name: INTEGRITY } }
spool: { path: ${spoolFile} }
collectors:
  synthetic: { enabled: false }
`);
    // (the exit code belongs to the --once rules, tested with them)
    const r = await runAgent(["--once", "-c", config]);
    const logs = logLines(r.stdout);
    expect(logs.find((l) => l.msg === "spool quick_check: ok")).toBeDefined();
    expect(logs.find((l) => l.reason === "spool_corrupt")).toMatchObject({ level: "warn", events: 1, collector: "synthetic", msg: "damaged spool rows (checksum mismatch) discarded, not published" });
    expect(report(r.stdout)).toMatchObject({ inherited: 10, published: 9, discarded: 1, in_spool: 0, lost: 0, unaccounted: 0 });

    const stored = await readStream(server.url, "INTEGRITY");
    expect(stored.map((m) => m.msgId)).toEqual(ids.filter((id) => id !== "ev-4"));
    for (const m of stored) expect(JSON.parse(m.data)).toEqual({ event_id: m.msgId, note: `payload of ${m.msgId}` });
  });
});

describe("replay follows the config", () => {
  test("events spooled under one nats.subject are replayed to the new one, the collector part (and a subject suffix) kept, including a collector that no longer runs", async () => {
    const dir = makeTempDir("spool-resubject");
    const spoolFile = join(dir, "spool.db");
    // First run: NATS away, every event stays in the spool under the old prefix.
    const away = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: "nats://127.0.0.1:${await freePort()}", subject: old.prefix, reconnect_wait: 100ms }
spool: { path: ${spoolFile} }
collectors:
  synthetic: { config: { count: 5, rate: 0 } }
`);
    const first = await runAgent(["--once", "-c", away]);
    expect(report(first.stdout)).toMatchObject({ accepted: 5, published: 0, in_spool: 5 });
    // and one from a collector this release does not have
    spoolRows(spoolFile, "old.prefix.retired", "retired", ["retired-0"]);
    // and one routed to a sub-subject (ingest's `<subject>.ingest.<source>`), the suffix a repeat of the collector's name
    spoolRows(spoolFile, "old.prefix.ingest.ingest", "ingest", ["routed-0"], "ingest");

    // Second run: another prefix, a stream for it alone, the synthetic collector off.
    const server = await startNatsServer({ jetstream: true });
    const config = writeConfig(`
orchestrator: { shutdown_timeout: 5s }
nats: { url: "${server.url}", subject: new.prefix, stream: { name: RESUBJECT } }
spool: { path: ${spoolFile} }
collectors:
  synthetic: { enabled: false }
`);
    const second = await runAgent(["--once", "-c", config]);
    expect(report(second.stdout)).toMatchObject({ inherited: 7, published: 7, discarded: 0, in_spool: 0, unaccounted: 0 });
    const stored = await readStream(server.url, "RESUBJECT");
    expect(stored.map((m) => m.subject)).toEqual([...Array(5).fill("new.prefix.synthetic"), "new.prefix.retired", "new.prefix.ingest.ingest"]);
    expect(stored.slice(-2).map((m) => m.msgId)).toEqual(["retired-0", "routed-0"]);
  });

  test("a named instance's spooled events replay to <prefix>.<type>.<name> under the new prefix, the bare type's to <prefix>.<type>", async () => {
    const dir = makeTempDir("spool-instances");
    const spoolFile = join(dir, "spool.db");
    const away = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: "nats://127.0.0.1:${await freePort()}", subject: old.prefix, reconnect_wait: 100ms }
spool: { path: ${spoolFile} }
collectors:
  synthetic: { config: { count: 2, rate: 0 } }
  synthetic/a: { config: { count: 3, rate: 0, type: a.event } }
  synthetic/b-2: { config: { count: 4, rate: 0, type: b.event } }
`);
    const first = await runAgent(["--once", "-c", away]);
    expect(report(first.stdout)).toMatchObject({ accepted: 9, published: 0, in_spool: 9 });
    // the collector column holds the instance key
    const spool = Spool.open({ path: spoolFile, maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
    const rows = spool.peek(100);
    spool.close();
    const columns = new Set(rows.map((r) => `${r.collector} ${r.subject}`));
    expect(columns).toEqual(new Set(["synthetic old.prefix.synthetic", "synthetic/a old.prefix.synthetic.a", "synthetic/b-2 old.prefix.synthetic.b-2"]));

    // Second run: another prefix, every instance gone from the config.
    const server = await startNatsServer({ jetstream: true });
    const config = writeConfig(`
orchestrator: { shutdown_timeout: 5s }
nats: { url: "${server.url}", subject: new.prefix, stream: { name: INSTANCES_REPLAY } }
spool: { path: ${spoolFile} }
collectors: {}
`);
    const second = await runAgent(["--once", "-c", config]);
    expect(report(second.stdout)).toMatchObject({ inherited: 9, published: 9, discarded: 0, in_spool: 0, unaccounted: 0 });
    const stored = await readStream(server.url, "INSTANCES_REPLAY");
    const subjectOf = (type: string) => stored.filter((m) => JSON.parse(m.data).type === type).map((m) => m.subject);
    expect(subjectOf("synthetic.event")).toEqual(Array(2).fill("new.prefix.synthetic"));
    expect(subjectOf("a.event")).toEqual(Array(3).fill("new.prefix.synthetic.a"));
    expect(subjectOf("b.event")).toEqual(Array(4).fill("new.prefix.synthetic.b-2"));
    for (const m of stored.filter((m) => m.subject.startsWith("new.prefix.synthetic.a"))) expect(JSON.parse(m.data).source).toBe("synthetic/a");
  });

  test("a hot reload to another nats.subject (and a reachable server): events spooled under the old one are replayed to the new one", async () => {
    const spoolFile = join(makeTempDir("spool-reload"), "spool.db");
    const body = (url: string, subject: string) => `
nats: { url: "${url}", subject: ${subject}, reconnect_wait: 100ms, stream: { name: RELOADED } }
spool: { path: ${spoolFile} }
collectors:
  synthetic: { config: { count: 5, rate: 0 } }
`;
    const file = writeConfig(body(`nats://127.0.0.1:${await freePort()}`, "old.prefix"));
    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const server = await startNatsServer({ jetstream: true });
      const base = await endpointsUrl(out.lines);
      const depth = async () => ((await (await fetch(`${base}/status`)).json()) as any).delivery.spool.depth as number;
      await waitFor(async () => (await depth()) === 5, "the 5 events spooled", 15_000);
      writeFileSync(`${file}.tmp`, readFileSync(file, "utf8").replace(/nats: \{[^\n]*\}/, body(server.url, "new.prefix").trim().split("\n")[0]!));
      renameSync(`${file}.tmp`, file);
      // the 5 spooled, then the 5 the restarted collector emits for the new subject
      await waitFor(async () => (await readStream(server.url, "RELOADED").catch(() => [])).length === 10, "10 events on the stream", 20_000);
      const stored = await readStream(server.url, "RELOADED");
      expect(new Set(stored.map((m) => m.subject))).toEqual(new Set(["new.prefix.synthetic"]));
      expect(new Set(stored.map((m) => m.msgId)).size).toBe(10);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
      await out.ended;
    }
  }, 60_000);
});

