// Runs the agent as a real process: from source (bun src/main.ts) or a compiled binary.
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTempDir } from "./cleanup.ts";
import { waitFor } from "./wait-for.ts";

export const REPO = resolve(import.meta.dir, "../..");

export interface AgentResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command that runs the agent from source. */
export function sourceCommand(): string[] {
  return [process.execPath, join(REPO, "src/main.ts")];
}

/** stdin: text the agent reads on its standard input (none by default). */
export function spawnAgent(args: string[], opts: { command?: string[]; env?: Record<string, string | undefined>; cwd?: string; stdin?: string } = {}) {
  return Bun.spawn([...(opts.command ?? sourceCommand()), ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
  });
}

export async function runAgent(args: string[], opts: Parameters<typeof spawnAgent>[1] & { timeoutMs?: number } = {}): Promise<AgentResult> {
  const proc = spawnAgent(args, opts);
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Writes a config file into a fresh temp dir and returns its path. A config
 * without a `spool:` section gets one in that dir, so no test writes to the
 * default /var/lib path; one without `http:` listens on a free loopback port.
 */
export function writeConfig(yaml: string, name = "config.yaml"): string {
  const dir = makeTempDir("agent");
  const file = join(dir, name);
  let text = yaml;
  if (!/^spool:/m.test(text)) text += `\nspool:\n  path: ${join(dir, "spool.db")}\n`;
  // Tests run agents side by side: each gets a free port unless the test picks one.
  if (!/^http:/m.test(text)) text += `\nhttp:\n  listen: "127.0.0.1:0"\n`;
  writeFileSync(file, text);
  return file;
}

/** Parses JSON log lines, skipping anything else. */
export function logLines(text: string): Array<Record<string, any>> {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/**
 * The agent's HTTP base URL, once its "HTTP endpoints on ..." line is among
 * `lines` (what collectLines gathers from its stdout).
 */
export async function endpointsUrl(lines: string[], timeoutMs = 10_000): Promise<string> {
  const line = () => logLines(lines.join("\n")).find((l) => typeof l.msg === "string" && l.msg.startsWith("HTTP endpoints on"));
  await waitFor(() => line() !== undefined, "the agent's 'HTTP endpoints on' line", timeoutMs);
  return line()!.url as string;
}
