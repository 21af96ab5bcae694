// The README's spool: SQLite in WAL mode with synchronous=NORMAL; and, on the
// agent as a process with NATS unreachable, spool.max_bytes and
// spool.when_full: the spool holds no more than max_bytes, counting about
// 96 bytes per event on top of the event; drop_newest drops the rest with the
// reason spool_full and logs "spool full: ..."; the final counts add up; block
// makes the workers wait, then the collectors, and drops nothing.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { logLines, runAgent, spawnAgent, writeConfig, endpointsUrl } from "../helpers/agent.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { freePort } from "../helpers/nats-server.ts";
import { openSpoolFile } from "../../src/spool/file.ts";

const SYNCHRONOUS_NORMAL = 1;


describe("README spool limits", () => {
  test("the spool is SQLite in WAL mode with synchronous=NORMAL", () => {
    const db = openSpoolFile(join(makeTempDir("spool-mode"), "spool.db"));
    try {
      expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: SYNCHRONOUS_NORMAL });
    } finally {
      db.close();
    }
  });

  test("spool.max_bytes bounds events plus ~96 bytes each; when_full: drop_newest drops the rest as spool_full, logged, and the counts add up", async () => {
    // Events of 104814 bytes: ten fit in 1 MiB as bare bytes, nine once each row counts 96 more.
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 1s }
nats: { url: "nats://127.0.0.1:${await freePort()}", reconnect_wait: 100ms }
spool: { path: ${join(makeTempDir("spool-limits"), "spool.db")}, max_bytes: 1MiB, when_full: drop_newest }
collectors:
  synthetic: { config: { count: 30, rate: 0, payload_bytes: 104820 } }
`);
    const r = await runAgent(["--once", "-c", file]);
    expect(r.code).toBe(1);
    const logs = logLines(r.stdout);
    expect(logs.some((l) => l.level === "warn" && l.msg === "spool full: events dropped (spool.when_full)" && l.reason === "spool_full")).toBe(true);
    const report = logs.find((l) => l.msg.startsWith("shutdown deadline passed"))!;
    expect(report).toMatchObject({ accepted: 30, inherited: 0, published: 0, in_spool: 9, discarded: 21, lost: 0 });
    expect(report.accepted + report.inherited).toBe(report.published + report.discarded + report.in_spool + report.lost);
  });

  test("when_full: block: a full spool makes the workers wait ('spool full: waiting for the drainer'), then the collectors (queue full, emit waiting); nothing is dropped", async () => {
    const file = writeConfig(`
nats: { url: "nats://127.0.0.1:${await freePort()}", reconnect_wait: 100ms }
orchestrator: { buffer_size: 20 }
spool: { path: ${join(makeTempDir("spool-block"), "spool.db")}, max_bytes: 1MiB, when_full: block }
collectors:
  synthetic: { config: { rate: 0, payload_bytes: 104820 } }
`);
    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    const logs = () => logLines(out.lines.join("\n"));
    try {
      const url = await endpointsUrl(out.lines);
      type Status = { queue: { utilization: number; waiting: number } };
      const status = async () => (await (await fetch(`${url}/status`)).json()) as Status;
      await waitFor(() => logs().some((l) => l.msg === "spool full: waiting for the drainer to make room (spool.when_full: block)"), "the spool-full warning", 15_000);
      await waitFor(async () => {
        const s = await status();
        return s.queue.utilization === 1 && s.queue.waiting > 0;
      }, "a full queue with the collector waiting in emit", 15_000);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).not.toContain("orchestrator_events_dropped_total{");
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
      await out.ended;
    }
  }, 40_000);
});
