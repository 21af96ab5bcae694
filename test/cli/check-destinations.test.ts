// `tapio-collectors check` with `destinations:` (issue 15), against two real
// nats-servers: `default` on one (no auth), the destinations on the other
// (per-user permissions). Each destination gets its own lines, named
// `destination <name>: ...`: its connection, its stream, a publish probe per
// subject its routes send it (`<its subject>.<instance>`), and its own spool
// file. A destination refusing (bad credentials, down, a missing permission)
// FAILs its lines alone, and the exit code is 1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { dirname } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort, startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { runAgent, writeConfig } from "../helpers/agent.ts";

let def: NatsServer;
let cen: NatsServer;
let admin: NatsConnection;

// The README's permissions for jetstream mode, for stream CEN and subject prefix cen.
const AGENT = `publish: { allow: ["cen.>", "$JS.API.STREAM.INFO.CEN", "$JS.API.STREAM.CREATE.CEN"] }, subscribe: { allow: ["_INBOX.>"] }`;
// may publish only the events of synthetic/b
const ONLY_B = `publish: { allow: ["cen.synthetic.b", "$JS.API.STREAM.INFO.CEN", "$JS.API.STREAM.CREATE.CEN"] }, subscribe: { allow: ["_INBOX.>"] }`;

beforeAll(async () => {
  [def, cen] = await Promise.all([
    startNatsServer(),
    startNatsServer({
      config: `accounts { C { jetstream: enabled, users: [
        { user: admin, password: a }
        { user: agent, password: p, permissions: { ${AGENT} } }
        { user: onlyb, password: p, permissions: { ${ONLY_B} } }
      ] } }`,
    }),
  ]);
  admin = await connect({ servers: cen.url, user: "admin", pass: "a" });
});

afterAll(async () => {
  await admin?.close();
  await stopAllNatsServers();
});

/** synthetic/a goes to default only; synthetic/b to default and central; nothing to regional. */
const ROUTES = `
routes:
  - name: b-everywhere
    match: { collector: synthetic/b }
    to: [default, central]
  - name: rest
    to: default
`;

function config(central: string, extra = "", routes = ROUTES): string {
  return writeConfig(`
nats: { url: ${def.url}, subject: def, stream: { name: DEF }, timeout: 2s }
destinations:
  central: { ${central}, subject: cen, stream: { name: CEN }, timeout: 2s }
${extra}
${routes}
collectors:
  synthetic/a: {}
  synthetic/b: {}
`);
}

async function check(file: string) {
  const { code, stdout, stderr } = await runAgent(["check", "--config", file]);
  return { code, lines: stdout.trim().split("\n"), stderr };
}

test("all ok: each destination's lines name it, with the subjects its routes send it and its own spool file; exit 0, nothing stored", async () => {
  const file = config(`url: ${cen.url}, username: agent, password: p`, `  regional: { url: ${def.url}, mode: core, subject: reg, timeout: 2s }`);
  const spoolDir = dirname(file);
  const { code, lines, stderr } = await check(file);
  expect(stderr).toBe("");
  expect(lines).toEqual([
    expect.stringMatching(/^ok {4}nats: connected to 127\.0\.0\.1:\d+/),
    'ok    stream DEF: does not exist; the agent may create it for "def.>" at start',
    "ok    publish def.synthetic.a: allowed; stream DEF, created at start, will take it",
    "ok    publish def.synthetic.b: allowed; stream DEF, created at start, will take it",
    `ok    spool: ${spoolDir}/spool.db writable`,
    expect.stringMatching(new RegExp(`^ok {4}destination central: nats: connected to 127\\.0\\.0\\.1:${cen.port}`)),
    'ok    destination central: stream CEN: does not exist; the agent may create it for "cen.>" at start',
    "ok    destination central: publish cen.synthetic.b: allowed; stream CEN, created at start, will take it",
    `ok    destination central: spool: ${spoolDir}/spool.central.db writable`,
    expect.stringMatching(/^ok {4}destination regional: nats: connected to 127\.0\.0\.1:\d+/),
    "ok    destination regional: routes: no rule of routes sends it events of an enabled collector; no subject to probe",
    `ok    destination regional: spool: ${spoolDir}/spool.regional.db writable`,
    "ok    collector synthetic/a: reads nothing outside the agent",
    "ok    collector synthetic/b: reads nothing outside the agent",
  ]);
  expect(code).toBe(0);
  const streams: string[] = [];
  for await (const s of (await jetstreamManager(admin)).streams.list()) streams.push(s.config.name);
  expect(streams).toEqual([]);
});

test("one destination with bad credentials and one down: their nats lines FAIL, default's pass; exit 1", async () => {
  const down = await freePort();
  const file = config(`url: ${cen.url}, username: agent, password: wrong`, `  regional: { url: "nats://127.0.0.1:${down}", subject: reg, timeout: 2s }`, "");
  const { code, lines } = await check(file);
  const failed = lines.filter((l) => l.startsWith("FAIL"));
  expect(failed).toEqual([
    expect.stringMatching(new RegExp(`^FAIL  destination central: nats: cannot connect to nats://127\\.0\\.0\\.1:${cen.port}: .*[Aa]uthorization`)),
    expect.stringMatching(new RegExp(`^FAIL  destination regional: nats: cannot connect to nats://127\\.0\\.0\\.1:${down}: `)),
  ]);
  // without routes default gets every event; the others none, and say so
  expect(lines).toContain("ok    publish def.synthetic.a: allowed; stream DEF, created at start, will take it");
  expect(lines).toContain("ok    publish def.synthetic.b: allowed; stream DEF, created at start, will take it");
  expect(lines).toContain("ok    destination central: routes: no routes: every event goes to default; no subject to probe");
  expect(lines.filter((l) => l.includes("publish cen.") || l.includes("publish reg."))).toEqual([]);
  expect(lines).toContain(`ok    destination regional: spool: ${dirname(file)}/spool.regional.db writable`);
  expect(code).toBe(1);
});

test("a destination's user may not publish a subject its routes send it: that line FAILs, naming the destination and the subject", async () => {
  const routes = `
routes:
  - name: all-central
    to: [default, central]
`;
  const { code, lines } = await check(config(`url: ${cen.url}, username: onlyb, password: p`, "", routes));
  expect(lines.filter((l) => l.includes("publish cen."))).toEqual([
    'FAIL  destination central: publish cen.synthetic.a: the NATS user may not publish to "cen.synthetic.a"; see README "NATS permissions"',
    "ok    destination central: publish cen.synthetic.b: allowed; stream CEN, created at start, will take it",
  ]);
  expect(lines.filter((l) => l.startsWith("FAIL"))).toHaveLength(1);
  expect(code).toBe(1);
});
