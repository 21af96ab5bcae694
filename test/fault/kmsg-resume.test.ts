// The kernel collector resumes where it stopped, against a real nats-server
// in JetStream mode and the agent as a real process (bun src/main.ts run):
// OOM records appended to a kmsg file while the agent is stopped are
// published once after it starts again, and none of those published before
// the stop again (counted by a core subscriber, which sees every publish,
// duplicates JetStream drops included); a changed boot id starts afresh; a
// SIGKILL right after records arrive loses none in disk mode and puts none
// twice in the stream; in memory mode the saved position never passes events
// NATS has not acknowledged, so a SIGKILL with NATS frozen loses none either.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { writeConfig } from "../helpers/agent.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { OOM_6_18, TESTDATA } from "../collectors/kernel/helpers.ts";
import { exitCode, killAllAgents, msgStartsWith, readStatus, startAgent, statusUrl, streamCount, type AgentProcess } from "./harness.ts";

const BOOT = "6e1f0a52-94c4-4f7e-b0a6-3b1de4c0a1f1";
const NEW_BOOT = "a0c5d4e3-1b2f-4a6c-9d8e-7f6a5b4c3d2e";
/** The real OOM report of testdata (records 337..415, pid 6854): two events, container.oom and NPD's OOMKilling. */
const OOM_LINES = readFileSync(OOM_6_18, "utf8").split("\n").filter((l) => l !== "");
const EVENTS_PER_OOM = 2;

const servers: NatsServer[] = [];
const subscribers: NatsConnection[] = [];
afterEach(async () => {
  await killAllAgents();
  for (const nc of subscribers.splice(0)) await nc.close();
  for (const server of servers.splice(0)) {
    await server.kill("SIGCONT").catch(() => {});
    await server.stop();
  }
});
afterAll(stopAllNatsServers);

/** A node: a kmsg file, a /proc with a boot id, the spool, and the config that reads them. */
function node(server: NatsServer, stream: string, bufferType: "memory" | "disk", extra = "") {
  const dir = makeTempDir("kmsg-resume");
  const kmsg = join(dir, "kmsg");
  const proc = join(dir, "proc");
  mkdirSync(join(proc, "sys/kernel/random"), { recursive: true });
  writeFileSync(join(proc, "sys/kernel/random/boot_id"), `${BOOT}\n`);
  writeFileSync(join(proc, "vmstat"), readFileSync(join(TESTDATA, "proc/vmstat"), "utf8"));
  let seq = 0;
  let oomCount = 0;
  const subject = `${stream.toLowerCase()}.events`;
  const config = writeConfig(`
orchestrator:
  shutdown_timeout: 10s
  buffer: { type: ${bufferType} }
nats:
  url: ${server.url}
  subject: ${subject}
  stream: { name: ${stream} }
spool:
  path: ${join(dir, "spool.db")}
  ${extra}
collectors:
  kernel:
    config: { kmsg_path: ${kmsg}, proc_root: ${proc}, read_interval: 50ms, vmstat_interval: 1h, node_name: node-1 }
`);
  /** Appends the OOM report, renumbered to follow what is there, for a process of its own pid; returns the pid. */
  const appendOom = (): number => {
    const pid = 7000 + oomCount++;
    const text = OOM_LINES.map((line) => line.replace(/^(\d+),\d+,/, (_, prio) => `${prio},${++seq},`).replaceAll("6854", String(pid))).join("\n");
    appendFileSync(kmsg, `${text}\n`);
    return pid;
  };
  // History: one OOM already in the log before the agent ever starts (not reported: history is skipped).
  appendOom();
  return { config, subject, appendOom, setBootId: (id: string) => writeFileSync(join(proc, "sys/kernel/random/boot_id"), `${id}\n`) };
}

/** Counts every message published on `<subject>.>` by event id, as a core subscriber sees them. */
async function countPublishes(server: NatsServer, subject: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: server.url });
  subscribers.push(nc);
  const seen = new Map<string, number>();
  const sub = nc.subscribe(`${subject}.>`);
  void (async () => {
    for await (const m of sub) {
      const id = m.json<{ event_id: string }>().event_id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
  })();
  await nc.flush();
  return seen;
}

