// The Grafana dashboard (deploy/monitoring/grafana-dashboard.json) against the
// agent it shows: the JSON has the structure Grafana needs (unique panel ids,
// the datasource, node, destination and collector variables, repeated rows);
// every PromQL expression, with the variables substituted, parses (promtool
// check rules, each expression a recording rule); every metric name an
// expression uses is served by a real agent's /metrics (one collector of each
// kind of series, spool on, two destinations, a real nats-server); and each
// expression returns data when evaluated (promtool test rules) over the series
// that scrape holds, as Prometheus would store them.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { REPO, endpointsUrl, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";

afterAll(stopAllNatsServers);

const promtool = Bun.which("promtool");
// CI installs promtool, so there a missing promtool fails the test rather than passing unchecked.
const promtoolSkip = promtool === null && process.env.CI !== "true";
const skipNote = promtoolSkip ? " (promtool checks skipped: not installed)" : "";

// biome-ignore lint: Grafana's dashboard model is untyped JSON here
type Json = Record<string, any>;

const dashboard: Json = JSON.parse(readFileSync(join(REPO, "deploy/monitoring/grafana-dashboard.json"), "utf8"));

/** Every panel, rows and the panels of collapsed rows included. */
function allPanels(panels: Json[] = dashboard.panels): Json[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

interface Expression {
  /** where it is: a panel's id, title and refId, or a variable */
  where: string;
  /** the same as a recording rule's name, which promtool names in its errors */
  record: string;
  expr: string;
}

/** Each panel target's expression, and the selector of each `label_values(selector, label)` variable query. */
function expressions(): Expression[] {
  const targets = allPanels()
    .filter((p) => p.type !== "row")
    .flatMap((p) => (p.targets as Json[]).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, record: `dashboard:panel_${p.id}_${t.refId}`, expr: t.expr as string })));
  const variables = (dashboard.templating.list as Json[])
    .filter((v) => v.type === "query")
    .map((v) => {
      const m = /^label_values\((.+),\s*\w+\)$/.exec(v.query.query);
      if (!m) throw new Error(`variable ${v.name}: expected label_values(selector, label), got ${v.query.query}`);
      return { where: `variable ${v.name}`, record: `dashboard:variable_${v.name}`, expr: m[1]! };
    });
  return [...targets, ...variables];
}

/** Grafana's own variables, as a 1m-scraped Prometheus would get them. */
const BUILTIN: Record<string, string> = { __rate_interval: "1m", __interval: "1m", __range: "1h" };
const VARIABLE_REFERENCE = /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g;

/** `expr` with every `$var` / `${var}` replaced by `values` (or a builtin); an unknown one throws. */
function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(VARIABLE_REFERENCE, (_, braced?: string, plain?: string) => {
    const name = (braced ?? plain)!;
    const value = values[name] ?? BUILTIN[name];
    if (value === undefined) throw new Error(`unknown variable $${name} in ${expr}`);
    return value;
  });
}

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "Inf", "NaN", "inf", "nan"]);

