// `tapio-collectors check` against a real nats-server with per-user
// permissions: all ok (exit 0, and the probes store nothing and create no
// stream), a missing publish permission, a stream that does not cover the
// subjects, an unwritable spool directory and an unreadable collector
// source (as the user nobody, via setpriv), each a FAIL line with its
// reason and exit 1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { runAgent, sourceCommand, writeConfig } from "../helpers/agent.ts";
import { makeTempDir } from "../helpers/cleanup.ts";

let server: NatsServer;
let admin: NatsConnection;

// The README's permissions for jetstream mode with the agent creating stream CHK for subject prefix chk.
const AGENT = `publish: { allow: ["chk.>", "$JS.API.STREAM.INFO.CHK", "$JS.API.STREAM.CREATE.CHK"] }, subscribe: { allow: ["_INBOX.>"] }`;
const NO_PUBLISH = `publish: { allow: ["$JS.API.STREAM.INFO.CHK", "$JS.API.STREAM.CREATE.CHK"] }, subscribe: { allow: ["_INBOX.>"] }`;

beforeAll(async () => {
  server = await startNatsServer({
    config: `accounts { A { jetstream: enabled, users: [
      { user: admin, password: a }
      { user: agent, password: p, permissions: { ${AGENT} } }
      { user: nopub, password: p, permissions: { ${NO_PUBLISH} } }
      { user: core, password: p, permissions: { publish: { allow: ["chk.synthetic"] }, subscribe: { allow: ["nothing.at.all"] } } }
      { user: inst, password: p, permissions: { publish: { allow: ["chk.synthetic.a", "chk.dns.cluster"] }, subscribe: { allow: ["nothing.at.all"] } } }
    ] } }`,
  });
  admin = await connect({ servers: server.url, user: "admin", pass: "a" });
  await (await jetstreamManager(admin)).streams.add({ name: "OTHER", subjects: ["other.>"] });
});

afterAll(async () => {
  await admin?.close();
  await stopAllNatsServers();
});

function config(opts: { user: string; password?: string; stream?: string; mode?: "core"; url?: string }): string {
  return writeConfig(`
nats: { url: ${opts.url ?? server.url}, mode: ${opts.mode ?? "jetstream"}, username: ${opts.user}, password: ${opts.password ?? "p"}, subject: chk, stream: { name: ${opts.stream ?? "CHK"} }, timeout: 2s }
collectors:
  synthetic: {}
  process: {}
`);
}

async function check(file: string, command = sourceCommand()) {
  const { code, stdout, stderr } = await runAgent(["check", "--config", file], { command });
  return { code, lines: stdout.trim().split("\n"), stderr };
}

async function streamNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const s of (await jetstreamManager(admin)).streams.list()) names.push(s.config.name);
  return names.sort();
}

test("all ok: exit 0, one ok line per check; the stream is neither created nor written by the probes", async () => {
  const file = config({ user: "agent" });
  const missing = await check(file);
  expect(missing.lines).toEqual([
    expect.stringMatching(/^ok {4}nats: connected to 127\.0\.0\.1:\d+/),
    'ok    stream CHK: does not exist; the agent may create it for "chk.>" at start',
    "ok    publish chk.process: allowed; stream CHK, created at start, will take it",
    "ok    publish chk.synthetic: allowed; stream CHK, created at start, will take it",
    expect.stringMatching(/^ok {4}spool: .*spool\.db writable$/),
    "ok    collector process: /proc/stat readable",
    "ok    collector process: /proc readable",
    "ok    collector synthetic: reads nothing outside the agent",
  ]);
  expect(missing.code).toBe(0);
  expect(await streamNames()).toEqual(["OTHER"]);

  const jsm = await jetstreamManager(admin);
  await jsm.streams.add({ name: "CHK", subjects: ["chk.>"] });
  const existing = await check(file);
  expect(existing.lines.slice(1, 4)).toEqual([
    'ok    stream CHK: exists, subjects ["chk.>"] cover "chk.>"',
    "ok    publish chk.process: allowed, stream CHK takes it (probe refused by the stream, nothing stored)",
    "ok    publish chk.synthetic: allowed, stream CHK takes it (probe refused by the stream, nothing stored)",
  ]);
  expect(existing.code).toBe(0);
  expect((await jsm.streams.info("CHK")).state.messages).toBe(0);
  await jsm.streams.delete("CHK");
});

test("missing publish permission: FAIL per subject naming it, exit 1", async () => {
  const { code, lines } = await check(config({ user: "nopub" }));
  expect(lines).toContain('FAIL  publish chk.process: the NATS user may not publish to "chk.process"; see README "NATS permissions"');
  expect(lines).toContain('FAIL  publish chk.synthetic: the NATS user may not publish to "chk.synthetic"; see README "NATS permissions"');
  expect(lines.filter((l) => l.startsWith("FAIL"))).toHaveLength(2);
  expect(code).toBe(1);
});