interface Stored {
  msgId: string;
  eventId: string;
  type: string;
  pid: number;
}

/** Every message of the stream, with the pid of its OOM. */
async function stored(server: NatsServer, stream: string): Promise<Stored[]> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    const out: Stored[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      const body = m!.json<{ event_id: string; type: string; metadata: { pid?: number }; event_data: { custom?: { message?: string } } }>();
      const pid = body.metadata.pid ?? Number(/Killed process (\d+)/.exec(body.event_data.custom?.message ?? "")?.[1]);
      out.push({ msgId: m!.header.get("Nats-Msg-Id"), eventId: body.event_id, type: body.type, pid });
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function streamHas(server: NatsServer, stream: string, n: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => ((await streamCount(server.url, stream)) ?? 0) >= n, `${n} messages in ${stream}`, timeoutMs, 50);
}

/** The stream holds exactly the events of these OOMs, each once, with the header id the payload's. */
async function expectStreamHolds(server: NatsServer, stream: string, pids: number[]): Promise<Stored[]> {
  const messages = await stored(server, stream);
  expect(messages.filter((m) => m.msgId !== m.eventId)).toEqual([]);
  expect(new Set(messages.map((m) => m.eventId)).size).toBe(messages.length);
  const byPid = (list: Array<{ pid: number; type: string }>) => list.map((m) => `${m.pid} ${m.type}`).sort();
  expect(byPid(messages)).toEqual(byPid(pids.flatMap((pid) => [{ pid, type: "container.oom" }, { pid, type: "kernel.problem" }])));
  return messages;
}

/** Starts the agent and waits until the kernel collector has opened its log (what is appended then is new). */
async function run(config: string): Promise<AgentProcess> {
  const agent = startAgent(["run", "-c", config]);
  await agent.waitForLog(msgStartsWith("reading the kernel log "), '"reading the kernel log"');
  return agent;
}

async function stop(agent: AgentProcess): Promise<void> {
  agent.kill("SIGTERM");
  expect(await exitCode(agent, 20_000)).toBe(0);
}

