// A config file costs time and memory in proportion to its size, up to a
// limit, whatever it is: a device, a FIFO, a huge file, 50,000 keys. Each case
// runs the real command in a child process, timed, with its peak RSS measured.
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { type ConfigError, MAX_ISSUES_SHOWN } from "../../src/config/errors.ts";
import { loadConfigText, MAX_CONFIG_BYTES } from "../../src/config/load.ts";
import { ConfigReloader } from "../../src/reload/reloader.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { makeTempDir, removeTempDir } from "../helpers/cleanup.ts";
import { sourceCommand, spawnAgent } from "../helpers/agent.ts";
import { usageMeter } from "../helpers/usage-meter.ts";

const dir = makeTempDir("bounded-config");
afterAll(() => removeTempDir(dir));

const MiB = 1024 * 1024;

/** Runs the agent with `args`; kills it after `timeoutMs` (a test that hangs fails on time, not on the runner's timeout). */
async function measured(args: string[], timeoutMs: number) {
  const started = performance.now();
  const meter = usageMeter();
  const [bun, main] = sourceCommand();
  const proc = spawnAgent(args, { command: [bun!, ...meter.preload, main!], env: meter.env });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited, new Response(proc.stdout).text()]);
  clearTimeout(timer);
  // CPU time, not wall time, bounds what is costly: other tests share the 2 cores.
  return { code, stderr, seconds: (performance.now() - started) / 1000, ...meter.read() };
}

/** A valid head, then `count` unknown top-level keys. */
function manyKeys(count: number): string {
  const lines = ["orchestrator: {}", "nats: {url: nats://127.0.0.1:4222}", "collectors: {}"];
  for (let i = 0; i < count; i++) lines.push(`k${i}: 1`);
  return `${lines.join("\n")}\n`;
}

describe("what is not a regular file is refused at once, by every command that reads a config", () => {
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const cases: Array<[string, string, string]> = [
    ["/dev/zero", "/dev/zero", "a character device"],
    ["a FIFO nobody writes to", fifo, "a FIFO"],
    ["a directory", dir, "a directory"],
  ];
  for (const command of ["validate", "print-config", "run"]) {
    test.each(cases)(`${command}: %s`, async (_, path, kind) => {
      // Before: /dev/zero grew past 140 MB in 4 s without end; the FIFO hung forever.
      const { code, stderr, seconds, rssMiB } = await measured([command, "--config", path], 20_000);
      expect(stderr).toBe(`${path}: cannot read: not a regular file (${kind}); a config must be a regular file\n`);
      expect(code).toBe(2);
      expect(seconds).toBeLessThan(10);
      expect(rssMiB).toBeLessThan(150);
    });
  }
});

test("a file over 4 MiB is refused with its size, before it is read", async () => {
  const file = join(dir, "huge.yaml");
  const text = `# ${"x".repeat(MAX_CONFIG_BYTES)}\norchestrator: {}\n`;
  writeFileSync(file, text);
  const { code, stderr, seconds, rssMiB } = await measured(["validate", "--config", file], 20_000);
  expect(stderr).toBe(`${file}: cannot read: ${text.length} bytes is more than the ${MAX_CONFIG_BYTES} bytes (4 MiB) a config may have\n`);
  expect(code).toBe(2);
  expect(seconds).toBeLessThan(10);
  expect(rssMiB).toBeLessThan(150);
});

test("50,000 keys: validated in seconds, 100 errors printed and a count of the rest", async () => {
  const file = join(dir, "keys.yaml");
  writeFileSync(file, manyKeys(50_000));
  // Before: 15.8 s on an idle machine (the yaml package's duplicate-key check
  // compares each key with every earlier one), and 50,000 lines of errors.
  const { code, stderr, cpuSeconds, rssMiB } = await measured(["validate", "--config", file], 60_000);
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(MAX_ISSUES_SHOWN + 1);
  expect(lines[0]).toBe(`${file}:4:1 k0: unknown key "k0" (known keys: profile, orchestrator, nats, destinations, spool, http, telemetry, collectors, routes)`);
  expect(lines.at(-1)).toBe(`and ${50_000 - MAX_ISSUES_SHOWN} more`);
  expect(code).toBe(2);
  expect(cpuSeconds).toBeLessThan(8);
  expect(rssMiB).toBeLessThan(500);
}, 70_000);

