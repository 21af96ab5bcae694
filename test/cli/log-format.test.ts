// Without --log-format the logs are pretty when they go to a terminal, JSON
// otherwise. The terminal is a real pseudo-terminal from script (util-linux).
import { describe, expect, test } from "bun:test";
import { logLines, runAgent, sourceCommand, writeConfig } from "../helpers/agent.ts";
import { defaultLogFormat } from "../../src/log.ts";

const SCRIPT = Bun.which("script");
const CONFIG = "collectors:\n  synthetic:\n    config: { count: 1 }\n";
/** A pino JSON log line: the first key is its level. */
const JSON_LOG_LINE = /^\{"level":/m;
const PRETTY_START_LINE = /INFO.*tapio-collectors .* starting/;

const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/** Runs the agent under a pseudo-terminal: stdin, stdout and stderr are the terminal unless `redirect` says otherwise. */
async function onTerminal(args: string[], redirect = ""): Promise<{ code: number; output: string }> {
  const command = `${[...sourceCommand(), ...args].map(shellQuote).join(" ")}${redirect}`;
  const proc = Bun.spawn([SCRIPT!, "-qec", command, "/dev/null"], { env: { ...process.env, NO_COLOR: "1" }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [output, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, output: output.replaceAll("\r\n", "\n") };
}

describe("the log format follows the log destination", () => {
  test("decision: pretty for a terminal, json for anything else", () => {
    expect(defaultLogFormat(1, (fd) => fd === 1)).toBe("pretty");
    expect(defaultLogFormat(2, (fd) => fd === 1)).toBe("json");
  });

  test("a pipe gives JSON lines", async () => {
    const r = await runAgent(["--once", "--dry-run", "-c", writeConfig(CONFIG)]);
    expect(r.code).toBe(0);
    expect(logLines(r.stderr).some((line) => line.msg?.includes("starting"))).toBe(true);
    expect(r.stderr).not.toMatch(PRETTY_START_LINE);
  });

  test.skipIf(!SCRIPT)(`on a terminal, without --log-format: human-readable lines${SCRIPT ? "" : " (skipped: script is not installed)"}`, async () => {
    const r = await onTerminal(["--once", "--dry-run", "-c", writeConfig(CONFIG)]);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(PRETTY_START_LINE);
    expect(r.output).not.toMatch(JSON_LOG_LINE);
  });

  test.skipIf(!SCRIPT)(`--log-format json on a terminal stays JSON${SCRIPT ? "" : " (skipped: script is not installed)"}`, async () => {
    const r = await onTerminal(["--once", "--dry-run", "--log-format", "json", "-c", writeConfig(CONFIG)]);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(JSON_LOG_LINE);
    expect(r.output).not.toMatch(PRETTY_START_LINE);
  });

  test.skipIf(!SCRIPT)(`the log's own descriptor decides: --dry-run logs to stderr, redirected to a pipe, are JSON while stdout is a terminal${SCRIPT ? "" : " (skipped: script is not installed)"}`, async () => {
    // stderr into cat, which writes it to the terminal unchanged: a pipe for the agent
    const r = await onTerminal(["--once", "--dry-run", "-c", writeConfig(CONFIG)], " 2>&1 >/dev/tty | cat");
    expect(r.code).toBe(0);
    expect(r.output).toMatch(JSON_LOG_LINE);
    expect(r.output).not.toMatch(PRETTY_START_LINE);
  });
});
