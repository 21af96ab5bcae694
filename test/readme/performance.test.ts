// The README's Performance table is the recorded benchmark run
// (bench/results/bench.json, written by `npm run bench`): each figure, rounded
// as the table shows it, the commit it names, and "every target is met".
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../helpers/agent.ts";

interface BenchRow {
  measure: string;
  agent: number;
  baseline?: number;
  ratio?: number;
  target?: string;
  pass?: boolean;
}
const bench = JSON.parse(readFileSync(join(REPO, "bench/results/bench.json"), "utf8")) as { commit: string; rows: BenchRow[] };
const row = (measure: string) => {
  const found = bench.rows.find((r) => r.measure === measure);
  if (!found) throw new Error(`bench.json has no row "${measure}"`);
  return found;
};
const readme = readFileSync(join(REPO, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("## Performance"), readme.indexOf("## Development"));
/** The cells of the README row whose first cell starts with `measure`. */
const readmeRow = (measure: string) =>
  section
    .split("\n")
    .find((line) => line.startsWith(`| ${measure}`))
    ?.split("|")
    .slice(1, -1)
    .map((cell) => cell.trim());

const thousands = (n: number) => `${Math.round(n / 1000)}k events/s`;
const times = (n: number) => `${n.toFixed(2)}x`;

describe("README performance table", () => {
  test("every figure is the recorded run's, rounded", () => {
    const core = row("core throughput (1 KB events)");
    const js = row("jetstream throughput (1 KB events)");
    const p99 = row("end-to-end p99 at 10k/s (core)");
    const internal = row("agent-internal p99, emit to hand-off, 50k/s");
    const rss = row("RSS growth per buffered 1 KB event (100k held)");
    const idle = row("idle RSS (synthetic off, connected, JetStream)");
    const startup = row("startup to /readyz 200 (compiled, JetStream, spool)");
    const batching = row("jetstream throughput, nats.batch (500 per message) vs unbatched");
    expect(readmeRow("core throughput")!.slice(0, 3)).toEqual(["core throughput", thousands(core.agent), times(core.ratio!)]);
    expect(readmeRow("JetStream throughput (acked)")!.slice(0, 3)).toEqual(["JetStream throughput (acked)", thousands(js.agent), times(js.ratio!)]);
    expect(readmeRow("CPU per event")![2]).toBe(`${times(row("core CPU per million events").ratio!)} / ${times(row("jetstream CPU per million events").ratio!)}`);
    expect(readmeRow("end-to-end p99 at 10k events/s")!.slice(1, 3)).toEqual([`${p99.agent.toFixed(2)} ms`, `${(p99.agent - p99.baseline!).toFixed(2)} ms`]);
    expect(readmeRow("agent-internal p99 at 50k events/s")![1]).toBe(`<= ${internal.agent} ms`);
    expect(readmeRow("RSS per buffered 1 KB event")![1]).toBe(`${rss.agent.toFixed(2)} KB (idle RSS ${Math.round(idle.agent)} MiB)`);
    expect(readmeRow("start to ready")![1]).toBe(`${Math.round(startup.agent)} ms`);
    expect(readmeRow("JetStream with `nats.batch`")!.slice(1, 3)).toEqual([thousands(batching.agent), `${times(batching.ratio!)} the unbatched agent`]);
  });

  test("the run it names is the recorded one, and every target passed in it", () => {
    expect(section).toContain(`(commit ${bench.commit})`);
    const targeted = bench.rows.filter((r) => typeof r.target === "string");
    expect(targeted.length).toBeGreaterThanOrEqual(8);
    expect(targeted.filter((r) => r.pass !== true).map((r) => r.measure)).toEqual([]);
  });
});