describe("kernel collector resume, agent against nats-server", () => {
  test("records appended while the agent is stopped are published once after it starts again; those published before are not published again", async () => {
    const server = await startNatsServer();
    servers.push(server);
    const n = node(server, "KMSG_RESUME", "memory");
    const publishes = await countPublishes(server, n.subject);

    const first = await run(n.config);
    const seen = n.appendOom();
    await streamHas(server, "KMSG_RESUME", EVENTS_PER_OOM);
    await stop(first);

    const whileDown = n.appendOom();
    const second = await run(n.config);
    const resumed = await second.waitForLog(msgStartsWith("resuming the kernel log after sequence number"), "the resume line");
    expect(resumed.after_seq).toBe(2 * OOM_LINES.length);
    await streamHas(server, "KMSG_RESUME", 2 * EVENTS_PER_OOM);
    const afterStart = n.appendOom();
    await streamHas(server, "KMSG_RESUME", 3 * EVENTS_PER_OOM);
    await stop(second);

    const messages = await expectStreamHolds(server, "KMSG_RESUME", [seen, whileDown, afterStart]);
    // Not only deduplicated by the stream: nothing was sent twice.
    await waitFor(() => publishes.size === messages.length, "the subscriber to have seen every message");
    expect([...publishes.values()].filter((count) => count !== 1)).toEqual([]);
  }, 60_000);

  test("a changed boot id starts afresh: the new boot's history is skipped as without a saved position", async () => {
    const server = await startNatsServer();
    servers.push(server);
    const n = node(server, "KMSG_REBOOT", "memory");
    const first = await run(n.config);
    const seen = n.appendOom();
    await streamHas(server, "KMSG_REBOOT", EVENTS_PER_OOM);
    await stop(first);

    n.setBootId(NEW_BOOT);
    n.appendOom(); // the new boot's history: skipped
    const second = await run(n.config);
    await second.waitForLog(msgStartsWith("the saved kernel log position is from an earlier boot"), "the new-boot line");
    // A record after the start is published: the collector reads on from the end.
    const afterStart = n.appendOom();
    await streamHas(server, "KMSG_REBOOT", 2 * EVENTS_PER_OOM);
    await stop(second);
    await expectStreamHolds(server, "KMSG_REBOOT", [seen, afterStart]);
  }, 60_000);

  test("disk mode: a SIGKILL right after records arrive, and one with them in the spool and NATS frozen, lose nothing and put nothing twice in the stream", async () => {
    const server = await startNatsServer();
    servers.push(server);
    const n = node(server, "KMSG_KILL_DISK", "disk");
    const publishes = await countPublishes(server, n.subject);
    const pids: number[] = [];

    const first = await run(n.config);
    pids.push(n.appendOom());
    await streamHas(server, "KMSG_KILL_DISK", EVENTS_PER_OOM);
    // Killed at once: the records may be unread, read, queued, spooled or published.
    pids.push(n.appendOom());
    first.kill("SIGKILL");
    await first.exited;

    const second = await run(n.config);
    await streamHas(server, "KMSG_KILL_DISK", 2 * EVENTS_PER_OOM);
    // Now with the events in the spool and NATS unable to take them.
    await server.kill("SIGSTOP");
    const url = await statusUrl(second);
    pids.push(n.appendOom());
    await waitFor(async () => ((await readStatus(url))?.spooled ?? 0) >= EVENTS_PER_OOM, "the new OOM's events spooled", 10_000, 20);
    second.kill("SIGKILL");
    await second.exited;
    await server.kill("SIGCONT");
    pids.push(n.appendOom()); // while the agent is down

    const third = await run(n.config);
    await streamHas(server, "KMSG_KILL_DISK", pids.length * EVENTS_PER_OOM);
    await stop(third);
    await expectStreamHolds(server, "KMSG_KILL_DISK", pids);
    const twice = [...publishes.values()].filter((count) => count > 1).length;
    console.log(`[kmsg-resume disk] ${JSON.stringify({ ooms: pids.length, stream: pids.length * EVENTS_PER_OOM, publishes: [...publishes.values()].reduce((a, b) => a + b, 0), ids_published_more_than_once: twice })}`);
  }, 90_000);

  test("memory mode: the position is saved only past acknowledged events, so a SIGKILL while NATS is frozen loses none of them", async () => {
    const server = await startNatsServer();
    servers.push(server);
    // spill_after: long, so the frozen batch stays in memory (not in the spool) until the kill.
    const n = node(server, "KMSG_KILL_MEMORY", "memory", "spill_after: 60s");
    const publishes = await countPublishes(server, n.subject);
    const first = await run(n.config);
    const seen = n.appendOom();
    await streamHas(server, "KMSG_KILL_MEMORY", EVENTS_PER_OOM);
    const url = await statusUrl(first);
    await server.kill("SIGSTOP");
    const inFlight = n.appendOom();
    await waitFor(async () => ((await readStatus(url))?.accepted ?? 0) >= 2 * EVENTS_PER_OOM, "the new OOM's events accepted (queued, unacknowledged)", 10_000, 20);
    first.kill("SIGKILL");
    await first.exited;
    await server.kill("SIGCONT");

    const second = await run(n.config);
    const resumed = await second.waitForLog(msgStartsWith("resuming the kernel log after sequence number"), "the resume line");
    // Where the last acknowledged OOM ended, not where the collector had read to.
    expect(resumed.after_seq).toBe(2 * OOM_LINES.length);
    await streamHas(server, "KMSG_KILL_MEMORY", 2 * EVENTS_PER_OOM);
    await stop(second);
    await expectStreamHolds(server, "KMSG_KILL_MEMORY", [seen, inFlight]);
    // The frozen server may still take the killed agent's publishes when it thaws: those and the
    // ones sent again after the restart carry the same ids, and the stream keeps one of each.
    const twice = [...publishes.values()].filter((count) => count > 1).length;
    console.log(`[kmsg-resume memory] ${JSON.stringify({ stream: 2 * EVENTS_PER_OOM, publishes: [...publishes.values()].reduce((a, b) => a + b, 0), ids_published_more_than_once: twice })}`);
  }, 60_000);
});
