// The README's `tail`: it takes the server, the subject prefix and the
// credentials from --config, so it reads what the agent publishes with that
// same file, on a server that requires them.
import { afterAll, describe, expect, test } from "bun:test";
import { runAgent, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

describe("README tail", () => {
  test("tail --config reads the agent's events with the file's server, subject and token", async () => {
    const server = await startNatsServer({ jetstream: false, config: 'authorization { token: "readme-tail-token" }\n' });
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core, subject: readme.tail, token: "readme-tail-token" }
collectors:
  synthetic: { config: { count: 5, rate: 0 } }
`);
    const tail = spawnAgent(["tail", "--config", file, "--json", "--count", "5"]);
    killAtExit(tail.pid);
    const out = collectLines(tail.stdout);
    const err = collectLines(tail.stderr);
    try {
      await waitFor(() => err.lines.some((l) => l.startsWith(`tailing readme.tail.> on ${server.url}`)), "tail subscribed", 10_000);
      const agent = await runAgent(["--once", "-c", file]);
      expect(agent.code).toBe(0);
      expect(await tail.exited).toBe(0);
    } finally {
      tail.kill("SIGKILL");
      await tail.exited;
      spare(tail.pid);
      await out.ended;
    }
    const events = out.lines.filter((l) => l !== "").map((l) => JSON.parse(l));
    expect(events.map((e) => e.source)).toEqual(Array(5).fill("synthetic"));
    // Without the token the server refuses the same tail.
    const refused = await runAgent(["tail", "--nats", server.url, "--subject", "readme.tail", "--count", "1"], { timeoutMs: 15_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("Authorization Violation");
  }, 40_000);
});
