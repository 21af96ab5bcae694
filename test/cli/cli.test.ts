// The command line as a user meets it: exit codes, messages, no stack traces.
import { afterAll, describe, expect, test } from "bun:test";
import { logLines, runAgent, spawnAgent, writeConfig, endpointsUrl } from "../helpers/agent.ts";
import pkg from "../../package.json" with { type: "json" };
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";

afterAll(stopAllNatsServers);

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+/m);

describe("CLI", () => {
  test("version prints the agent and Bun versions", async () => {
    const r = await runAgent(["version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`tapio-collectors ${pkg.version}`);
    expect(r.stdout).toContain(`bun ${Bun.version}`);
  });

  test("--help for the agent and for each command", async () => {
    for (const args of [["--help"], ["help"], ["run", "--help"], ["validate", "--help"], ["print-config", "-h"], ["version", "--help"]]) {
      const r = await runAgent(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage");
    }
  });

  test("usage errors exit 2 with a message and no stack", async () => {
    for (const args of [["frobnicate"], ["run", "--bogus"], ["version", "extra-arg"], ["run", "--log-level", "loud"], ["run", "--log-format", "xml"]]) {
      const r = await runAgent(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^tapio-collectors: /);
      noStack(r.stderr);
    }
  });

  test("validate: exit 0 for a valid file, 2 with located errors for an invalid one", async () => {
    const ok = await runAgent(["validate", "--config", "configs/collectors.yaml"]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("valid");
    for (const f of ["configs/dev.yaml"]) expect((await runAgent(["validate", "-c", f])).code).toBe(0);
    expect((await runAgent(["validate", "-c", "configs/prod.yaml"], { env: { NATS_URL: "nats://127.0.0.1:4222" } })).code).toBe(0);

    const bad = writeConfig("orchestrator:\n  workers: abc\n  wokers: 3\ncollectors:\n  synthetc: {}\n");
    const r = await runAgent(["validate", "--config", bad]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toBe(`${bad}:2:12 orchestrator.workers: expected an integer from 1 to 64, got "abc"`);
    expect(r.stderr).toContain(`${bad}:3:3 orchestrator.wokers: unknown key "wokers" (did you mean "workers"?)`);
    expect(r.stderr).toContain(`did you mean "synthetic"?`);
    noStack(r.stderr);
  });

  test("a required variable that is unset stops the agent with its message", async () => {
    const r = await runAgent(["validate", "-c", "configs/prod.yaml"], { env: { NATS_URL: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("set NATS_URL to the NATS servers");
  });

  test("a missing config file is a config error (exit 2), not a crash", async () => {
    const r = await runAgent(["run", "--config", "/nonexistent/tapio.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("/nonexistent/tapio.yaml");
    noStack(r.stderr);
  });

  test("print-config shows defaults, expanded env and *** for secrets", async () => {
    const file = writeConfig("nats:\n  token: ${SECRET_TOKEN}\n  url: ${NATS_URL:-nats://127.0.0.1:4999}\norchestrator:\n  workers: ${W:-3}\n");
    const r = await runAgent(["print-config", "--config", file], { env: { SECRET_TOKEN: "s3cr3t-value", NATS_URL: "" } });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("s3cr3t-value");
    expect(r.stdout).toContain("token: \"***\"");
    expect(r.stdout).toContain("nats://127.0.0.1:4999");
    expect(r.stdout).toContain("workers: 3");
    expect(r.stdout).toContain("shutdown_timeout: 30s");
  });

  test("run --once --dry-run writes the events as NDJSON on stdout and logs on stderr", async () => {
    const file = writeConfig("collectors:\n  synthetic:\n    config: { count: 25, rate: 0 }\n");
    const r = await runAgent(["run", "--once", "--dry-run", "--config", file]);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(events.length).toBe(25);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(25);
    expect(events.every((e) => e.type === "synthetic.event" && e.source === "synthetic")).toBe(true);
    const logs = logLines(r.stderr);
    expect(logs.some((l) => l.msg.startsWith("shutdown complete: 25 event(s) published"))).toBe(true);
  });

  test("--once --dry-run with instances: each instance does its round, its events name it", async () => {
    const file = writeConfig("collectors:\n  synthetic/a:\n    config: { count: 3, rate: 0, type: a.event }\n  synthetic/b:\n    config: { count: 4, rate: 0, type: b.event }\n");
    const r = await runAgent(["run", "--once", "--dry-run", "--config", file]);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const seen = events.map((e) => `${e.source} ${e.type} ${e.metadata.attributes.collector_name}`).sort();
    expect(seen).toEqual([...Array(3).fill("synthetic/a a.event synthetic/a"), ...Array(4).fill("synthetic/b b.event synthetic/b")]);
    const logs = logLines(r.stderr);
    expect(logs.find((l) => l.msg.startsWith("orchestrator started"))?.collectors).toEqual(["synthetic/a", "synthetic/b"]);
    expect(logs.some((l) => l.msg.startsWith("shutdown complete: 7 event(s) published"))).toBe(true);
  });

  test("validate names the enabled instances; print-config shows them under their keys", async () => {
    const file = writeConfig("collectors:\n  synthetic/a: {}\n  synthetic/off: { enabled: false }\n  dns/external:\n    config: { names: [example.com.], servers: [1.1.1.1] }\n");
    const v = await runAgent(["validate", "--config", file]);
    expect(v.code).toBe(0);
    expect(v.stderr).toBe(`${file}: valid (2 collector(s) enabled: dns/external, synthetic/a)\n`);
    const p = await runAgent(["print-config", "--config", file]);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain("  dns/external:\n    enabled: true\n    config:\n      names:\n        - example.com.\n");
    expect(p.stdout).toContain("  synthetic/off:\n    enabled: false\n");
    const bad = await runAgent(["validate", "--config", writeConfig("collectors:\n  dns/External: {}\n")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('collectors.dns/External: instance name "External" may hold only lowercase letters, digits, "_" and "-"');
  });

  test("--log-format pretty writes human-readable logs", async () => {
    const file = writeConfig("collectors:\n  synthetic:\n    config: { count: 1 }\n");
    const r = await runAgent(["--once", "--dry-run", "--log-format", "pretty", "-c", file], { env: { NO_COLOR: "1" } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/INFO.*tapio-collectors .* starting/);
    expect(r.stderr).not.toMatch(/^\{/m);
  });
});

describe("secrets stay out of the logs", () => {
  test("a password in nats.url never reaches a log line or an error", async () => {
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 500ms }
nats: { url: "nats://alice:s3cretPW@127.0.0.1:1", reconnect_wait: 100ms, max_reconnects: 1 }
spool: { enabled: false }
collectors:
  synthetic: { config: { count: 3 } }
`);
    const r = await runAgent(["--once", "-c", file]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("NATS at nats://127.0.0.1:1");
    expect(r.stdout + r.stderr).not.toContain("s3cretPW");
  });
});

describe("--once", () => {
  test("a collector round longer than orchestrator.once_timeout is stopped and fails the run", async () => {
    const file = writeConfig(`
orchestrator: { once_timeout: 300ms }
collectors:
  synthetic: { config: { count: 1000000, rate: 10 } }
`);
    const t0 = Date.now();
    const r = await runAgent(["--once", "--dry-run", "-c", file]);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.stderr).toContain("longer than orchestrator.once_timeout (300ms)");
    expect(r.stderr).toContain("did not finish its --once round");
  });
});

describe("the default config", () => {
  test("runs anywhere: --once --dry-run does one round of every collector and exits 0", async () => {
    const r = await runAgent(["--once", "--dry-run", "-c", "configs/collectors.yaml"], { env: { NODE_NAME: undefined, KUBELET_ADDRESS: "https://127.0.0.1:1" } });
    expect(r.code).toBe(0);
    const logs = logLines(r.stderr);
    expect(logs.find((l) => l.msg.startsWith("orchestrator started"))?.collectors.sort()).toEqual(["kernel", "kubeapi", "kubelet", "memory", "network", "process", "synthetic"]);
    expect(logs.some((l) => l.msg.startsWith("shutdown complete"))).toBe(true);
    expect(r.stdout.trim().split("\n").map((l) => JSON.parse(l).source)).toContain("synthetic");
  });
});

describe("README promises", () => {
  test("with http.enabled: false (no endpoints, no metrics kept) the agent publishes as ever", async () => {
    const server = await startNatsServer({ jetstream: false });
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core }
http: { enabled: false }
collectors:
  synthetic: { config: { count: 5, rate: 0 } }
  network: { config: { interval: 1s } }
`);
    const r = await runAgent(["--once", "-c", file]);
    expect(r.code).toBe(0);
    const lines = logLines(r.stdout);
    expect(lines.some((l) => String(l.msg).startsWith("HTTP endpoints on"))).toBe(false);
    const summary = lines.find((l) => l.published !== undefined && l.accepted !== undefined);
    expect(summary).toMatchObject({ accepted: 5, published: 5 });
  });

  test("$TAPIO_CONFIG names the config when --config is not given", async () => {
    const file = writeConfig("orchestrator:\n  workers: zero\n");
    const r = await runAgent(["validate"], { env: { TAPIO_CONFIG: file } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:2:12 orchestrator.workers`);
  });

  test("a second SIGTERM during the drain exits at once with code 1", async () => {
    const file = writeConfig(`
orchestrator: { shutdown_timeout: 30s }
nats: { url: "nats://127.0.0.1:1", reconnect_wait: 100ms }
spool: { enabled: false }
collectors:
  synthetic: { config: { rate: 100 } }
`);
    const proc = spawnAgent(["-c", file]);
    const out = collectLines(proc.stdout);
    const said = (start: string) => logLines(out.lines.join("\n")).some((l) => l.msg.startsWith(start));
    const url = await endpointsUrl(out.lines);
    // Accepted events: the orchestrator runs, so the signal handlers (installed before it starts,
    // src/cli/run.ts) are in place; and NATS is unreachable, so the first SIGTERM's drain lasts.
    const accepted = async () => ((await (await fetch(`${url}/status`)).json()) as { collectors: Array<{ events_accepted: number }> }).collectors[0]!.events_accepted;
    await waitFor(async () => (await accepted()) > 0, "events the agent cannot deliver", 10_000);
    proc.kill("SIGTERM");
    await waitFor(() => said("SIGTERM received: shutting down"), "the first SIGTERM to start the drain", 10_000);
    const t0 = Date.now();
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(1);
    // Far below the 30 s shutdown_timeout: the second signal does not wait for the drain.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await out.ended;
    expect(said("second SIGTERM: exiting now")).toBe(true);
  });
});
