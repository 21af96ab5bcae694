// `validate` with several files and standard input: each file reported, exit 2 when any is invalid.
import { describe, expect, test } from "bun:test";
import { dirname } from "node:path";
import { runAgent, writeConfig } from "../helpers/agent.ts";

const GOOD = "collectors:\n  synthetic:\n    config: { count: 1 }\n";
const BAD = "orchestrator:\n  workers: abc\n";
const BAD_ISSUE = 'orchestrator.workers: expected an integer from 1 to 64, got "abc"';

describe("validate with several files and stdin", () => {
  test("several files, one invalid: every file is reported, exit 2", async () => {
    const [first, bad, last] = [writeConfig(GOOD), writeConfig(BAD), writeConfig(GOOD)];
    const r = await runAgent(["validate", first, bad, last]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${first}: valid (1 collector(s) enabled: synthetic)`);
    expect(r.stderr).toContain(`${bad}:2:12 ${BAD_ISSUE}`);
    // the file after the invalid one is still checked
    expect(r.stderr).toContain(`${last}: valid`);
  });

  test("several valid files, --config among them: exit 0", async () => {
    const [a, b] = [writeConfig(GOOD), writeConfig(GOOD)];
    const r = await runAgent(["validate", "-c", a, b]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${a}: valid`);
    expect(r.stderr).toContain(`${b}: valid`);
  });

  test("- reads a valid config from stdin", async () => {
    const r = await runAgent(["validate", "-"], { stdin: GOOD });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("<stdin>: valid (1 collector(s) enabled: synthetic)\n");
  });

  test("- with an invalid config: its problems located at <stdin>, exit 2", async () => {
    const r = await runAgent(["validate", "-"], { stdin: BAD });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`<stdin>:2:12 ${BAD_ISSUE}\n`);
  });

  test("stdin beside files, and - twice is a usage error", async () => {
    const file = writeConfig(GOOD);
    const r = await runAgent(["validate", file, "-"], { stdin: BAD });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: valid`);
    expect(r.stderr).toContain(`<stdin>:2:12 ${BAD_ISSUE}`);
    const twice = await runAgent(["validate", "-", "-"], { stdin: GOOD });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toStartWith("tapio-collectors: validate: - (standard input) can be read once");
  });

  test("paths that cannot be read are reported by name, the readable ones still checked", async () => {
    const good = writeConfig(GOOD);
    const missing = `${dirname(good)}/missing.yaml`;
    const directory = dirname(good);
    const r = await runAgent(["validate", missing, directory, good]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${missing}: cannot read: ENOENT`);
    expect(r.stderr).toContain(`${directory}: cannot read: not a regular file (a directory)`);
    expect(r.stderr).toContain(`${good}: valid`);
    expect(r.stderr).not.toMatch(/^\s+at .+:\d+/m);
  });
});
