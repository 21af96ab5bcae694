// The README's Metrics table against what a running agent serves: every
// metric it names is on /metrics with the type and label names the table
// says, and every orchestrator_* metric served is in the table. The run is
// made to produce a series of each: publish errors and drops (events over
// the server's max_payload, counted exactly), a parse error (a bad resolv.conf line),
// a quiet period (dns with emit_ok declares one).
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPO, spawnAgent, writeConfig, endpointsUrl } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

interface DocumentedMetric {
  name: string;
  type: string;
  labels: string[];
}

/** The rows of the README's Metrics table; a row may name several metrics. */
function readmeMetrics(): DocumentedMetric[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Metrics"), readme.indexOf("### Hot reload"));
  const rows = section.split("\n").filter((line) => line.startsWith("| `orchestrator_"));
  return rows.flatMap((row) => {
    const [names, type, labels] = row.split("|").slice(1, 4).map((cell) => cell.trim());
    const labelNames = [...labels!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort();
    return [...names!.matchAll(/`(orchestrator_[a-z_]+)`/g)].map((m) => ({ name: m[1]!, type: type!, labels: labelNames }));
  });
}

/** Label names of each sample of `name` (a histogram's _bucket/_sum/_count without `le`). */
function sampleLabels(text: string, name: string): string[][] {
  const sample = new RegExp(`^${name}(?:_bucket|_sum|_count)?(?:\\{(.*)\\})? `);
  return text.split("\n").flatMap((line) => {
    const m = sample.exec(line);
    if (!m) return [];
    return [[...(m[1] ?? "").matchAll(/([a-zA-Z_]+)="/g)].map((l) => l[1]!).filter((l) => l !== "le").sort()];
  });
}

describe("README metrics table", () => {
  test("every metric it names is served with its type and labels, and it names every metric served", async () => {
    const documented = readmeMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(20);

    // Every synthetic event is over the server's max_payload: refused by NATS, discarded.
    const OVERSIZED = 40;
    const server = await startNatsServer({ jetstream: false, config: "max_payload: 4096\n" });
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core }
collectors:
  synthetic: { config: { count: ${OVERSIZED}, rate: 0, payload_bytes: 8192 } }
  dns: { config: { names: [tapio-probe.invalid], resolv_conf: RESOLV, timeout: 200ms, interval: 1s, emit_ok: true } }
`);
    const resolv = join(dirname(file), "resolv.conf");
    writeFileSync(resolv, "nameserver not-an-address\nnameserver 127.0.0.1\n");
    writeFileSync(file, readFileSync(file, "utf8").replace("RESOLV", resolv));

    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const url = await endpointsUrl(out.lines);
      let text = "";
      const served = (name: string) => sampleLabels(text, name).length > 0;
      await waitFor(
        async () => {
          text = await (await fetch(`${url}/metrics`)).text();
          // Some series appear only once their first sample exists (a circuit, a drop): wait for all.
          return (
            ["orchestrator_events_dropped_total", "orchestrator_publish_errors_total", "orchestrator_collector_parse_errors_total"].every(served) &&
            documented.every((m) => text.includes(`# TYPE ${m.name} `))
          );
        },
        "drops, publish errors, parse errors and every documented metric on /metrics",
        15_000,
      );

      const types = new Map([...text.matchAll(/^# TYPE (orchestrator_\w+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!]));
      for (const metric of documented) {
        expect({ metric: metric.name, type: types.get(metric.name) }).toEqual({ metric: metric.name, type: metric.type });
        const labelSets = sampleLabels(text, metric.name);
        expect({ metric: metric.name, samples: labelSets.length > 0 }).toEqual({ metric: metric.name, samples: true });
        for (const labels of labelSets) expect({ metric: metric.name, labels }).toEqual({ metric: metric.name, labels: metric.labels });
      }
      expect([...types.keys()].sort()).toEqual(documented.map((m) => m.name).sort());

      // The values: each refused event is one failed attempt and one drop, by the same reason.
      await waitFor(
        async () => (await (await fetch(`${url}/metrics`)).text()).includes(`orchestrator_events_dropped_total{collector="synthetic",reason="max_payload"} ${OVERSIZED}`),
        "every oversized event counted as dropped",
      );
      text = await (await fetch(`${url}/metrics`)).text();
      expect(text).toContain(`orchestrator_publish_errors_total{destination="default",reason="max_payload"} ${OVERSIZED}`);
      expect(text).toContain(`orchestrator_events_received_total{collector="synthetic"} ${OVERSIZED}`);
      expect(text).toContain('orchestrator_events_published_total{collector="synthetic"} 0');
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
    }
  }, 40_000);
});
