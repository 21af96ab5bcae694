// The README's Quick start, as a new user runs it: `npm start` (the command
// package.json names) on the default config, before and after a NATS server
// with JetStream comes up at $NATS_URL, looked at with curl's /readyz and
// `npm run cli -- status` (and top); and `npm start -- --once --dry-run` without NATS.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import pkg from "../../package.json" with { type: "json" };
import { REPO, logLines, runAgent, spawnAgent } from "../helpers/agent.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

/**
 * An npm script as an argv that runs from any folder: `bun` is this Bun, and
 * paths into the repository are made absolute, so the agent's own relative
 * paths (the spool's `data/spool.db`) land in the folder it runs in.
 */
function npmScript(name: "start" | "cli"): string[] {
  return pkg.scripts[name].split(" ").map((word, i) => (i === 0 && word === "bun" ? process.execPath : existsSync(join(REPO, word)) ? join(REPO, word) : word));
}

const README_URL = "http://127.0.0.1:9090";
// Not a Kubernetes node: nothing at the kubelet's default address, no node name.
const notANode = { NODE_NAME: undefined, TAPIO_CONFIG: undefined, TAPIO_SPOOL_PATH: undefined };

describe("README quick start", () => {
  test("npm start: until NATS answers, events go to data/spool.db and /readyz says so; then the stream TAPIO_EVENTS on tapio.events.> is created and the spool drains", async () => {
    const port = await freePort();
    const cwd = makeTempDir("quick-start");
    const [command, ...args] = npmScript("start");
    const agent = spawnAgent(args, { command: [command!], cwd, env: { ...notANode, NATS_URL: `nats://127.0.0.1:${port}` } });
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    const logged = (prefix: string) => logLines(out.lines.join("\n")).find((l) => typeof l.msg === "string" && l.msg.startsWith(prefix));
    try {
      await waitFor(() => logged("orchestrator started") !== undefined || agent.exitCode !== null, "orchestrator started", 15_000);
      // An agent that stopped at once says why (e.g. another agent already listens on the README's port).
      const early: number | null = agent.exitCode;
      if (early !== null) throw new Error(`the agent exited ${early}: ${await new Response(agent.stderr).text()}`);
      expect(logged("HTTP endpoints on")?.url).toBe(README_URL);
      // The default config: synthetic and every other collector but dns (which needs the cluster DNS address).
      expect(logged("orchestrator started")?.collectors.sort()).toEqual(["kernel", "kubeapi", "kubelet", "memory", "network", "process", "synthetic"]);

      const status = async () => (await (await fetch(`${README_URL}/status`)).json()) as { delivery: { spool: { depth: number } }; collectors: Array<{ name: string; events_accepted: number }> };
      await waitFor(async () => (await status()).delivery.spool.depth > 0, "events in the spool while NATS is down", 15_000);
      expect(existsSync(join(cwd, "data/spool.db"))).toBe(true);
      const ready = await fetch(`${README_URL}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.text()).toContain("events go to the spool");

      // `npm run cli -- status` reaches the running agent at its default address.
      const [cli, ...cliArgs] = npmScript("cli");
      const report = await runAgent([...cliArgs, "status"], { command: [cli!], cwd });
      expect(report.code).toBe(0);
      expect(report.stdout).toContain("synthetic");
      // ... and so does `top`.
      const top = await runAgent([...cliArgs, "top", "--iterations", "1"], { command: [cli!], cwd });
      expect(top.code).toBe(0);
      expect(top.stdout).toMatch(/^synthetic\s+running\s/m);

      const server = await startNatsServer({ port });
      const nc = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(nc);
        const stream = async () => jsm.streams.info("TAPIO_EVENTS").catch(() => undefined);
        await waitFor(async () => ((await stream())?.state.messages ?? 0) > 0, "events in TAPIO_EVENTS", 20_000);
        expect((await stream())!.config.subjects).toEqual(["tapio.events.>"]);
        expect((await jsm.streams.getMessage("TAPIO_EVENTS", { seq: 1 }))!.subject).toStartWith("tapio.events.");
        await waitFor(async () => (await status()).delivery.spool.depth === 0, "the spool drained", 20_000);
      } finally {
        await nc.close();
      }
      await waitFor(async () => (await fetch(`${README_URL}/readyz`).then((r) => r.text())).includes("NATS connected"), "readiness: NATS connected");
    } finally {
      agent.kill("SIGTERM");
      await agent.exited;
      spare(agent.pid);
      await out.ended;
    }
    const done = logged("shutdown complete");
    expect(done).toMatchObject({ in_spool: 0, lost: 0 });
    expect(agent.exitCode).toBe(0);
  }, 90_000);

  test("npm start -- --once --dry-run: one round of every collector, the default config's events as NDJSON on stdout, no NATS needed", async () => {
    const cwd = makeTempDir("quick-start-once");
    const [command, ...args] = npmScript("start");
    const r = await runAgent([...args, "--once", "--dry-run"], { command: [command!], cwd, env: { ...notANode, NATS_URL: "nats://127.0.0.1:1" } });
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split("\n").map((line) => JSON.parse(line));
    // synthetic's --once round is one second of its rate: 5 events.
    expect(events.filter((e) => e.source === "synthetic").map((e) => e.type)).toEqual(Array(5).fill("synthetic.heartbeat"));
    expect(logLines(r.stderr).some((l) => l.msg.startsWith("shutdown complete"))).toBe(true);
    // --dry-run never opens the spool.
    expect(existsSync(join(cwd, "data"))).toBe(false);
  });
});
