// The exec collector's config: defaults, and located errors for what would not run.
import { describe, expect, test } from "bun:test";
import { Duration } from "../../../src/config/duration.ts";
import { configFrom } from "../../helpers/config.ts";
import { issuesOf } from "../../config/helpers.ts";

const exec = (config: string) => `collectors:\n  exec:\n    config:\n${config}`;
const errors = (config: string, env: Record<string, string> = {}) => issuesOf(() => configFrom(exec(config), undefined, env));

describe("exec config", () => {
  test("defaults: interval mode every 30s, timeout 10s, working_dir /, lines up to 256KiB, no extra env", () => {
    expect(configFrom(exec('      command: ["/usr/local/bin/nodecheck", "--json", ""]\n')).collectors.exec!.config).toEqual({
      command: ["/usr/local/bin/nodecheck", "--json", ""],
      mode: "interval",
      interval: new Duration(30_000),
      timeout: new Duration(10_000),
      env: {},
      working_dir: "/",
      max_line_bytes: 256 * 1024,
    });
  });

  test("the README's example loads", () => {
    const config = configFrom(
      exec(`      command: ["/usr/local/bin/nodecheck", "--json"]
      mode: stream
      env: { NODECHECK_LEVEL: "2", API_TOKEN: "\${NODECHECK_TOKEN}" }
      working_dir: /
      max_line_bytes: 64KiB
`),
      undefined,
      { NODECHECK_TOKEN: "t0ken" },
    ).collectors.exec!.config as Record<string, unknown>;
    expect(config).toMatchObject({ mode: "stream", env: { NODECHECK_LEVEL: "2", API_TOKEN: "t0ken" }, max_line_bytes: 65536 });
  });

  test("what would not run is a located error", () => {
    expect(errors("      mode: stream\n")).toEqual(['test.yaml:3:5 collectors.exec.config.command: missing required key "command"']);
    expect(errors("      command: /usr/bin/nodecheck --json\n")).toEqual([
      'test.yaml:4:16 collectors.exec.config.command: expected a list like ["/usr/local/bin/nodecheck", "--json"] (argv, no shell), got "/usr/bin/nodecheck --json"',
    ]);
    expect(errors("      command: []\n")).toEqual(["test.yaml:4:16 collectors.exec.config.command: expected the program to run (not empty) first, then its arguments, got an empty list"]);
    expect(errors('      command: ["", "x"]\n')).toEqual(["test.yaml:4:16 collectors.exec.config.command: expected the program to run (not empty) first, then its arguments, got a list"]);
    expect(errors('      command: [nodecheck]\n      mode: daemon\n')).toEqual(['test.yaml:5:13 collectors.exec.config.mode: expected one of stream, interval, got "daemon"']);
    expect(errors('      command: [nodecheck]\n      env: { "BAD-NAME": x, LEVEL: 3 }\n')).toEqual([
      'test.yaml:5:14 collectors.exec.config.env.BAD-NAME: expected an environment variable name like NODECHECK_LEVEL, got "BAD-NAME"',
      "test.yaml:5:36 collectors.exec.config.env.LEVEL: expected a string (quote numbers and booleans: YAML reads 0123 as a number), got 3",
    ]);
    expect(errors("      command: [nodecheck]\n      max_line_bytes: 2MiB\n")).toEqual([
      "test.yaml:5:23 collectors.exec.config.max_line_bytes: expected at most 1048576 bytes (1MiB: no event may be larger), got 2097152",
    ]);
    expect(errors("      command: [nodecheck]\n      timeout: 0\n")).toEqual(["test.yaml:5:16 collectors.exec.config.timeout: expected a duration above 0 like 250ms, 30s, 5m or 1h, got 0"]);
    expect(errors("      command: [nodecheck]\n      env: [LEVEL=3]\n")).toEqual(['test.yaml:5:12 collectors.exec.config.env: expected a mapping of NAME: value, got a list']);
  });
});