/**
 * The metric names of the vector selectors in a (substituted) expression: what
 * remains, as identifiers not called as functions, once strings, label
 * matchers, ranges, grouping label lists and comments are taken out.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/#.*$/gm, " ")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = [...bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()/g)].map((m) => m[1]!).filter((n) => !KEYWORDS.has(n));
  return [...new Set(names)];
}

/** Runs promtool; its output when it fails. */
function promtoolRun(args: string[]): { code: number; output: string } {
  const r = Bun.spawnSync([promtool!, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, output: r.stdout.toString() + r.stderr.toString() };
}

describe("Grafana dashboard", () => {
  test("loads, with unique panel ids, a grid of 24 columns, the variables and the repeated rows", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe("tapio-collectors");
    const panels = allPanels();
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect({ panel: p.title, fits: p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0 }).toEqual({ panel: p.title, fits: true });
    }

    const variables = new Map((dashboard.templating.list as Json[]).map((v) => [v.name as string, v]));
    expect([...variables.keys()]).toEqual(["datasource", "node", "destination", "collector"]);
    expect(variables.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["node", "destination", "collector"]) {
      expect(variables.get(name)).toMatchObject({ type: "query", datasource: { type: "prometheus", uid: "${datasource}" }, multi: true, includeAll: true });
    }

    // Each panel queries the chosen Prometheus, and has at least one expression.
    const queryPanels = panels.filter((p) => p.type !== "row");
    expect(queryPanels.length).toBeGreaterThanOrEqual(25);
    for (const p of queryPanels) {
      expect({ panel: p.title, datasource: p.datasource }).toEqual({ panel: p.title, datasource: { type: "prometheus", uid: "${datasource}" } });
      expect({ panel: p.title, targets: p.targets.length > 0 && p.targets.every((t: Json) => typeof t.expr === "string" && t.expr.length > 0) }).toEqual({ panel: p.title, targets: true });
    }

    const rows = panels.filter((p) => p.type === "row").map((r) => ({ title: r.title, repeat: r.repeat }));
    expect(rows).toEqual([
      { title: "Overview", repeat: undefined },
      { title: "Destination $destination", repeat: "destination" },
      { title: "Collector $collector", repeat: "collector" },
    ]);
    // Every variable an expression or a title names exists.
    const values = Object.fromEntries([...variables.keys()].map((name) => [name, "x"]));
    for (const p of panels) substitute(p.title, values);
    for (const e of expressions()) substitute(e.expr, values);
  });

  test("metric names are found in selectors, not in functions, keywords, label lists or strings", () => {
    expect(metricNames('sum by (le, collector) (rate(a_total{x=~"b_c"}[5m] offset 1m)) / on (instance) group_left (version) b_info # c_d')).toEqual(["a_total", "b_info"]);
    expect(metricNames("histogram_quantile(0.99, sum(rate(h_bucket[1m]))) > bool 1e3")).toEqual(["h_bucket"]);
  });

  test(`every expression, with the variables substituted, parses (promtool check rules)${skipNote}`, () => {
    if (promtoolSkip) return; // the test's name says so
    if (promtool === null) throw new Error("promtool is not installed, and CI=true: .ci/run installs it (Debian package prometheus)");
    const concrete = { node: "node-a:9090", collector: "dns", destination: "default" };
    const rules = expressions().map((e) => ({ record: e.record, expr: `# ${e.where}\n${substitute(e.expr, concrete)}` }));
    const file = join(makeTempDir("dashboard"), "rules.yaml");
    writeFileSync(file, stringify({ groups: [{ name: "dashboard", rules }] }));
    const check = promtoolRun(["check", "rules", file]);
    expect({ code: check.code, output: check.code === 0 ? "" : check.output }).toEqual({ code: 0, output: "" });
    expect(check.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  test(`every expression uses only metrics a running agent serves, and returns data over its series${skipNote}`, async () => {
    const server = await startNatsServer({ jetstream: false, config: "max_payload: 4096\n" });
    // synthetic/big: every event over max_payload (publish errors, drops); synthetic/small: published;
    // dns: a poll histogram, and a parse error from a bad resolv.conf line. Routed to both destinations.
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core }
destinations:
  central: { url: ["${server.url}"], mode: core, subject: dashboard.central }
routes:
  - name: everywhere
    to: [default, central]
collectors:
  synthetic/big: { config: { count: 20, rate: 0, payload_bytes: 8192 } }
  synthetic/small: { config: { count: 50, rate: 0 } }
  dns: { config: { names: [tapio-probe.invalid], resolv_conf: RESOLV, timeout: 200ms, interval: 1s } }
`);
    const resolv = join(dirname(file), "resolv.conf");
    writeFileSync(resolv, "nameserver not-an-address\nnameserver 127.0.0.1\n");
    writeFileSync(file, readFileSync(file, "utf8").replace("RESOLV", resolv));

    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    let scrape = "";
    try {
      const url = await endpointsUrl(out.lines);
      // The series that exist only once something happened: wait for each, then take one scrape.
      const needed = [
        'orchestrator_events_dropped_total{collector="synthetic/big",reason="max_payload"}',
        'orchestrator_publish_errors_total{destination="central",reason="max_payload"}',
        'orchestrator_collector_parse_errors_total{collector="dns"',
        'orchestrator_collector_poll_seconds_bucket{collector="dns"',
        "orchestrator_event_handoff_seconds_bucket{",
        'orchestrator_circuit_state{destination="default"',
        'orchestrator_circuit_state{destination="central"',
        // each of its 50 events, once per destination
        'orchestrator_events_published_total{collector="synthetic/small"} 100',
      ];
      await waitFor(
        async () => {
          scrape = await (await fetch(`${url}/metrics`)).text();
          return needed.every((s) => scrape.includes(s));
        },
        `every series of ${needed.join(", ")} on /metrics`,
        15_000,
      );
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
    }

    // The series as Prometheus stores them: the scrape's samples with a target's labels.
    const INSTANCE = "node-a:9090";
    const samples = scrape
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m) throw new Error(`not a sample line: ${line}`);
        return { name: m[1]!, labels: m[2] ?? "", value: Number(m[3]) };
      });
    const served = new Set(samples.map((s) => s.name));
    const labelValues = (label: string) => [...new Set(samples.flatMap((s) => [...s.labels.matchAll(new RegExp(`(?:^|,)${label}="([^"]*)"`, "g"))].map((m) => m[1]!)))].sort();
    const collectors = labelValues("collector");
    const destinations = labelValues("destination");
    expect(collectors).toEqual(["dns", "synthetic/big", "synthetic/small"]);
    expect(destinations).toEqual(["central", "default"]);

    // Every metric name in the dashboard is one the agent serves.
    const exprs = expressions();
    const unknown = exprs.flatMap((e) => metricNames(substitute(e.expr, { node: INSTANCE, collector: "dns", destination: "default" })).filter((n) => !served.has(n)).map((n) => `${e.where}: ${n}`));
    expect(unknown).toEqual([]);

    if (promtoolSkip) return; // the test's name says so
    if (promtool === null) throw new Error("promtool is not installed, and CI=true: .ci/run installs it (Debian package prometheus)");
    const dir = makeTempDir("dashboard");
    // Each expression returns data for at least one value of each variable, over the scraped series
    // (counters rising, gauges at their scraped value): absent(...) of it is then empty.
    const withTarget = (labels: string) => `instance="${INSTANCE}",job="tapio-collectors"${labels === "" ? "" : `,${labels}`}`;
    const rising = (name: string) => /_(total|bucket|count|sum)$/.test(name);
    const inputSeries = samples.map((s) => ({ series: `${s.name}{${withTarget(s.labels)}}`, values: rising(s.name) ? "0+1x30" : `${s.value}+0x30` }));
    const combinations = collectors.flatMap((collector) => destinations.map((destination) => ({ node: INSTANCE, collector, destination })));
    const exprTests = exprs.map((e) => ({
      expr: `# ${e.where}: no data\nabsent(${combinations.map((values) => `(${substitute(e.expr, values)})`).join(" or ")})`,
      eval_time: "20m",
      exp_samples: [],
    }));
    writeFileSync(join(dir, "tests.yaml"), stringify({ tests: [{ interval: "1m", input_series: inputSeries, promql_expr_test: exprTests }] }));
    const data = promtoolRun(["test", "rules", join(dir, "tests.yaml")]);
    expect({ code: data.code, output: data.code === 0 ? "" : data.output }).toEqual({ code: 0, output: "" });
  }, 40_000);
});
