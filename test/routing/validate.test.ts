// `tapio-collectors validate` on routes, as a real process: warnings on
// stderr before the verdict, exit code 0 all the same; located errors and
// exit 2 for an invalid rule.
import { describe, expect, test } from "bun:test";
import { runAgent, writeConfig } from "../helpers/agent.ts";
import { routeWarnings } from "../../src/routing/warnings.ts";

const COLLECTORS = "collectors:\n  synthetic/a: {}\n  synthetic/b: { enabled: false }\n  kernel: {}\n";

describe("validate: routes warnings", () => {
  test("the last rule has a match, a rule never reached, collector globs matching no instance", async () => {
    const file = writeConfig(`${COLLECTORS}
routes:
  - name: kernel-problems
    match: { collector: [kernel, kubelet, "dns/*"], severity_at_least: warning }
    to: default
  - name: synthetic
    match: { collector: "synthetic/*" }
    to: default
  - name: late
    match: { type: x }
    drop: true
`);
    const r = await runAgent(["validate", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toEqual([
      `${file}: warning: routes.0 ("kernel-problems"): match.collector.1 "kubelet" matches none of the configured collectors (kernel, synthetic/a, synthetic/b)`,
      `${file}: warning: routes.0 ("kernel-problems"): match.collector.2 "dns/*" matches none of the configured collectors (kernel, synthetic/a, synthetic/b)`,
      `${file}: warning: routes.2 ("late"): the last rule has a match: events that match no rule are dropped (counted as unrouted); end with a rule without match to send them somewhere`,
      `${file}: valid (2 collector(s) enabled: kernel, synthetic/a)`,
      "",
    ]);
  });

  test("rules after one without match are never reached; then no unrouted warning", async () => {
    const file = writeConfig(`${COLLECTORS}
routes:
  - name: drop-debug
    match: { severity_below: info }
    drop: true
  - name: rest
    to: [default]
  - name: shadowed
    match: { type: "kernel.*" }
    to: default
  - name: also
    match: {}
    drop: true
`);
    const r = await runAgent(["validate", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stderr.split("\n")).toEqual([
      `${file}: warning: routes.2 ("shadowed"): never reached: routes.1 ("rest") before it has no match and takes every event`,
      `${file}: warning: routes.3 ("also"): never reached: routes.1 ("rest") before it has no match and takes every event`,
      `${file}: valid (2 collector(s) enabled: kernel, synthetic/a)`,
      "",
    ]);
  });

  test("no routes, [] or a well-formed table (the last rule without match, or with an empty one): no warning", async () => {
    for (const routes of ["", "routes: []\n", "routes:\n  - name: all\n    match: {}\n    to: default\n", "routes:\n  - name: problems\n    match: { collector: kernel, severity_at_least: error }\n    to: default\n  - name: rest\n    to: default\n"]) {
      const file = writeConfig(`${COLLECTORS}${routes}`);
      const r = await runAgent(["validate", "--config", file]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe(`${file}: valid (2 collector(s) enabled: kernel, synthetic/a)\n`);
    }
  });

  test("an invalid rule: located errors, exit 2", async () => {
    const file = writeConfig(`${COLLECTORS}routes:\n  - name: a\n    match: { severity_at_least: loud }\n    to: centrl\n`);
    const r = await runAgent(["validate", "--config", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:7:33 routes.0.match.severity_at_least: expected one of debug, info, low, medium, warning, high, error, critical, got "loud"`);
    expect(r.stderr).toContain(`${file}:8:9 routes.0.to: unknown destination "centrl" (known destinations: default)`);
  });

  test("with no collectors configured, a collector glob says so", () => {
    expect(routeWarnings({ collectors: {}, routes: [{ name: "k", match: { collector: ["kernel"] }, to: ["default"] }, { name: "rest", to: ["default"] }] })).toEqual([
      'routes.0 ("k"): match.collector.0 "kernel" matches none of the configured collectors (none)',
    ]);
  });
});
