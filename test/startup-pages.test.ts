// dropStartupPages (src/startup-pages.ts): the executable's clean pages leave
// the process's RSS, the pages the process wrote to stay (advising those would
// put the file's bytes back: a relocated table reverted is a crash), and the
// process runs on afterwards. In the compiled agent: the bundle's pages go
// too, and the agent still answers after the drop.
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { elfSection } from "../src/startup-pages.ts";
import { REPO, endpointsUrl, logLines, spawnAgent, writeConfig } from "./helpers/agent.ts";
import { buildBinary } from "./helpers/binary.ts";
import { killAtExit, makeTempDir, removeTempDir } from "./helpers/cleanup.ts";
import { collectLines } from "./helpers/lines.ts";
import { startNatsServer, stopAllNatsServers } from "./helpers/nats-server.ts";
import { waitFor } from "./helpers/wait-for.ts";

const dir = makeTempDir("startup-pages");
afterAll(async () => {
  await stopAllNatsServers();
  removeTempDir(dir);
});

describe.skipIf(process.platform !== "linux")("dropStartupPages", () => {
  test("drops the executable's clean pages; the process runs on (its written pages kept)", () => {
    const script = join(dir, "drop.ts");
    writeFileSync(
      script,
      `import { dropStartupPages } from ${JSON.stringify(join(REPO, "src/startup-pages.ts"))};
const result = await dropStartupPages();
// Code that start-up did not run, and libc and the runtime's written state, after the drop.
const parsed = JSON.parse(JSON.stringify({ a: [1, 2, 3], b: "x".repeat(1000) }));
const matched = /(\\d+)-(\\w+)/.exec("12-ab")![2];
const sorted = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 5000).sort((x, y) => x - y)[4999];
const hash = new Bun.CryptoHasher("sha256").update("x").digest("hex").slice(0, 8);
await Bun.sleep(10);
console.log(JSON.stringify({ result, after: { parsed: parsed.a.length, matched, sorted, hash } }));
`,
    );
    const run = Bun.spawnSync([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.exitCode).toBe(0);
    const { result, after } = JSON.parse(run.stdout.toString());
    expect(result.error).toBeUndefined();
    // Bun's own executable: start-up maps tens of MiB of it; the drop leaves a fraction.
    expect(result.after).toBeLessThan(result.before / 2);
    expect(after).toEqual({ parsed: 3, matched: "ab", sorted: 4999, hash: "2d711642" });
  });

  test("elfSection finds a compiled script's bundle; none in a file that is not ELF", () => {
    const source = join(dir, "tiny.js");
    writeFileSync(source, "console.log(1);\n");
    const binary = join(dir, "tiny");
    const build = Bun.spawnSync([process.execPath, "build", "--compile", source, "--outfile", binary], { stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode).toBe(0);
    const [offset, size] = elfSection(binary, ".bun")!;
    expect(size).toBeGreaterThan(0);
    expect(offset + size).toBeLessThanOrEqual(Bun.file(binary).size);
    expect(elfSection(binary, ".no-such-section")).toBeUndefined();
    expect(elfSection(source, ".bun")).toBeUndefined();
  });

  test(
    "the compiled agent drops them 10 s after start and still publishes and answers",
    async () => {
      const binary = buildBinary(join(dir, "tapio-collectors"));
      const server = await startNatsServer({ jetstream: false });
      const nc = await connect({ servers: server.url });
      let received = 0;
      nc.subscribe("pages.>", { callback: () => void received++ });
      await nc.flush();
      const config = writeConfig(`
nats: { url: ${server.url}, subject: pages, mode: core }
collectors:
  synthetic: { config: { rate: 2 } }
`);
      const agent = spawnAgent(["--config", config, "--log-level", "debug"], { command: [binary, "run"] });
      killAtExit(agent.pid);
      const out = collectLines(agent.stdout);
      try {
        const url = await endpointsUrl(out.lines);
        const dropped = () => logLines(out.lines.join("\n")).find((l) => typeof l.msg === "string" && l.msg.startsWith("start-up pages of the executable"));
        await waitFor(() => dropped() !== undefined, "the start-up pages line", 20_000);
        const line = dropped()!;
        expect(line.msg).toStartWith("start-up pages of the executable dropped");
        expect(line.rss_file_after).toBeLessThan(line.rss_file_before / 2);
        const before = received;
        await waitFor(() => received >= before + 2, "events after the drop", 5000);
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        expect(await (await fetch(`${url}/metrics`)).text()).toContain("orchestrator_");
      } finally {
        agent.kill("SIGTERM");
        await agent.exited;
        await nc.close();
      }
      expect(agent.exitCode).toBe(0);
    },
    60_000,
  );
});
