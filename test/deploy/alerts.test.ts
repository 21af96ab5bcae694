// The alerts in deploy/monitoring against Prometheus's own tools and the agent:
// the plain rules file is the PrometheusRule's groups (generated), `promtool
// check rules` accepts it, `promtool test rules` runs the unit tests in
// test/deploy/alerts/ (each alert fires, and its blips and exceptions do not),
// every metric and label the rules use is on a real agent's /metrics, every
// alert has its README entry and runbook, and the PodMonitor and the
// annotations component scrape the DaemonSet's port.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parse, stringify } from "yaml";
import { PROMETHEUS_RULE, RULES_FILE, rulesFileText } from "../../deploy/monitoring/rules-file.ts";
import { endpointsUrl, spawnAgent, writeConfig } from "../helpers/agent.ts";
import { killAtExit, spare } from "../helpers/cleanup.ts";
import { collectLines } from "../helpers/lines.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { REPO, run, which } from "./helpers.ts";

afterAll(stopAllNatsServers);

// biome-ignore lint: manifests are untyped YAML
type Doc = Record<string, any>;

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const UNIT_TESTS = join(REPO, "test/deploy/alerts/rules.test.yaml");
const K8S = join(REPO, "deploy/kubernetes");
const MONITORING_COMPONENT = join(K8S, "components/monitoring");
const ANNOTATIONS_COMPONENT = join(MONITORING_COMPONENT, "annotations");

const prometheusRule: Doc = parse(readFileSync(PROMETHEUS_RULE, "utf8"));
const rules: Rule[] = (prometheusRule.spec.groups as Doc[]).flatMap((g) => g.rules as Rule[]);

const promtool = which("promtool") ?? null;
// CI installs promtool, so there a missing promtool fails the tests rather than passing unchecked.
const promtoolSkip = promtool === null && process.env.CI !== "true";
const promtoolNote = promtoolSkip ? " (skipped: promtool not installed)" : "";

function promtoolRun(args: string[], cwd: string) {
  if (promtool === null) throw new Error("promtool is not installed, and CI=true: .ci/run installs it (Debian package prometheus)");
  return run([promtool, ...args], { cwd, timeoutMs: 60_000 });
}

// --- what the rules' expressions use ----------------------------------------------

/** Series that Prometheus makes itself, not the agent. */
const PROMETHEUS_SERIES = new Set(["up"]);
const PROMQL_WORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"]);

interface Selector {
  metric: string;
  labels: string[];
}

/** Metric names an expression reads, with the label names its selectors match on. */
function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  rest = rest.replace(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g, (_, metric: string, matchers: string) => {
    out.push({ metric, labels: [...matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!) });
    return " ";
  });
  rest = rest.replace(/\[[^\]]*\]/g, " ").replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  for (const m of rest.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1]!)) continue; // a function or aggregation, or a keyword
    out.push({ metric: m[1]!, labels: [] });
  }
  return out;
}

/** Label names an expression names in by/without/on/ignoring lists. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(",").map((l) => l.trim()).filter(Boolean));
}

/** `$labels.x` in an alert's annotations. */
function templateLabels(rule: Rule): string[] {
  return Object.values(rule.annotations).flatMap((text) => [...text.matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!));
}