test("core mode: needs only publish; a subject it may not publish to FAILs", async () => {
  const { code, lines } = await check(config({ user: "core", mode: "core" }));
  expect(lines.filter((l) => l.startsWith("ok    publish") || l.startsWith("FAIL"))).toEqual([
    'FAIL  publish chk.process: the NATS user may not publish to "chk.process"; see README "NATS permissions"',
    "ok    publish chk.synthetic: allowed (one empty probe message with header Tapio-Check)",
  ]);
  expect(code).toBe(1);
});

test("instances: a publish check per instance subject and a source check per instance, each named by its key", async () => {
  const dir = makeTempDir("check-instances");
  const resolv = join(dir, "resolv.conf");
  await Bun.write(resolv, "nameserver 10.96.0.10\n");
  const file = writeConfig(`
nats: { url: ${server.url}, mode: core, username: inst, password: p, subject: chk, timeout: 2s }
collectors:
  synthetic/a: {}
  synthetic/b: {}
  dns/cluster: { config: { names: [a.example.], resolv_conf: ${resolv} } }
  dns/external: { config: { names: [b.example.], resolv_conf: ${join(dir, "missing.conf")} } }
  dns/off: { enabled: false, config: { names: [c.example.] } }
`);
  const { code, lines } = await check(file);
  expect(lines.slice(1)).toEqual([
    "ok    publish chk.dns.cluster: allowed (one empty probe message with header Tapio-Check)",
    'FAIL  publish chk.dns.external: the NATS user may not publish to "chk.dns.external"; see README "NATS permissions"',
    "ok    publish chk.synthetic.a: allowed (one empty probe message with header Tapio-Check)",
    'FAIL  publish chk.synthetic.b: the NATS user may not publish to "chk.synthetic.b"; see README "NATS permissions"',
    expect.stringMatching(/^ok {4}spool: .*spool\.db writable$/),
    `ok    collector dns/cluster: ${resolv} readable`,
    expect.stringMatching(new RegExp(`^FAIL  collector dns/external: .*${join(dir, "missing.conf").replace(/[.]/g, "\\.")}`)),
    "ok    collector synthetic/a: reads nothing outside the agent",
    "ok    collector synthetic/b: reads nothing outside the agent",
  ]);
  expect(code).toBe(1);
});

test("NATS unreachable: one FAIL line for it, the local checks still run", async () => {
  const file = config({ user: "agent", url: "nats://127.0.0.1:1" });
  const { code, lines } = await check(file);
  expect(lines[0]).toStartWith("FAIL  nats: cannot connect to nats://127.0.0.1:1: ");
  expect(lines.slice(1).every((l) => l.startsWith("ok    spool") || l.startsWith("ok    collector"))).toBe(true);
  expect(code).toBe(1);
});

test("no stream covering the subjects: the stream and every subject FAIL, exit 1", async () => {
  const { code, lines } = await check(config({ user: "admin", password: "a", stream: "OTHER" }));
  expect(code).toBe(1);
  expect(lines).toContain('FAIL  stream OTHER: its subjects ["other.>"] do not cover "chk.>"; add "chk.>" or configure another stream');
  expect(lines).toContain('FAIL  publish chk.synthetic: no stream takes "chk.synthetic": events would get no_responders');
});

// nobody must reach this repository and Bun, without the capability to read everything (the
// unreadable source is the point): not so when the repository was cloned into a private folder.
const PLAIN_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const nobodyReachesRepo = Bun.spawnSync([...PLAIN_NOBODY, "test", "-r", sourceCommand()[1]!, "-a", "-x", sourceCommand()[0]!]).exitCode === 0;

test.skipIf(process.getuid?.() !== 0 || !nobodyReachesRepo)("as the user nobody: an unwritable spool directory and an unreadable source FAIL with the reason", async () => {
  // A directory only root may write to, and a file only root may read.
  const dir = makeTempDir("check-nobody");
  chmodSync(dir, 0o755);
  chmodSync(dirname(dir), 0o711); // the tests' temp root: nobody may pass through it
  const spoolDir = join(dir, "spool");
  mkdirSync(spoolDir, { mode: 0o755 });
  const kmsg = join(dir, "kmsg");
  await Bun.write(kmsg, "");
  chmodSync(kmsg, 0o600);
  const file = join(dir, "config.yaml");
  await Bun.write(file, `
nats: { url: ${server.url}, username: agent, password: p, subject: chk, stream: { name: CHK }, timeout: 2s }
spool: { path: ${spoolDir}/spool.db }
http: { listen: "127.0.0.1:0" }
collectors:
  kernel: { config: { kmsg_path: ${kmsg} } }
`);
  chmodSync(file, 0o644);
  const asNobody = [...PLAIN_NOBODY, ...sourceCommand()];
  const { code, lines, stderr } = await check(file, asNobody);
  expect(stderr).toBe("");
  expect(lines).toContain(`FAIL  spool: ${spoolDir}/spool.db cannot be written (permission denied for this user)`);
  expect(lines).toContain(`FAIL  collector kernel: ${kmsg}: permission denied for this user`);
  expect(lines).toContain("ok    collector kernel: /proc/vmstat readable");
  expect(lines.filter((l) => l.startsWith("FAIL"))).toHaveLength(2);
  expect(code).toBe(1);
});
