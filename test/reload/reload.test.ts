// Hot reload against real files, a real spool and real nats-server
// processes: collectors start, stop and restart; invalid edits leave the
// agent on its old config with located errors; SIGHUP; a ConfigMap-style
// symlink swap; NATS settings changing; a reload during a NATS outage. No
// accepted event is lost in any of them.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Orchestrator, type ShutdownReport } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { syntheticFactory } from "../../src/collectors/synthetic/index.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { ConfigReloader } from "../../src/reload/reloader.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { Spool } from "../../src/spool/spool.ts";
import { silentLogger } from "../helpers/silent-logger.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { readStream, streamCount } from "../fault/harness.ts";

afterAll(stopAllNatsServers);
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const registry = () => builtinRegistry().register({ ...syntheticFactory, type: "other" });

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function captureLog() {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

async function agent(dir: string, yaml: string, opts: { publisher?: MemoryPublisher } = {}) {
  const file = join(dir, "config.yaml");
  writeFileSync(file, yaml);
  const reg = registry();
  const config = await loadConfigFile(file, reg);
  const { log, lines } = captureLog();
  const spool = Spool.open({ path: config.spool.path, maxBytes: config.spool.max_bytes, whenFull: "block", log: silentLogger() });
  const publisher = opts.publisher ?? createPublisher(config.nats, { log: silentLogger() });
  const orchestrator = new Orchestrator({ config, registry: reg, publisher, spool, log });
  const results: string[] = [];
  const reloader = new ConfigReloader({
    file,
    registry: reg,
    log,
    debounceMs: 50,
    onResult: (r) => results.push(r),
    apply: async (next) => {
      await orchestrator.reconfigure(next, (nats) => (opts.publisher ? opts.publisher : createPublisher(nats, { log: silentLogger() })));
    },
  });
  orchestrator.start();
  await reloader.start();
  let stopped: Promise<ShutdownReport> | undefined;
  const stop = () => {
    reloader.stop();
    stopped ??= orchestrator.stop();
    return stopped;
  };
  cleanups.push(stop);
  return { file, orchestrator, reloader, results, lines, stop };
}

function expectNothingLost(r: ShutdownReport) {
  expect(r).toMatchObject({ inSpool: 0, lost: 0, unaccounted: 0 });
  expect(r.accepted + r.inherited).toBe(r.published + r.discarded);
}

describe("hot reload", () => {
  test("collectors start, stop and restart as the file changes; nothing is lost", async () => {
    const dir = makeTempDir("reload");
    const base = (synthetic: string, other: string) => `
orchestrator: { shutdown_timeout: 5s }
spool: { path: ${join(dir, "spool.db")} }
collectors:
  synthetic: ${synthetic}
  other: ${other}
`;
    const publisher = new MemoryPublisher();
    const a = await agent(dir, base("{ config: { rate: 200 } }", "{ enabled: false, config: { rate: 100 } }"), { publisher });
    await waitFor(() => a.orchestrator.health.collector("synthetic").published > 20);

    rewrite(a.file, base("{ config: { rate: 300 } }", "{ enabled: true, config: { rate: 100 } }"));
    await waitFor(() => a.results.length === 1);
    expect(a.results).toEqual(["success"]);
    const reloaded = a.lines.find((l) => l.msg.startsWith("config reloaded"))!;
    expect(reloaded).toMatchObject({ started: ["other"], restarted: ["synthetic"], stopped: [], reconnected: false });
    await waitFor(() => a.orchestrator.health.collector("other").published > 10);
    expect(a.orchestrator.collectorNames().sort()).toEqual(["other", "synthetic"]);

    rewrite(a.file, base("{ enabled: false }", "{ enabled: true, config: { rate: 100 } }"));
    await waitFor(() => a.results.length === 2);
    expect(a.orchestrator.collectorNames()).toEqual(["other"]);
    expect(a.orchestrator.health.collector("synthetic").state).toBe("stopped");

    const report = await a.stop();
    expectNothingLost(report);
    expect(publisher.events.length).toBe(report.published);
  });

  test("an invalid edit keeps the old config, logs every error with file:line:col, and counts a failure", async () => {
    const dir = makeTempDir("reload");
    const a = await agent(dir, `spool: { path: ${join(dir, "spool.db")} }\ncollectors:\n  synthetic: { config: { rate: 100 } }\n`, { publisher: new MemoryPublisher() });
    rewrite(a.file, `spool: { path: ${join(dir, "spool.db")} }\norchestrator:\n  workers: many\ncollectors:\n  synthetic: { config: { rat: 5 } }\n`);
    await waitFor(() => a.results.length === 1);
    expect(a.results).toEqual(["failure"]);
    const errors = a.lines.filter((l) => l.level === 50).map((l) => l.msg);
    expect(errors).toContain(`config reload: ${a.file}:3:12 orchestrator.workers: expected an integer from 1 to 64, got "many"`);
    expect(errors.some((m) => m.startsWith(`config reload: ${a.file}:5:26 collectors.synthetic.config.rat: unknown key "rat" (did you mean "rate"?)`))).toBe(true);
    expect(errors.some((m) => m.includes("still running on the previous config"))).toBe(true);
    const before = a.orchestrator.health.collector("synthetic").published;
    await waitFor(() => a.orchestrator.health.collector("synthetic").published > before + 10);
    expectNothingLost(await a.stop());
  });

  test("SIGHUP reloads even when the file did not change; an unchanged file is not reloaded on a mere touch", async () => {
    const dir = makeTempDir("reload");
    const a = await agent(dir, `spool: { path: ${join(dir, "spool.db")} }\ncollectors:\n  synthetic: { config: { rate: 50 } }\n`, { publisher: new MemoryPublisher() });
    rewrite(a.file, await Bun.file(a.file).text());
    await Bun.sleep(300);
    expect(a.results).toEqual([]);
    process.kill(process.pid, "SIGHUP");
    await waitFor(() => a.results.length === 1);
    expect(a.results).toEqual(["success"]);
    expect(a.lines.find((l) => l.msg.startsWith("config reloaded"))).toMatchObject({ started: [], stopped: [], restarted: [] });
    expectNothingLost(await a.stop());
  });

  test("a ConfigMap update (the ..data symlink swapped) is picked up", async () => {
    const dir = makeTempDir("reload");
    const mount = join(dir, "mount");
    mkdirSync(join(mount, "..2026_v1"), { recursive: true });
    const yaml = (rate: number) => `spool: { path: ${join(dir, "spool.db")} }\ncollectors:\n  synthetic: { config: { rate: ${rate} } }\n`;
    writeFileSync(join(mount, "..2026_v1", "config.yaml"), yaml(50));
    symlinkSync("..2026_v1", join(mount, "..data"));
    symlinkSync("..data/config.yaml", join(mount, "config.yaml"));
    const file = join(mount, "config.yaml");
    const reg = registry();
    const config = await loadConfigFile(file, reg);
    const { log, lines } = captureLog();
    const orchestrator = new Orchestrator({ config, registry: reg, publisher: new MemoryPublisher(), log });
    const results: string[] = [];
    const reloader = new ConfigReloader({ file, registry: reg, log, debounceMs: 50, onResult: (r) => results.push(r), apply: (next) => orchestrator.reconfigure(next, () => new MemoryPublisher()).then(() => {}) });
    orchestrator.start();
    await reloader.start();
    cleanups.push(async () => {
      reloader.stop();
      await orchestrator.stop();
    });
    // What the kubelet does: write a new timestamped dir, point ..data_tmp at it, rename over ..data.
    mkdirSync(join(mount, "..2026_v2"));
    writeFileSync(join(mount, "..2026_v2", "config.yaml"), yaml(80));
    symlinkSync("..2026_v2", join(mount, "..data_tmp"));
    renameSync(join(mount, "..data_tmp"), join(mount, "..data"));
    await waitFor(() => results.length === 1);
    expect(lines.find((l) => l.msg.startsWith("config reloaded"))).toMatchObject({ restarted: ["synthetic"] });
  });

  test("changed NATS settings reconnect to the new server; every event reaches one of the two streams", async () => {
    const [one, two] = await Promise.all([startNatsServer(), startNatsServer()]);
    const dir = makeTempDir("reload");
    const yaml = (url: string) => `
orchestrator: { shutdown_timeout: 10s }
nats: { url: "${url}", subject: reload.events, stream: { name: RELOAD } }
spool: { path: ${join(dir, "spool.db")} }
collectors:
  synthetic: { config: { rate: 500 } }
`;
    const a = await agent(dir, yaml(one.url));
    await waitFor(() => a.orchestrator.health.collector("synthetic").published > 100);
    rewrite(a.file, yaml(two.url));
    await waitFor(() => a.results.length === 1);
    expect(a.lines.find((l) => l.msg.startsWith("config reloaded"))).toMatchObject({ reconnected: true });
    await waitFor(async () => ((await streamCount(two.url, "RELOAD")) ?? 0) > 100);
    const report = await a.stop();
    expectNothingLost(report);
    expect((await storedIn(one.url)) + (await storedIn(two.url))).toBe(report.published);
  }, 30_000);

  test("a new nats.subject (and nats.batch) restarts the collectors, whose events then go to the new subject, packed", async () => {
    const server = await startNatsServer();
    const dir = makeTempDir("reload");
    const yaml = (subject: string, stream: string, batch = "") => `
orchestrator: { shutdown_timeout: 10s }
nats: { url: "${server.url}", subject: ${subject}, stream: { name: ${stream} }${batch} }
spool: { path: ${join(dir, "spool.db")} }
collectors:
  synthetic: { config: { rate: 1000 } }
`;
    const a = await agent(dir, yaml("first.events", "FIRST"));
    await waitFor(() => a.orchestrator.health.collector("synthetic").published > 100);
    rewrite(a.file, yaml("second.events", "SECOND", ", batch: { max_events: 20, linger: 20ms }"));
    await waitFor(() => a.results.length === 1);
    expect(a.lines.find((l) => l.msg.startsWith("config reloaded"))).toMatchObject({ restarted: ["synthetic"], reconnected: true });
    await waitFor(async () => ((await streamCount(server.url, "SECOND")) ?? 0) > 10);
    const report = await a.stop();
    expectNothingLost(report);
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    let second = 0;
    let largest = 0;
    const messages = await storedIn(server.url, "SECOND");
    for (let seq = 1; seq <= messages; seq++) {
      const m = await jsm.streams.getMessage("SECOND", { seq });
      expect(m!.subject).toBe("second.events.synthetic");
      const n = Number(m!.header?.get("Tapio-Batch") || 1);
      second += n;
      largest = Math.max(largest, n);
    }
    await nc.close();
    expect(largest).toBeGreaterThan(1);
    expect(largest).toBeLessThanOrEqual(20);
    expect((await storedIn(server.url, "FIRST")) + second).toBe(report.published);
  }, 30_000);

  test("a reload during a NATS outage: the new config applies, events wait in the spool, all arrive after the restart", async () => {
    const server = await startNatsServer();
    const dir = makeTempDir("reload");
    const yaml = (rate: number) => `
orchestrator: { shutdown_timeout: 15s }
nats: { url: "${server.url}", subject: outage.events, stream: { name: OUTAGE }, reconnect_wait: 200ms }
spool: { path: ${join(dir, "spool.db")}, spill_after: 300ms }
collectors:
  synthetic: { config: { rate: ${rate} } }
`;
    const a = await agent(dir, yaml(400));
    await waitFor(() => a.orchestrator.health.collector("synthetic").published > 100);
    await server.kill("SIGKILL");
    await waitFor(() => a.orchestrator.delivery.spoolDepth() > 50);
    rewrite(a.file, yaml(600));
    await waitFor(() => a.results.length === 1);
    expect(a.results).toEqual(["success"]);
    expect(a.lines.find((l) => l.msg.startsWith("config reloaded"))).toMatchObject({ restarted: ["synthetic"] });
    const depthAtReload = a.orchestrator.delivery.spoolDepth();
    await waitFor(() => a.orchestrator.delivery.spoolDepth() > depthAtReload + 50, "events of the restarted collector in the spool");
    await server.restart();
    await waitFor(() => a.orchestrator.delivery.spoolDepth() === 0, "the spool to drain", 15_000);
    const report = await a.stop();
    expectNothingLost(report);
    expect(await storedIn(server.url, "OUTAGE")).toBe(report.published);
  }, 40_000);
});

describe("hot reload of instances", () => {
  test("instances start, stop and restart one by one: the others run on untouched, their sequences unbroken", async () => {
    const server = await startNatsServer();
    const dir = makeTempDir("reload");
    const yaml = (instances: string) => `
orchestrator: { shutdown_timeout: 10s }
nats: { url: "${server.url}", subject: inst.events, stream: { name: INSTANCES } }
spool: { path: ${join(dir, "spool.db")} }
collectors:
${instances}`;
    const a = await agent(dir, yaml("  synthetic/a: { config: { rate: 200 } }\n  synthetic/b: { config: { rate: 200 } }\n"));
    const published = (name: string) => a.orchestrator.health.collector(name).published;
    const reloads = () => a.lines.filter((l) => l.msg.startsWith("config reloaded")).map(({ started, stopped, restarted }) => ({ started, stopped, restarted }));
    await waitFor(() => published("synthetic/a") > 20 && published("synthetic/b") > 20);

    // b's config changes: only b restarts
    rewrite(a.file, yaml("  synthetic/a: { config: { rate: 200 } }\n  synthetic/b: { config: { rate: 300 } }\n"));
    await waitFor(() => a.results.length === 1);
    expect(reloads()).toEqual([{ started: [], stopped: [], restarted: ["synthetic/b"] }]);
    let at = published("synthetic/b");
    await waitFor(() => published("synthetic/b") > at + 20);

    // c is added: only c starts
    rewrite(a.file, yaml("  synthetic/a: { config: { rate: 200 } }\n  synthetic/b: { config: { rate: 300 } }\n  synthetic/c: { config: { rate: 100, type: c.event } }\n"));
    await waitFor(() => a.results.length === 2);
    expect(reloads()[1]).toEqual({ started: ["synthetic/c"], stopped: [], restarted: [] });
    await waitFor(() => published("synthetic/c") > 20);

    // b is removed: only b stops
    rewrite(a.file, yaml("  synthetic/a: { config: { rate: 200 } }\n  synthetic/c: { config: { rate: 100, type: c.event } }\n"));
    await waitFor(() => a.results.length === 3);
    expect(reloads()[2]).toEqual({ started: [], stopped: ["synthetic/b"], restarted: [] });
    expect(a.orchestrator.collectorNames()).toEqual(["synthetic/a", "synthetic/c"]);
    expect(a.orchestrator.health.collector("synthetic/b").state).toBe("stopped");
    at = published("synthetic/a");
    await waitFor(() => published("synthetic/a") > at + 20);

    const report = await a.stop();
    expectNothingLost(report);
    const stored = await readStream(server.url, "INSTANCES");
    expect(stored.length).toBe(report.published);
    const seqs = (subject: string) => stored.filter((m) => m.subject === subject).map((m) => m.seq).sort((x, y) => x - y);
    // a ran through all three reloads without a restart: one unbroken sequence from 0
    const aSeqs = seqs("inst.events.synthetic.a");
    expect(aSeqs).toEqual([...Array(aSeqs.length).keys()]);
    expect(aSeqs.length).toBe(a.orchestrator.health.collector("synthetic/a").published);
    // b ran twice (restarted once, then removed): two sequences from 0
    const bSeqs = seqs("inst.events.synthetic.b");
    expect(bSeqs.filter((n) => n === 0)).toHaveLength(2);
    const cSeqs = seqs("inst.events.synthetic.c");
    expect(cSeqs).toEqual([...Array(cSeqs.length).keys()]);
    expect(new Set(stored.map((m) => m.subject))).toEqual(new Set(["inst.events.synthetic.a", "inst.events.synthetic.b", "inst.events.synthetic.c"]));
  }, 40_000);
});

/** The messages in a stream that must exist; any error (a missing stream included) fails the test. */
async function storedIn(url: string, name = "RELOAD"): Promise<number> {
  const n = await streamCount(url, name);
  if (n === undefined) throw new Error(`stream ${name} not found at ${url}`);
  return n;
}