/** Label names on the samples of `name` in a scrape (histograms: its _bucket/_sum/_count, without le). */
function sampleLabelNames(scrape: string, name: string): Set<string> {
  const sample = new RegExp(`^${name}(?:_bucket|_sum|_count)?(?:\\{(.*)\\})? `, "gm");
  const names = new Set<string>();
  for (const m of scrape.matchAll(sample)) for (const l of (m[1] ?? "").matchAll(/([a-zA-Z_]\w*)="/g)) if (l[1] !== "le") names.add(l[1]!);
  return names;
}

/** Labels every scraped series gets from Prometheus (the PodMonitor also adds node). */
const TARGET_LABELS = new Set(["job", "instance", "node"]);

// --- the README -------------------------------------------------------------------

const README = readFileSync(join(REPO, "README.md"), "utf8");

function readmeSection(start: string, end: string): string {
  const from = README.indexOf(start);
  if (from < 0) throw new Error(`README.md has no "${start}"`);
  const to = README.indexOf(end, from + start.length);
  return README.slice(from, to < 0 ? undefined : to);
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, "").replaceAll(" ", "-");
}

// --- kustomize ---------------------------------------------------------------------

const kustomize = which("kustomize") ? [which("kustomize")!, "build"] : which("kubectl") ? [which("kubectl")!, "kustomize"] : undefined;

/**
 * kustomize build of an overlay of the base: `lines` (components, labels, ...) after its
 * resources, with the README's `../deploy/kubernetes` made to point at this repository's.
 */
function kustomizeOverlay(lines: string): Doc[] {
  const dir = mkdtempSync(join(tmpdir(), "tapio-monitoring-overlay-"));
  try {
    const base = relative(dir, K8S);
    writeFileSync(
      join(dir, "kustomization.yaml"),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${base}\n${lines.replaceAll("../deploy/kubernetes", base)}`,
    );
    const r = run([...kustomize!, dir], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${kustomize!.join(" ")} failed:\n${r.stderr}`);
    return r.stdout.split(/^---$/m).map((d) => parse(d) as Doc).filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The base plus one component. */
const overlay = (component: string): Doc[] => kustomizeOverlay(`components:\n  - ${relative(K8S, component).replace(/^/, "../deploy/kubernetes/")}\n`);

// --- the tests --------------------------------------------------------------------

describe("alert rules", () => {
  test("the plain rules file is generated from the PrometheusRule (bun deploy/monitoring/rules-file.ts)", () => {
    expect(readFileSync(RULES_FILE, "utf8")).toBe(rulesFileText());
    expect(parse(readFileSync(RULES_FILE, "utf8")).groups).toEqual(prometheusRule.spec.groups);
  });

  test("the PrometheusRule is one for the operator, and every alert has a severity, a for, a summary, a description and a runbook", () => {
    expect(prometheusRule.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(prometheusRule.kind).toBe("PrometheusRule");
    expect(prometheusRule.metadata.namespace).toBe("tapio-system");
    expect(rules.length).toBeGreaterThanOrEqual(13);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect({ alert: r.alert, for: r.for }).toEqual({ alert: r.alert, for: expect.stringMatching(/^\d+m$/) });
      expect(Object.keys(r.annotations).sort()).toEqual(["description", "runbook_url", "summary"]);
      expect({ alert: r.alert, runbook_url: r.annotations.runbook_url }).toEqual({ alert: r.alert, runbook_url: `README.md#${slug(r.alert)}` });
    }
  });

  test("routes' drops (route_drop) are excluded from the drop alert: they are what the config asks for", () => {
    const dropped = rules.filter((r) => r.expr.includes("orchestrator_events_dropped_total"));
    expect(dropped.map((r) => r.alert)).toEqual(["TapioEventsDropped"]);
    expect(dropped[0]!.expr).toContain('reason!="route_drop"');
  });

  test(`promtool check rules accepts the plain rules file${promtoolNote}`, () => {
    if (promtoolSkip) return; // the test's name says so
    const r = promtoolRun(["check", "rules", relative(REPO, RULES_FILE)], REPO);
    expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  test("the unit tests cover every alert: a case where it fires and one where it must not", () => {
    const unit: Doc = parse(readFileSync(UNIT_TESTS, "utf8"));
    expect(unit.rule_files).toEqual([relative(dirname(UNIT_TESTS), RULES_FILE)]);
    const cases = (unit.tests as Doc[]).flatMap((t) => t.alert_rule_test as Doc[]);
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect({ alert: r.alert, fires: mine.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert: r.alert, fires: true });
      expect({ alert: r.alert, stays_quiet: mine.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert: r.alert, stays_quiet: true });
    }
    const named = new Set(rules.map((r) => r.alert));
    expect(cases.filter((c) => !named.has(c.alertname)).map((c) => c.alertname)).toEqual([]);
  });

  test(`promtool test rules: the unit tests pass${promtoolNote}`, () => {
    if (promtoolSkip) return;
    // The cases pin each alert's labels and summary; the descriptions and runbook links are
    // prose and links, so the rules are tested here with the summary as their only annotation.
    const dir = mkdtempSync(join(tmpdir(), "tapio-alerts-"));
    try {
      const groups = (prometheusRule.spec.groups as Doc[]).map((g) => ({
        ...g,
        rules: (g.rules as Rule[]).map((r) => ({ ...r, annotations: { summary: r.annotations.summary } })),
      }));
      writeFileSync(join(dir, "rules.yaml"), stringify({ groups }));
      const unit: Doc = parse(readFileSync(UNIT_TESTS, "utf8"));
      writeFileSync(join(dir, "rules.test.yaml"), stringify({ ...unit, rule_files: ["rules.yaml"] }));
      const r = promtoolRun(["test", "rules", "rules.test.yaml"], dir);
      expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the metric parser finds names, functions aside, and selector labels", () => {
    expect(selectors('(time() - a_ts) > b_quiet and ignoring (state) c_state{state="running"} == 1')).toEqual([
      { metric: "c_state", labels: ["state"] },
      { metric: "a_ts", labels: [] },
      { metric: "b_quiet", labels: [] },
    ]);
    expect(selectors('max without (subject) (x_state) > 0').map((s) => s.metric)).toEqual(["x_state"]);
    expect(selectors('rate(x_total{reason!="route_drop"}[5m]) > 0')).toEqual([{ metric: "x_total", labels: ["reason"] }]);
  });
});

describe("the rules against a running agent's /metrics", () => {
  test("every metric the rules read is served, with every label they match, group by or template; the alerts' own metrics hold what they say", async () => {
    const used = rules.flatMap((r) => selectors(r.expr).map((s) => ({ ...s, alert: r.alert })));
    const agentMetrics = [...new Set(used.map((s) => s.metric))].filter((m) => !PROMETHEUS_SERIES.has(m));
    expect(agentMetrics.length).toBeGreaterThanOrEqual(12);

    // Events over the server's max_payload: publish errors and drops. A routes rule drops a
    // collector's events on purpose (route_drop). dns with emit_ok declares a quiet period.
    const server = await startNatsServer({ jetstream: false, config: "max_payload: 4096\n" });
    const file = writeConfig(`
nats: { url: "${server.url}", mode: core }
spool: { path: SPOOL, max_bytes: 64MiB }
collectors:
  synthetic/big: { config: { count: 20, rate: 0, payload_bytes: 8192 } }
  synthetic/routed: { config: { count: 20, rate: 0 } }
  dns: { config: { names: [tapio-probe.invalid], resolv_conf: RESOLV, timeout: 200ms, interval: 1s, emit_ok: true } }
routes:
  - name: drop-routed
    match: { collector: synthetic/routed }
    drop: true
  - name: rest
    to: [default]
`);
    const dir = dirname(file);
    writeFileSync(join(dir, "resolv.conf"), "nameserver 127.0.0.1\n");
    writeFileSync(file, readFileSync(file, "utf8").replace("SPOOL", join(dir, "spool.db")).replace("RESOLV", join(dir, "resolv.conf")));
    const startedAt = Date.now() / 1000;

    const agent = spawnAgent(["-c", file]);
    killAtExit(agent.pid);
    const out = collectLines(agent.stdout);
    try {
      const url = await endpointsUrl(out.lines);
      let scrape = "";
      const scrapeNow = async () => (scrape = await (await fetch(`${url}/metrics`)).text());
      const value = (series: string) => {
        const line = scrape.split("\n").find((l) => l.startsWith(`${series} `));
        return line === undefined ? undefined : Number(line.slice(series.length + 1));
      };
      // The series that come last: the drops, once every event was refused or routed away, and a circuit.
      await waitFor(
        async () => {
          await scrapeNow();
          return (
            value('orchestrator_events_dropped_total{collector="synthetic/big",reason="max_payload"}') === 20 &&
            value('orchestrator_events_dropped_total{collector="synthetic/routed",reason="route_drop"}') === 20 &&
            sampleLabelNames(scrape, "orchestrator_circuit_state").size > 0
          );
        },
        "every synthetic event dropped, and a circuit, on /metrics",
        15_000,
      );

      // A renamed metric or label breaks this.
      for (const s of used) {
        if (PROMETHEUS_SERIES.has(s.metric)) continue;
        expect({ alert: s.alert, metric: s.metric, type: scrape.includes(`# TYPE ${s.metric} `) }).toEqual({ alert: s.alert, metric: s.metric, type: true });
        const labels = sampleLabelNames(scrape, s.metric);
        for (const l of s.labels) expect({ alert: s.alert, metric: s.metric, label: l, served: labels.has(l) }).toEqual({ alert: s.alert, metric: s.metric, label: l, served: true });
      }
      for (const r of rules) {
        const read = selectors(r.expr).map((s) => s.metric);
        const available = new Set([...TARGET_LABELS, ...read.flatMap((m) => [...sampleLabelNames(scrape, m)])]);
        for (const l of [...groupingLabels(r.expr), ...templateLabels(r)]) {
          expect({ alert: r.alert, label: l, available: available.has(l) }).toEqual({ alert: r.alert, label: l, available: true });
        }
      }

      // What the alerts compare: readiness, the spool's bound, the quiet period and the last event.
      expect(value("orchestrator_ready")).toBe(1);
      expect(value('orchestrator_spool_max_bytes{destination="default"}')).toBe(64 * 1024 * 1024);
      expect(value('orchestrator_collector_quiet_period_seconds{collector="dns"}')).toBe(2.2); // 2 intervals + the timeout
      expect(scrape).not.toContain('orchestrator_collector_quiet_period_seconds{collector="synthetic');
      const lastEvent = value('orchestrator_collector_last_event_timestamp_seconds{collector="dns"}')!;
      expect(lastEvent).toBeGreaterThanOrEqual(Math.floor(startedAt));
      expect(lastEvent).toBeLessThanOrEqual(Date.now() / 1000);
      expect(value("orchestrator_config_last_reload_successful")).toBe(1);

      // A config the agent refuses: the gauge stays 0 (the alert's condition) until a reload succeeds.
      const good = readFileSync(file, "utf8");
      writeFileSync(file, `${good}\norchestrator: { workers: -1 }\n`);
      await waitFor(async () => (await scrapeNow(), value("orchestrator_config_last_reload_successful") === 0), "the failed reload on /metrics", 10_000);
      expect(value('orchestrator_config_reloads_total{result="failure"}')).toBe(1);
      writeFileSync(file, `${good}\n# touched\n`);
      await waitFor(async () => (await scrapeNow(), value("orchestrator_config_last_reload_successful") === 1), "the next successful reload on /metrics", 10_000);
    } finally {
      agent.kill("SIGKILL");
      await agent.exited;
      spare(agent.pid);
    }
  }, 60_000);
});

describe("README: Monitoring", () => {
  const section = readmeSection("\n### Monitoring\n", "\n## ");
  const runbook = readmeSection("\n#### Runbook\n", "\n## ");

  test("the alerts table lists every alert, with its severity and for", () => {
    const rows = section.split("\n").filter((l) => l.startsWith("| `Tapio"));
    const listed = rows.map((row) => {
      const [name, severity, forCell] = row.split("|").slice(1, 4).map((c) => c.trim().replaceAll("`", ""));
      return { alert: name, severity, for: forCell };
    });
    expect(listed).toEqual(rules.map((r) => ({ alert: r.alert, severity: r.labels.severity, for: r.for })));
  });

  /** The YAML block of the section that contains `marker`. */
  const block = (marker: string): string => {
    const found = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
    if (!found) throw new Error(`README.md Monitoring: no yaml block with ${marker}`);
    return found;
  };

  test(`its prometheus.yml (rule file and scrape job) passes promtool check config, and names the job the alerts select${promtoolNote}`, () => {
    const config: Doc = parse(block("scrape_configs:"));
    const jobs = (config.scrape_configs as Doc[]).map((j) => j.job_name);
    for (const r of rules.filter((x) => /\bup\{/.test(x.expr))) expect(r.expr).toContain(`job="${jobs[0]}"`);
    if (promtoolSkip) return;
    const dir = mkdtempSync(join(tmpdir(), "tapio-prometheus-"));
    try {
      // Debian's promtool (what CI installs) is built without Kubernetes service discovery, so the
      // job is checked with the targets given statically; the relabeling and the rules as written.
      const sd = (config.scrape_configs as Doc[])[0]!.kubernetes_sd_configs as Doc[];
      expect(sd).toEqual([{ role: "pod", namespaces: { names: ["tapio-system"] } }]);
      const jobsChecked = (config.scrape_configs as Doc[]).map(({ kubernetes_sd_configs: _, ...job }) => ({ ...job, static_configs: [{ targets: ["10.0.0.1:9090"] }] }));
      writeFileSync(join(dir, "prometheus.yml"), stringify({ ...config, rule_files: [RULES_FILE], scrape_configs: jobsChecked }));
      const r = promtoolRun(["check", "config", "prometheus.yml"], dir);
      expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!kustomize)("its overlay lines add the monitoring component and the release label to the PodMonitor and the PrometheusRule", () => {
    const docs = kustomizeOverlay(block("components/monitoring"));
    for (const kind of ["PodMonitor", "PrometheusRule"]) {
      const found = docs.filter((d) => d.kind === kind);
      expect(found.map((d) => ({ kind, release: d.metadata.labels?.release }))).toEqual([{ kind, release: "kube-prometheus-stack" }]);
    }
  });

  test("the runbook has one entry per alert, the one its runbook_url points to", () => {
    const headings = [...runbook.matchAll(/^##### (.+)$/gm)].map((m) => m[1]!.trim());
    expect(headings).toEqual(rules.map((r) => r.alert));
    for (const r of rules) expect(r.annotations.runbook_url).toBe(`README.md#${slug(headings.find((h) => h === r.alert)!)}`);
  });
});

describe("monitoring objects", () => {
  const daemonSet: Doc = parse(readFileSync(join(K8S, "daemonset.yaml"), "utf8"));
  const container = (daemonSet.spec.template.spec.containers as Doc[]).find((c) => c.name === "tapio-collectors")!;
  const podLabels = daemonSet.spec.template.metadata.labels as Record<string, string>;
  const podMonitor: Doc = parse(readFileSync(join(REPO, "deploy/monitoring/podmonitor.yaml"), "utf8"));
  /** The port /metrics is served on: the container port the config's http.listen names. */
  const configText = (parse(readFileSync(join(K8S, "configmap.yaml"), "utf8")).data as Record<string, string>)["collectors.yaml"]!;
  const listenPort = Number(/listen:\s*"[^"]*:(\d+)"/.exec(configText)![1]);
  const metricsPort = (container.ports as Doc[]).find((p) => p.containerPort === listenPort)!;

  test("the PodMonitor selects the DaemonSet's pods, scrapes the port /metrics is on, and names the job the alerts select", () => {
    expect(podMonitor.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(podMonitor.kind).toBe("PodMonitor");
    expect(podMonitor.metadata.namespace).toBe(daemonSet.metadata.namespace);
    for (const [k, v] of Object.entries(podMonitor.spec.selector.matchLabels as Record<string, string>)) expect({ [k]: podLabels[k] }).toEqual({ [k]: v });
    const endpoints = podMonitor.spec.podMetricsEndpoints as Doc[];
    expect(endpoints.map((e) => ({ port: e.port, path: e.path }))).toEqual([{ port: metricsPort.name, path: "/metrics" }]);
    // The job is the value of the pod label jobLabel names: the one the up-alerts select.
    const job = podLabels[podMonitor.spec.jobLabel];
    for (const r of rules.filter((x) => /\bup\{/.test(x.expr))) expect(r.expr).toContain(`job="${job}"`);
  });

  test("the annotations component points Prometheus at the same port and path", () => {
    const component: Doc = parse(readFileSync(join(ANNOTATIONS_COMPONENT, "kustomization.yaml"), "utf8"));
    expect(component.kind).toBe("Component");
    const patch: Doc = parse(readFileSync(join(ANNOTATIONS_COMPONENT, component.patches[0].path), "utf8"));
    expect(patch.spec.template.metadata.annotations).toEqual({ "prometheus.io/scrape": "true", "prometheus.io/port": String(listenPort), "prometheus.io/path": "/metrics" });
  });

  test("the operator component brings deploy/monitoring: the PodMonitor and the PrometheusRule", () => {
    const component: Doc = parse(readFileSync(join(MONITORING_COMPONENT, "kustomization.yaml"), "utf8"));
    expect(component.kind).toBe("Component");
    const monitoringDir = join(MONITORING_COMPONENT, component.resources[0]);
    const monitoring: Doc = parse(readFileSync(join(monitoringDir, "kustomization.yaml"), "utf8"));
    expect(monitoring.resources.sort()).toEqual(["podmonitor.yaml", "prometheus-rules.yaml"]);
    expect(monitoring.namespace).toBe(daemonSet.metadata.namespace);
  });

  test.skipIf(!kustomize)("kustomize build with components/monitoring: the PodMonitor and the rules, in the agent's namespace", () => {
    const docs = overlay(MONITORING_COMPONENT);
    const pm = docs.filter((d) => d.kind === "PodMonitor");
    const pr = docs.filter((d) => d.kind === "PrometheusRule");
    expect(pm.map((d) => d.metadata.namespace)).toEqual(["tapio-system"]);
    expect(pr.map((d) => d.metadata.namespace)).toEqual(["tapio-system"]);
    expect(pr[0]!.spec.groups).toEqual(parse(readFileSync(RULES_FILE, "utf8")).groups);
  });

  test.skipIf(!kustomize)("kustomize build with components/monitoring/annotations: the DaemonSet's pods carry the scrape annotations", () => {
    const ds = overlay(ANNOTATIONS_COMPONENT).find((d) => d.kind === "DaemonSet")!;
    expect(ds.spec.template.metadata.annotations["prometheus.io/port"]).toBe(String(listenPort));
    expect(ds.spec.template.metadata.labels).toEqual(podLabels);
  });
});
