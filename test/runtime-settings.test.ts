// applyRuntimeSettings (src/runtime-settings.ts): `run` in the compiled agent
// executes itself again with Bun's GC timer off (the agent
// collects after its work instead, gc-pacer.ts) and mimalloc's sweeps of the
// holes in used pages at most every 30 s,
// as the same process (pid, arguments, output, signals); what the user set
// in the environment stays as set; other commands, and
// TAPIO_RUNTIME_SETTINGS=off, leave Bun's defaults.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { RUNTIME_ENV, RUNTIME_SETTINGS_SWITCH, runtimeEnvironment } from "../src/runtime-settings.ts";
import { endpointsUrl, spawnAgent, writeConfig } from "./helpers/agent.ts";
import { buildBinary } from "./helpers/binary.ts";
import { killAtExit, makeTempDir, removeTempDir } from "./helpers/cleanup.ts";
import { collectLines } from "./helpers/lines.ts";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "./helpers/nats-server.ts";
import { waitFor } from "./helpers/wait-for.ts";

describe("runtimeEnvironment", () => {
  const env = { PATH: "/usr/bin", HOME: "/root", UNSET: undefined };

  test("run, or no command, or options only: the environment plus every missing setting", () => {
    for (const args of [["run", "-c", "x.yaml"], [], ["-c", "x.yaml"], ["--config", "x.yaml", "--log-level", "debug"]]) {
      expect(runtimeEnvironment(env, args)).toEqual({ PATH: "/usr/bin", HOME: "/root", ...RUNTIME_ENV });
    }
  });

  test("the user's own values stay; nothing to do when every setting is there", () => {
    expect(runtimeEnvironment({ ...env, OTHER: "x" }, ["run"])).toEqual({ PATH: "/usr/bin", HOME: "/root", OTHER: "x", ...RUNTIME_ENV });
    // each setting on its own: an empty value is a value
    expect(runtimeEnvironment({ ...env, BUN_GC_TIMER_DISABLE: "" }, ["run"])).toEqual({ PATH: "/usr/bin", HOME: "/root", ...RUNTIME_ENV, BUN_GC_TIMER_DISABLE: "" });
    expect(runtimeEnvironment({ ...env, MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "100" }, ["run"])).toEqual({ PATH: "/usr/bin", HOME: "/root", BUN_GC_TIMER_DISABLE: "1", MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "100" });
    expect(runtimeEnvironment({ ...env, BUN_GC_TIMER_DISABLE: "", MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "100" }, ["run"])).toBeUndefined();
    expect(runtimeEnvironment({ ...env, ...RUNTIME_ENV }, ["run"])).toBeUndefined();
  });

  test("other commands, and TAPIO_RUNTIME_SETTINGS=off, keep Bun's defaults", () => {
    for (const args of [["validate", "-c", "x.yaml"], ["status"], ["tail"], ["--version"], ["--help"], ["-h"], ["version"]]) {
      expect(runtimeEnvironment(env, args)).toBeUndefined();
    }
    expect(runtimeEnvironment({ ...env, [RUNTIME_SETTINGS_SWITCH]: "off" }, ["run"])).toBeUndefined();
  });
});

function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

describe.skipIf(process.platform !== "linux")("the compiled agent", () => {
  const dir = makeTempDir("runtime-settings");
  let binary: string;
  let server: NatsServer;
  let nc: NatsConnection;
  let received = 0;
  beforeAll(async () => {
    binary = buildBinary(join(dir, "tapio-collectors"));
    server = await startNatsServer({ jetstream: false });
    nc = await connect({ servers: server.url });
    nc.subscribe("settings.>", { callback: () => void received++ });
    await nc.flush();
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await stopAllNatsServers();
    removeTempDir(dir);
  });

  /** None of the settings set by the caller's environment. */
  const unset = Object.fromEntries(Object.keys(RUNTIME_ENV).map((key) => [key, undefined]));

  /** Runs the agent until it answers and publishes; returns its environment, and its exit code after SIGTERM. */
  async function runOnce(env: Record<string, string | undefined>): Promise<{ environ: Record<string, string>; code: number; lines: string[] }> {
    const config = writeConfig(`
nats: { url: ${server.url}, subject: settings, mode: core }
collectors:
  synthetic: { config: { rate: 20 } }
`);
    const agent = spawnAgent(["--config", config, "--log-level", "info"], { command: [binary, "run"], env });
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const url = await endpointsUrl(out.lines);
      // The process answering is the one spawned: executing again kept its pid.
      const environ = environOf(agent.pid);
      const before = received;
      await waitFor(() => received >= before + 3, "events from the agent", 10_000);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      agent.kill("SIGTERM");
      const code = await agent.exited;
      return { environ, code, lines: out.lines };
    } finally {
      agent.kill("SIGKILL");
    }
  }

  test(
    "run sets them, as the same process: it publishes, and stops cleanly on SIGTERM",
    async () => {
      const { environ, code, lines } = await runOnce({ ...unset, [RUNTIME_SETTINGS_SWITCH]: undefined });
      for (const [key, value] of Object.entries(RUNTIME_ENV)) expect(environ[key]).toBe(value);
      // what bench/README.md measured ("The fifth cut", "The sixth cut")
      expect(environ.BUN_GC_TIMER_DISABLE).toBe("1");
      expect(environ.MIMALLOC_PURGE_HOLES_MIN_INTERVAL).toBe("30000");
      expect(code).toBe(0);
      // Its output is the one the caller reads: started once (not twice), stopped once.
      expect(lines.filter((l) => /"msg":"tapio-collectors \S+ starting"/.test(l)).length).toBe(1);
      expect(lines.filter((l) => l.includes('"msg":"shutdown complete')).length).toBe(1);
    },
    60_000,
  );

  test(
    "the user's value is kept; TAPIO_RUNTIME_SETTINGS=off keeps Bun's defaults",
    async () => {
      const own = await runOnce({ ...unset, BUN_GC_TIMER_DISABLE: "yes", [RUNTIME_SETTINGS_SWITCH]: undefined });
      expect(own.environ.BUN_GC_TIMER_DISABLE).toBe("yes");
      expect(own.environ.MIMALLOC_PURGE_HOLES_MIN_INTERVAL).toBe("30000");
      const off = await runOnce({ ...unset, [RUNTIME_SETTINGS_SWITCH]: "off" });
      for (const key of Object.keys(RUNTIME_ENV)) expect(off.environ[key]).toBeUndefined();
      expect(off.code).toBe(0);
    },
    60_000,
  );
});
