// Destinations and routes under hot reload (issue 15), the agent as a real
// process, two real nats-servers. Run 1: `central` and a route to it are
// added by rewriting the config and SIGHUP; central's server is killed and,
// while events flow, central is removed again (its events wait in
// spool.central.db). Run 2 starts without central, reports the leftover
// spool, and central comes back under the same name with its server up: the
// spooled events are replayed. Nothing is lost or duplicated at either server.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { waitFor } from "../helpers/wait-for.ts";
import {
  endFaultTest,
  exitCode,
  expectAccounting,
  expectNoDuplicates,
  readStream,
  spoolRows,
  startAgent,
  statusUrl,
  streamCount,
  type AgentProcess,
  type LogLine,
  type StreamMessage,
} from "../fault/harness.ts";
import { expectContiguous, expectDestinationAccounts, pickAccounts, seqsOn, tryStatus } from "./helpers.ts";

const servers: NatsServer[] = [];
afterEach(() => endFaultTest(servers));
afterAll(stopAllNatsServers);

const RATE = 400;

/** Writes like an editor: a temporary file renamed over the config. */
function rewrite(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** Rewrites the config and sends SIGHUP (the file watcher may reload too: a second reload of the same text changes nothing). */
function reconfigure(agent: AgentProcess, file: string, text: string): void {
  rewrite(file, text);
  agent.kill("SIGHUP");
}

const reloadFailures = (lines: LogLine[]) => lines.filter((l) => typeof l.msg === "string" && /^config reload (failed|rolled back)/.test(l.msg));

const ids = (messages: readonly StreamMessage[], subject: string) => new Set(messages.filter((m) => m.subject === subject).map((m) => m.eventId));

describe("destinations under hot reload", () => {
  test("add central + route by SIGHUP, remove it while its server is down (spooled), restart without it (reported), add it back: replayed, none lost or duplicated", async () => {
    const [def, cen] = await Promise.all([startNatsServer(), startNatsServer()]);
    servers.push(def, cen);
    const dir = makeTempDir("reload-dest");
    const file = join(dir, "config.yaml");
    const centralSpool = join(dir, "spool.central.db");
    const yaml = (o: { central: boolean; instance: "a" | "b" }) => `
orchestrator: { shutdown_timeout: 20s }
nats: { url: ${def.url}, subject: rl.events, stream: { name: RL_DEFAULT } }
${
  o.central
    ? `destinations:
  central:
    url: [${cen.url}]
    mode: jetstream
    subject: rl.central
    stream: { name: RL_CENTRAL }
    reconnect_wait: 250ms
routes:
  - name: everywhere
    to: [default, central]
`
    : ""
}spool: { path: ${join(dir, "spool.db")} }
http: { listen: "127.0.0.1:0" }
collectors:
  synthetic/${o.instance}: { config: { rate: ${RATE}, type: app.event, severity: warning } }
`;
    const defaultCount = async () => (await streamCount(def.url, "RL_DEFAULT")) ?? 0;
    const centralCount = async () => (await streamCount(cen.url, "RL_CENTRAL")) ?? 0;
    /** /status destinations; throws at once if a reload failed (the agent says why in its log) */
    const destinations = async (base: string, agent: AgentProcess) => {
      const failed = reloadFailures(agent.lines);
      if (failed.length) throw new Error(`config reload failed:\n${agent.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("config reload")).map((l) => l.msg).join("\n")}`);
      return (await tryStatus(base))?.destinations as Record<string, any> | undefined;
    };

    // ------------------------------------------------------------ run 1
    writeFileSync(file, yaml({ central: false, instance: "a" }));
    const first = startAgent(["-c", file]);
    const base1 = (await statusUrl(first)).replace(/\/status$/, "");
    await waitFor(async () => (await defaultCount()) > RATE / 4, "default to take events", 10_000, 50);

    // add central and a route to both
    reconfigure(first, file, yaml({ central: true, instance: "a" }));
    await waitFor(async () => (await destinations(base1, first))?.central?.nats?.connected === true, "/status: central connected after the reload", 10_000, 50);
    await waitFor(async () => (await centralCount()) > RATE / 2, "central's stream to take events", 10_000, 50);

    // central's server dies: its events go to its spool
    await cen.kill("SIGKILL");
    await waitFor(async () => ((await destinations(base1, first))?.central?.spool?.depth ?? 0) > RATE / 2, "/status: central's spool to hold half a second of events", 10_000, 50);
    expect(existsSync(centralSpool)).toBe(true);

    // remove central while events flow and its server is down
    const beforeRemoval = await defaultCount();
    reconfigure(first, file, yaml({ central: false, instance: "a" }));
    await waitFor(async () => {
      const d = await destinations(base1, first);
      return d !== undefined && !("central" in d);
    }, "/status without central after the reload", 10_000, 50);
    await waitFor(async () => (await defaultCount()) > beforeRemoval + RATE / 2, "default to keep taking events after the removal", 10_000, 50);

    first.kill("SIGTERM");
    const code1 = await exitCode(first, 30_000);
    expect({ code: [0, 1].includes(code1), stderr: first.stderr() }).toEqual({ code: true, stderr: "" });
    expect(reloadFailures(first.lines)).toEqual([]);
    const final1 = first.final();
    expectAccounting(final1, { lost: 0 });
    const default1 = expectDestinationAccounts(final1, "default", { inherited: 0, discarded: 0, in_spool: 0, lost: 0 });

    // what central's spool holds: its events, once each, for the next start
    const spooled = spoolRows(centralSpool);
    const S = spooled.length;
    expect(S).toBeGreaterThan(0);
    expect(new Set(spooled.map((r) => r.id)).size).toBe(S);
    expect(spooled.every((r) => r.subject === "rl.central.synthetic.a")).toBe(true);
    // a removed destination's accounts, if the final line keeps them, still balance and lose nothing
    const central1 = final1!.destinations?.central;
    if (central1) expectDestinationAccounts(final1, "central", { lost: 0, in_spool: S });

    // default: every event of the run, once, whatever the reloads did
    const atDefault1 = await readStream(def.url, "RL_DEFAULT");
    expectNoDuplicates(atDefault1);
    const a1 = expectContiguous(seqsOn(atDefault1, "rl.events.synthetic.a"), "default's synthetic/a seqs, run 1");
    expect(a1.lo).toBe(0);
    expect(atDefault1.length).toBe(default1.published);

    // ------------------------------------------------------------ run 2, without central
    writeFileSync(file, yaml({ central: false, instance: "b" }));
    const second = startAgent(["-c", file]);
    const base2 = (await statusUrl(second)).replace(/\/status$/, "");
    // the leftover spool is reported at start: a line naming the destination and its event count
    const leftover = await second.waitForLog(
      (l) => typeof l.msg === "string" && l.msg.includes("central") && (l.msg.includes(String(S)) || Object.values(l).includes(S)),
      `a start line reporting central's leftover spool of ${S} event(s)`,
      10_000,
    );
    await waitFor(async () => ids(await readStream(def.url, "RL_DEFAULT"), "rl.events.synthetic.b").size > RATE / 4, "default to take run 2's events", 10_000, 100);

    // central's server is back (nothing publishes to it yet); then central is added again under the same name
    await cen.restart();
    const storedAtCentralBefore = await readStream(cen.url, "RL_CENTRAL");
    expectNoDuplicates(storedAtCentralBefore);
    const expectedA = new Set([...ids(storedAtCentralBefore, "rl.central.synthetic.a"), ...spooled.map((r) => r.id)]);
    reconfigure(second, file, yaml({ central: true, instance: "b" }));
    await waitFor(async () => (await destinations(base2, second))?.central?.nats?.connected === true, "/status: central connected again", 10_000, 50);
    await waitFor(
      async () => ids(await readStream(cen.url, "RL_CENTRAL"), "rl.central.synthetic.a").size >= expectedA.size,
      `central's stream to hold run 1's ${expectedA.size} events (${S} replayed from the spool)`,
      20_000,
      200,
    );
    await waitFor(async () => ids(await readStream(cen.url, "RL_CENTRAL"), "rl.central.synthetic.b").size > RATE / 2, "central to take run 2's new events", 10_000, 100);

    second.kill("SIGTERM");
    const code2 = await exitCode(second, 30_000);
    expect({ code: code2, stderr: second.stderr() }).toEqual({ code: 0, stderr: "" });
    expect(reloadFailures(second.lines)).toEqual([]);
    const final2 = second.final();
    expectAccounting(final2, { in_spool: 0, lost: 0 });
    expectDestinationAccounts(final2, "default", { inherited: 0, discarded: 0, in_spool: 0, lost: 0 });
    const central2 = expectDestinationAccounts(final2, "central", { inherited: S, discarded: 0, in_spool: 0, lost: 0 });
    expect(spoolRows(centralSpool)).toEqual([]);

    // central: run 1's events exactly (stored before the kill, plus the spooled ones), once each, unbroken
    const atCentral = await readStream(cen.url, "RL_CENTRAL");
    expectNoDuplicates(atCentral);
    expect(ids(atCentral, "rl.central.synthetic.a")).toEqual(expectedA);
    const c1 = expectContiguous(seqsOn(atCentral, "rl.central.synthetic.a"), "central's synthetic/a seqs (run 1)");
    expect(c1.lo).toBeGreaterThan(0); // the route came after the first events
    if (central1) expect(expectedA.size).toBe(central1.accepted);
    const defaultA = ids(atDefault1, "rl.events.synthetic.a");
    expect([...expectedA].filter((id) => !defaultA.has(id))).toEqual([]);
    // ... and run 2's since it came back, each also at default
    const atDefault2 = await readStream(def.url, "RL_DEFAULT");
    expectNoDuplicates(atDefault2);
    expectContiguous(seqsOn(atCentral, "rl.central.synthetic.b"), "central's synthetic/b seqs (run 2)");
    const b2 = expectContiguous(seqsOn(atDefault2, "rl.events.synthetic.b"), "default's synthetic/b seqs (run 2)");
    expect(b2.lo).toBe(0);
    const defaultB = ids(atDefault2, "rl.events.synthetic.b");
    expect([...ids(atCentral, "rl.central.synthetic.b")].filter((id) => !defaultB.has(id))).toEqual([]);
    expect(ids(atCentral, "rl.central.synthetic.b").size + S).toBe(central2.published);

    console.log(
      `[reload] ${JSON.stringify({
        run1_exit: code1,
        run1_default: pickAccounts(final1?.destinations?.default),
        run1_central: pickAccounts(central1),
        central_spooled: S,
        central_stored_before_replay: storedAtCentralBefore.length,
        leftover_line: leftover.msg,
        run2_central: pickAccounts(final2?.destinations?.central),
        central_a_seqs: c1,
      })}`,
    );
  }, 120_000);
});
