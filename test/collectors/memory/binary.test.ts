// The compiled binary (bun build.ts) runs the memory collector's poll(2)
// worker: /status says PSI and memory.events are read by events, a container
// OOM-killed in a real v1 memory cgroup reaches a NATS subscriber at once (the
// poll is 10 s away), and SIGTERM ends it promptly. The binary runs with src/
// hidden (an empty tmpfs over it, in a mount namespace of its own), so a
// worker script found in the source tree would fail here. Needs root and a
// writable v1 memory hierarchy; skipped otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { accessSync, constants, existsSync, mkdirSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, stopAllNatsServers } from "../../helpers/nats-server.ts";
import { killAtExit, makeTempDir, removeTempDir, spare } from "../../helpers/cleanup.ts";
import { endpointsUrl, spawnAgent, writeConfig } from "../../helpers/agent.ts";
import { collectLines } from "../../helpers/lines.ts";
import { PROMPTLY_MS, waitFor } from "../../helpers/wait-for.ts";
import { buildBinary, canHideSource, withSourceHidden } from "../../helpers/binary.ts";

const MEMORY = "/sys/fs/cgroup/memory";
const v1Writable = (() => {
  try {
    accessSync(MEMORY, constants.W_OK);
    return existsSync(join(MEMORY, "cgroup.event_control")) && existsSync("/proc/pressure/memory");
  } catch {
    return false;
  }
})();
const dir = makeTempDir("memory-binary");
afterAll(async () => {
  await stopAllNatsServers();
  removeTempDir(dir);
});

describe("memory collector in the compiled binary", () => {
  test.skipIf(!v1Writable || !canHideSource)(
    "PSI triggers and OOM eventfds by events: an OOM kill reaches a NATS subscriber at once; SIGTERM ends it",
    async () => {
      const binary = join(dir, "tapio-collectors");
      buildBinary(binary);
      const containerId = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
      const created: string[] = [];
      let path = MEMORY;
      for (const part of [`tapio-test-binary-${process.pid}`, "kubepods", "burstable", `pod${crypto.randomUUID()}`, containerId]) {
        mkdirSync((path = join(path, part)));
        created.push(path);
      }
      writeFileSync(join(path, "memory.limit_in_bytes"), String(32 * 1024 * 1024));
      const root = join(dir, "cgroup");
      mkdirSync(root);
      symlinkSync(created[0]!, join(root, "memory"));
      const server = await startNatsServer({ jetstream: false });
      const config = writeConfig(`
nats:
  url: ${server.url}
  subject: membin
  mode: core
collectors:
  memory:
    config: { cgroup_root: ${root}, interval: 10s }
`);
      const nc = await connect({ servers: server.url });
      let killedAt: number | undefined;
      nc.subscribe("membin.>", {
        callback: (_err, msg) => {
          const event = msg.json<{ event_data: { container?: { action: string; container_id: string } } }>();
          if (event.event_data.container?.action === "oom_kill" && event.event_data.container.container_id === containerId) killedAt ??= performance.now();
        },
      });
      await nc.flush();
      const hidden = withSourceHidden(binary);
      const agent = spawnAgent(["--config", config], { command: hidden });
      killAtExit(agent.pid);
      const out = collectLines(agent.stdout);
      try {
        const url = await endpointsUrl(out.lines);
        const modes = async () => {
          const status = (await (await fetch(`${url}/status`)).json()) as { collectors: Array<{ name: string; sources?: Record<string, { mode: string }> }> };
          const sources = status.collectors.find((c) => c.name === "memory")?.sources;
          return `${sources?.psi?.mode} ${sources?.["memory.events"]?.mode}`;
        };
        await waitFor(async () => (await modes()) === "event event", "/status: memory reads psi and memory.events by events", 10_000);
        const victim = Bun.spawn(["sh", "-c", `echo $$ > ${path}/cgroup.procs && head -c 300M /dev/zero | tail`], { stdout: "ignore", stderr: "ignore" });
        killAtExit(victim.pid);
        await victim.exited;
        const exited = performance.now();
        spare(victim.pid);
        await waitFor(() => killedAt !== undefined, "the oom_kill event on the subscription", 5000, 1);
        console.log(`binary: victim's exit seen -> oom_kill at the NATS subscriber: ${(killedAt! - exited).toFixed(1)} ms (poll interval 10 s)`);
        expect(killedAt! - exited).toBeLessThan(1000);
        const stopping = performance.now();
        agent.kill("SIGTERM");
        expect(await agent.exited).toBe(0);
        spare(agent.pid);
        expect(performance.now() - stopping).toBeLessThan(5 * PROMPTLY_MS);
      } finally {
        agent.kill("SIGKILL");
        await nc.close();
        for (const d of created.toReversed()) if (existsSync(d)) rmdirSync(d);
      }
    },
    180_000,
  );
});
