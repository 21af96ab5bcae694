// The exec collector in the agent process, from source and as the compiled
// binary, against a real nats-server: events on `<nats.subject>.exec`, bad
// lines in /metrics, no secret of the agent in the program's environment, no
// program left after SIGTERM, and --dry-run --once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { endpointsUrl, logLines, REPO, runAgent, sourceCommand, spawnAgent, writeConfig } from "../../helpers/agent.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { collectLines } from "../../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { streamCount } from "../../fault/harness.ts";
import { exists, pidsIn, program, running } from "./helpers.ts";

let server: NatsServer;
let binary: string;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  binary = join(makeTempDir("exec-bin"), "tapio-collectors");
  const build = Bun.spawnSync([process.execPath, "build.ts", "--outfile", binary], { cwd: REPO, stderr: "pipe", stdout: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}, 120_000);

afterAll(stopAllNatsServers);

/** Secrets in the agent's environment: none may reach the program. */
const AGENT_SECRETS = { NATS_PASSWORD: "s3cret-nats-password", TAPIO_EXEC_TEST_SECRET: "hunter2" };

function config(name: string, exec: Record<string, unknown>): string {
  return writeConfig(`
orchestrator: { shutdown_timeout: 10s }
nats:
  url: ${server.url}
  subject: exec.${name}
  stream: { name: EXEC_${name.toUpperCase()} }
collectors:
  exec:
    config: ${JSON.stringify(exec)}
`);
}

async function storedEvents(stream: string): Promise<Array<{ subject: string; event: Record<string, any> }>> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const out: Array<{ subject: string; event: Record<string, any> }> = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      out.push({ subject: m!.subject, event: m!.json() });
    }
    return out;
  } finally {
    await nc.close();
  }
}

for (const kind of ["source", "compiled binary"] as const) {
  const command = () => (kind === "source" ? sourceCommand() : [binary]);
  const id = kind === "source" ? "src" : "bin";

  describe(`exec in the agent (${kind})`, () => {
    test("events reach NATS on <nats.subject>.exec as the instance's; bad lines are counted in /metrics; no agent secret reaches the program", async () => {
      const file = config(`${id}a`, {
        command: program("env", JSON.stringify({ type: "node.check_failed", severity: "warning", event_data: { custom: { disk: "92%" } } }), "not json", JSON.stringify({ type: "node.check", event_id: "forged" })),
        interval: "1h",
        env: { LEVEL: "3" },
      });
      const proc = spawnAgent(["--config", file], { command: command(), env: AGENT_SECRETS });
      const out = collectLines(proc.stdout);
      try {
        await waitFor(async () => ((await streamCount(server.url, `EXEC_${id.toUpperCase()}A`)) ?? 0) >= 2, "two events in the stream", 15_000);
        const metrics = await (await fetch(`${await endpointsUrl(out.lines)}/metrics`)).text();
        expect(metrics).toContain('orchestrator_collector_parse_errors_total{collector="exec",source="stdout"} 2');
      } finally {
        proc.kill("SIGTERM");
      }
      expect(await proc.exited).toBe(0);
      await out.ended;
      const stored = await storedEvents(`EXEC_${id.toUpperCase()}A`);
      expect(stored.map((s) => s.subject)).toEqual([`exec.${id}a.exec`, `exec.${id}a.exec`]);
      expect(stored.map((s) => s.event.type)).toEqual(["test.env", "node.check_failed"]);
      for (const { event } of stored) {
        expect(event.source).toBe("exec");
        expect(event.metadata.attributes).toEqual({ collector_name: "exec" });
      }
      const env = stored[0]!.event.event_data.custom;
      expect(Object.keys(env).sort()).toEqual(["HOME", "LEVEL", "PATH"]);
      for (const secret of Object.values(AGENT_SECRETS)) expect(JSON.stringify(stored)).not.toContain(secret);
      // the bad lines, logged with their numbers
      const parse = logLines(out.lines.join("\n")).find((l) => l.source === "stdout");
      expect(parse).toMatchObject({ collector: "exec", level: "warn", detail: expect.stringMatching(/^line 3: not JSON/) });
    }, 60_000);

    test("SIGTERM during a run: the program and what it started are gone when the agent exits", async () => {
      const dir = makeTempDir("exec-term");
      const pidFile = join(dir, "pids");
      const children = join(dir, "children");
      const file = config(`${id}b`, { mode: "stream", command: program("parent", children), env: { PID_FILE: pidFile } });
      const proc = spawnAgent(["--config", file], { command: command() });
      await waitFor(() => pidsIn(pidFile).length === 2 && pidsIn(children).length === 1, "the program and its child", 15_000);
      const [pid] = pidsIn(pidFile);
      const [child] = pidsIn(children);
      expect(running(pid!) && running(child!)).toBe(true);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      // reaped by the agent before it exited: not even a zombie is left
      expect(exists(pid!)).toBe(false);
      // SIGKILLed with its group as the program ended; its end follows as the kernel schedules it
      await waitFor(() => !running(child!), "the program's child gone", 2000);
    }, 30_000);

    test("a second SIGTERM (exit now) still takes down a program that ignores SIGTERM", async () => {
      const pidFile = join(makeTempDir("exec-term2"), "pids");
      const file = config(`${id}c`, { mode: "stream", command: program("hang", "ignore-term"), env: { PID_FILE: pidFile } });
      const proc = spawnAgent(["--config", file], { command: command() });
      const out = collectLines(proc.stdout);
      // its event is out once it ignores SIGTERM (it writes its pid before that)
      await waitFor(async () => pidsIn(pidFile).length === 1 && ((await streamCount(server.url, `EXEC_${id.toUpperCase()}C`)) ?? 0) >= 1, "the program's event", 15_000);
      const [pid] = pidsIn(pidFile);
      proc.kill("SIGTERM");
      await waitFor(() => out.lines.some((l) => l.includes("SIGTERM received")), "the first SIGTERM taken");
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(1);
      // SIGKILLed as the agent exited; reaped by PID 1 from then on
      await waitFor(() => !running(pid!), "the program gone", 2000);
    }, 30_000);

    test("--dry-run --once runs an interval-mode program once and prints its events", async () => {
      const runs = join(makeTempDir("exec-once"), "runs");
      const file = config(`${id}d`, { command: program("run", runs, "0"), interval: "100ms" });
      const r = await runAgent(["run", "--dry-run", "--once", "--config", file], { command: command() });
      expect(r.code).toBe(0);
      const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
      expect(events.map((e) => [e.type, e.source])).toEqual([["test.run", "exec"]]);
      expect(readFileSync(runs, "utf8").split("\n").filter((l) => l.startsWith("start"))).toHaveLength(1);
    }, 30_000);
  });
}
