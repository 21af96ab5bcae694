// Running the pieces of a benchmark as separate processes and reading what
// they print: the subscriber, the baseline publisher, the compiled agent
// (once with --once, or long-running with its HTTP endpoints).
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { killAtExit, spare } from "../../test/helpers/cleanup.ts";

export const BENCH = join(import.meta.dir, "..");
export const REPO = join(BENCH, "..");

export interface Latency {
  min: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface SubscriberResult {
  received: number;
  rate: number;
  seconds: number;
  /** milliseconds, from the event's timestamp to its arrival; the first `skip` arrivals left out */
  latency_ms: Latency;
}

/**
 * Starts the subscriber and waits until it is subscribed. It reports once
 * `count` events arrived (or at `timeoutMs`); `skip` first arrivals are
 * counted but left out of the latency figures (the warm-up).
 */
export async function startSubscriber(url: string, subject: string, count: number, opts: { timeoutMs?: number; skip?: number } = {}) {
  const args = [url, subject, String(count), String(opts.timeoutMs ?? 120_000), String(opts.skip ?? 0)];
  const proc = Bun.spawn([process.execPath, join(BENCH, "lib/subscriber.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  const lines = lineReader(proc.stdout);
  const first = await lines.next();
  if (first === undefined) throw new Error("subscriber ended before it was ready");
  return {
    result: async (): Promise<SubscriberResult> => {
      const line = await lines.next();
      await proc.exited;
      if (line === undefined) throw new Error("subscriber ended without a result");
      return JSON.parse(line);
    },
    kill: () => proc.kill(),
  };
}

/** Reads a process's output line by line. */
function lineReader(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void) {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  return {
    async next(): Promise<string | undefined> {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          onLine?.(line);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buf += dec.decode(value, { stream: true });
      }
    },
  };
}

/**
 * The synthetic collector's pacing tick at `rate` events/s, read from its
 * source (a constant TICK_MS, or a function tickMs(rate) returning one
 * expression): the baseline paces itself the same way, so that both offer
 * the same bursts.
 */
export function syntheticTickMs(rate: number): number {
  const source = readFileSync(join(REPO, "src/collectors/synthetic/index.ts"), "utf8");
  const fixed = /const TICK_MS = (\d+(?:\.\d+)?);/.exec(source);
  if (fixed) return Number(fixed[1]);
  const fn = /function tickMs\(rate: number\): number \{\s*return ([^;]+);\s*\}/.exec(source);
  if (!fn) throw new Error("bench: cannot find the synthetic collector's tick (TICK_MS or tickMs(rate)) in src/collectors/synthetic/index.ts; update syntheticTickMs in bench/lib/procs.ts");
  const tick = new Function("rate", `return ${fn[1]};`)(rate) as number;
  if (!(tick > 0)) throw new Error(`bench: the synthetic collector's tickMs(${rate}) gave ${tick}`);
  return tick;
}

export async function runBaseline(url: string, subject: string, mode: "core" | "jetstream", count: number, rate: number, stream = "BASELINE") {
  const args = [url, subject, mode, String(count), String(rate), stream, String(rate > 0 ? syntheticTickMs(rate) : 0)];
  const proc = Bun.spawn([process.execPath, join(BENCH, "lib/baseline.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`baseline failed: ${out}`);
  const usage = proc.resourceUsage();
  return { ...(JSON.parse(out.trim().split("\n").pop()!) as { rate: number; seconds: number }), cpu: cpuSeconds(usage) };
}

export function cpuSeconds(usage: ReturnType<Bun.Subprocess["resourceUsage"]>): number {
  if (!usage) return NaN;
  return Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6;
}

/** Writes an agent config for a benchmark scenario and returns its path. */
export function agentConfig(dir: string, name: string, body: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, body);
  return file;
}

/** The agent with --once: runs until its collectors are done and everything is delivered. */
export async function runAgent(binary: string, config: string, extraArgs: string[] = []) {
  const t0 = performance.now();
  const proc = Bun.spawn([binary, "--once", "-c", config, "--log-level", "warn", ...extraArgs], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`agent exited ${code}: ${out.slice(-2000)}`);
  return { seconds, cpu: cpuSeconds(proc.resourceUsage()), log: out };
}

export interface LiveAgent {
  readonly pid: number;
  /** the HTTP endpoints' base URL, from the log line "HTTP endpoints on ..." */
  readonly http: Promise<string>;
  readonly exited: Promise<number>;
  /** SIGTERM (a graceful stop) or SIGKILL; resolves with the exit code */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<number>;
  log(): string;
}

const live = new Set<LiveAgent>();

/** A long-running agent (no --once), logging at info so that it names its HTTP address; `binary` may be a command (bun src/main.ts). */
export function startAgent(binary: string | string[], config: string): LiveAgent {
  const proc = Bun.spawn([...[binary].flat(), "-c", config, "--log-level", "info"], { stdout: "pipe", stderr: "pipe" });
  killAtExit(proc.pid);
  const { promise: http, resolve, reject } = Promise.withResolvers<string>();
  http.catch(() => {});
  let log = "";
  const onLine = (line: string) => {
    if (log.length < 200_000) log += `${line}\n`;
    const m = /HTTP endpoints on (\S+)/.exec(line);
    if (m) resolve(m[1]!);
  };
  // Keep reading, so that a full pipe never blocks the agent's logging.
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const lines = lineReader(stream, onLine);
    while ((await lines.next()) !== undefined);
  };
  void drain(proc.stdout);
  void drain(proc.stderr);
  const exited = proc.exited.then((code) => {
    spare(proc.pid);
    live.delete(agent);
    reject(new Error(`agent exited (${code}) before it named its HTTP endpoints:\n${log.slice(-2000)}`));
    return code;
  });
  const agent: LiveAgent = {
    pid: proc.pid,
    http,
    exited,
    async stop(signal = "SIGTERM") {
      proc.kill(signal);
      return exited;
    },
    log: () => log,
  };
  live.add(agent);
  return agent;
}

/** Kills every long-running agent still alive (a scenario failed half-way). */
export async function killAllAgents(): Promise<void> {
  await Promise.all([...live].map((a) => a.stop("SIGKILL")));
}

/** A free TCP port on loopback (for an agent whose address must be known before it starts). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Cumulative bucket counts of one Prometheus histogram: upper bound -> count (+Inf included). */
export function histogramBuckets(metrics: string, name: string): Map<number, number> {
  const buckets = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\}\\s+(\\S+)`, "gm");
  for (const m of metrics.matchAll(re)) {
    const le = m[1] === "+Inf" ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** later - earlier, bucket by bucket (what was recorded between two scrapes). */
export function bucketDelta(later: Map<number, number>, earlier: Map<number, number>): Map<number, number> {
  return new Map([...later].map(([le, n]) => [le, n - (earlier.get(le) ?? 0)]));
}

/**
 * The upper bound of the bucket that holds quantile q: the smallest `le`
 * whose cumulative count reaches q of all observations; and, as Prometheus'
 * histogram_quantile() estimates it, q interpolated linearly within that bucket.
 */
export function bucketQuantile(buckets: Map<number, number>, q: number): { upper: number; interpolated: number; count: number } {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return { upper: NaN, interpolated: NaN, count: 0 };
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of sorted) {
    if (n >= rank) {
      const interpolated = le === Infinity ? lower : lower + (le - lower) * ((rank - below) / Math.max(1, n - below));
      return { upper: le, interpolated, count: total };
    }
    lower = le;
    below = n;
  }
  return { upper: Infinity, interpolated: lower, count: total };
}