test("a duplicate key among 50,000 is found, where it is", async () => {
  const file = join(dir, "duplicate.yaml");
  writeFileSync(file, `${manyKeys(50_000)}k7: 2\n`);
  const { stderr, cpuSeconds } = await measured(["validate", "--config", file], 60_000);
  expect(stderr).toContain(`${file}:50004:1 k7: duplicate key "k7"`);
  expect(cpuSeconds).toBeLessThan(8);
}, 70_000);

test("parsing time grows in proportion to the number of keys, not faster", async () => {
  // In one process, so both sizes see the same machine: 4x the keys must
  // cost far less than the 16x a quadratic step would.
  const script = `
    import { loadConfigText } from ${JSON.stringify(join(import.meta.dir, "../../src/config/load.ts"))};
    import { builtinRegistry } from ${JSON.stringify(join(import.meta.dir, "../../src/collectors/index.ts"))};
    const lines = (n) => { const l = ["orchestrator: {}"]; for (let i = 0; i < n; i++) l.push("k" + i + ": 1"); return l.join("\\n"); };
    const cost = (n) => { const text = lines(n); const t = performance.now(); try { loadConfigText(text, "f", builtinRegistry(), {}); } catch {} return performance.now() - t; };
    cost(2000);
    const small = Math.min(cost(10000), cost(10000));
    const large = cost(40000);
    console.log(JSON.stringify({ small, large }));
  `;
  const file = join(dir, "scaling.ts");
  writeFileSync(file, script);
  const proc = Bun.spawn([sourceCommand()[0]!, file], { stdout: "pipe", stderr: "inherit" });
  const { small, large } = JSON.parse(await new Response(proc.stdout).text());
  expect(large / small).toBeLessThan(10);
}, 120_000);

test("a reload of a file with 50,000 keys logs 100 errors and a count, and the agent keeps its config", async () => {
  const file = join(dir, "reload.yaml");
  writeFileSync(file, "orchestrator: {}\n");
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const results: string[] = [];
  const reloader = new ConfigReloader({ file, registry: builtinRegistry(), log, onResult: (r) => results.push(r), apply: async () => {} });
  writeFileSync(file, manyKeys(50_000));
  const cpuBefore = process.cpuUsage();
  expect(await reloader.reload("test")).toBe("failure");
  const cpu = process.cpuUsage(cpuBefore);
  // Before: 15 s of CPU on an idle machine, the event loop blocked all along.
  expect((cpu.user + cpu.system) / 1e6).toBeLessThan(8);
  expect(lines).toHaveLength(MAX_ISSUES_SHOWN + 2);
  expect(lines.at(-2)!.msg).toBe(`config reload: and ${50_000 - MAX_ISSUES_SHOWN} more`);
  expect(lines.at(-1)!.msg).toBe("config reload failed (50000 error(s)); still running on the previous config");
  expect(results).toEqual(["failure"]);
}, 60_000);

test("a reload from /dev/zero fails at once", async () => {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const reloader = new ConfigReloader({ file: "/dev/zero", registry: builtinRegistry(), log, onResult: () => {}, apply: async () => {} });
  const before = process.memoryUsage().rss;
  expect(await reloader.reload("test")).toBe("failure");
  expect(lines[0]!.msg).toBe("config reload: /dev/zero: cannot read: not a regular file (a character device); a config must be a regular file");
  expect(process.memoryUsage().rss - before).toBeLessThan(50 * MiB);
});

test("unknown keys of 1,000 characters: no suggestion searched cell by cell in vain", () => {
  const lines = ["orchestrator: {}"];
  for (let i = 0; i < 4000; i++) lines.push(`${"k".repeat(1000)}${i}: 1`);
  const cpuBefore = process.cpuUsage();
  let issues = 0;
  try {
    loadConfigText(lines.join("\n"), "f", builtinRegistry(), {});
  } catch (err) {
    issues = (err as ConfigError).issues.length;
  }
  const cpu = process.cpuUsage(cpuBefore);
  expect(issues).toBe(4000);
  // Before: 4000 x 1000 x 6 known keys' lengths of edit distance cells, about 3 s.
  expect((cpu.user + cpu.system) / 1e6).toBeLessThan(1.5);
});
