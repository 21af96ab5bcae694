// `routes:` in the config: what loads, and every mistake reported at its
// place (file:line:column and path), all at once.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { fallbackMessage, strictObject } from "../../src/config/kit.ts";
import { destinationNames, routeDestinationsCheck, routesSchema } from "../../src/routing/schema.ts";
import { errors, load } from "../config/helpers.ts";

describe("routes: what loads", () => {
  test("absent, empty or [] is no routing", () => {
    expect(load("nats: {}\n").routes).toBeUndefined();
    expect(load("routes:\n").routes).toBeUndefined();
    expect(load("routes: []\n").routes).toEqual([]);
  });

  test("one item or a list, read as a list; drop: true; a rule without match", () => {
    const routes = load(`
routes:
  - name: drop-debug
    match: { severity_below: info }
    drop: true
  - name: problems
    match:
      collector: [kernel, "dns/*"]
      type: kernel.*
      severity_at_least: warning
    to: default
  - name: rest
    to: [default]
`).routes;
    expect(routes).toEqual([
      { name: "drop-debug", match: { severity_below: "info" }, drop: true },
      { name: "problems", match: { collector: ["kernel", "dns/*"], type: ["kernel.*"], severity_at_least: "warning" }, to: ["default"] },
      { name: "rest", to: ["default"] },
    ]);
  });
});

describe("routes: each mistake located", () => {
  test("a severity outside the list", () => {
    expect(errors("routes:\n  - name: a\n    to: default\n  - name: b\n    match: { severity_at_least: loud }\n    to: [default]\n")).toEqual([
      'test.yaml:5:33 routes.1.match.severity_at_least: expected one of debug, info, low, medium, warning, high, error, critical, got "loud"',
    ]);
    expect(errors("routes:\n  - name: a\n    match: { severity_below: 3 }\n    drop: true\n")).toEqual([
      "test.yaml:3:30 routes.0.match.severity_below: expected one of debug, info, low, medium, warning, high, error, critical, got 3",
    ]);
  });

  test("an empty severity range, at severity_below", () => {
    for (const [least, below] of [["warning", "info"], ["info", "info"]]) {
      expect(errors(`routes:\n  - name: a\n    match: { severity_at_least: ${least}, severity_below: ${below} }\n    to: default\n`)).toEqual([
        `test.yaml:3:${51 + least!.length} routes.0.match.severity_below: no severity is at least ${least} and below ${below}: severity_below must come after severity_at_least in debug, info, low, medium, warning, high, error, critical`,
      ]);
    }
    expect(errors("routes:\n  - name: a\n    match: { severity_below: debug }\n    to: default\n")).toEqual([
      "test.yaml:3:30 routes.0.match.severity_below: no severity is below debug, the lowest of debug, info, low, medium, warning, high, error, critical",
    ]);
    expect(load("routes:\n  - name: a\n    match: { severity_at_least: info, severity_below: low }\n    to: default\n").routes).toHaveLength(1);
    expect(load("routes:\n  - name: a\n    match: { severity_below: info }\n    to: default\n").routes).toHaveLength(1);
  });

  test("both to and drop, or neither", () => {
    expect(errors("routes:\n  - name: a\n    to: [default]\n    drop: true\n")).toEqual(["test.yaml:4:11 routes.0.drop: a rule has either to: [destinations] or drop: true, not both"]);
    expect(errors("routes:\n  - name: a\n    match: { type: x }\n")).toEqual(["test.yaml:2:5 routes.0: a rule needs either to: [destinations] or drop: true"]);
    expect(errors("routes:\n  - name: a\n    drop: false\n")).toEqual(["test.yaml:3:11 routes.0.drop: expected true (to send the events somewhere, write `to` instead), got false"]);
  });

  test("name: required, non-empty, unique", () => {
    expect(errors("routes:\n  - match: { type: x }\n    to: default\n")).toEqual(['test.yaml:2:5 routes.0.name: missing required key "name"']);
    expect(errors('routes:\n  - name: ""\n    to: default\n')).toEqual(['test.yaml:2:11 routes.0.name: expected a non-empty string, got ""']);
    expect(errors("routes:\n  - name: a\n    to: default\n  - name: b\n    drop: true\n  - name: a\n    drop: true\n")).toEqual([
      'test.yaml:6:11 routes.2.name: duplicate rule name "a" (also routes.0)',
    ]);
  });

  test("unknown keys with a suggestion; empty lists; not a list", () => {
    expect(errors("routes:\n  - name: a\n    match: { colector: x, type: [] }\n    to: default\n    dorp: true\n")).toEqual([
      'test.yaml:3:14 routes.0.match.colector: unknown key "colector" (did you mean "collector"?)',
      "test.yaml:3:33 routes.0.match.type: expected at least one event type or glob, got an empty list",
      'test.yaml:5:5 routes.0.dorp: unknown key "dorp" (did you mean "drop"?)',
    ]);
    expect(errors("routes:\n  - name: a\n    match: { collector: [] }\n    to: []\n")).toEqual([
      "test.yaml:3:25 routes.0.match.collector: expected at least one collector name or glob, got an empty list",
      "test.yaml:4:9 routes.0.to: expected at least one destination name, got an empty list",
    ]);
    expect(errors("routes: {a: 1}\n")).toEqual(["test.yaml:1:9 routes: expected a list of rules, got a mapping"]);
    expect(errors("routes:\n  - 5\n")).toEqual(["test.yaml:2:5 routes.0: expected a mapping, got 5"]);
    expect(errors("routes:\n  - name: a\n    match: [x]\n    to: default\n")).toEqual(["test.yaml:3:12 routes.0.match: expected a mapping, got a list"]);
  });

  test("an unknown destination, at its item, with a did-you-mean when one is close", () => {
    expect(errors("routes:\n  - name: a\n    to: [default, defualt, elsewhere]\n")).toEqual([
      'test.yaml:3:19 routes.0.to.1: unknown destination "defualt" (did you mean "default"?)',
      'test.yaml:3:28 routes.0.to.2: unknown destination "elsewhere" (known destinations: default)',
    ]);
    // one name written as a scalar: at the scalar
    expect(errors("routes:\n  - name: a\n    to: centrl\n")).toEqual(['test.yaml:3:9 routes.0.to: unknown destination "centrl" (known destinations: default)']);
  });

  test("every problem at once, in file order", () => {
    expect(errors("routes:\n  - name: a\n    to: nowhere\n  - name: a\n    match: { severity_at_least: loud }\n")).toEqual([
      'test.yaml:3:9 routes.0.to: unknown destination "nowhere" (known destinations: default)',
      "test.yaml:4:5 routes.1: a rule needs either to: [destinations] or drop: true",
      'test.yaml:4:11 routes.1.name: duplicate rule name "a" (also routes.0)',
      'test.yaml:5:33 routes.1.match.severity_at_least: expected one of debug, info, low, medium, warning, high, error, critical, got "loud"',
    ]);
  });
});

describe("to names and destinations", () => {
  // The check alone, on a schema of just these two keys (test/config/destinations.test.ts loads whole files).
  const schema = v.pipe(strictObject({ destinations: v.unknown(), routes: routesSchema }), routeDestinationsCheck());
  const problems = (input: unknown) => {
    const result = v.safeParse(schema, input, { abortEarly: false, message: fallbackMessage });
    return result.success ? [] : result.issues.map((i) => `${(i.path ?? []).map((p) => p.key).join(".")}: ${i.message}`);
  };

  test("default and the keys of destinations are known", () => {
    expect(destinationNames(undefined)).toEqual(["default"]);
    expect(destinationNames(["central"])).toEqual(["default"]);
    expect(destinationNames({ central: {}, regional: {}, default: {} })).toEqual(["default", "central", "regional"]);
    const routes = [{ name: "a", to: ["default", "central"] }, { name: "b", to: "regional" }];
    expect(problems({ destinations: { central: { url: "nats://c:4222" }, regional: {} }, routes })).toEqual([]);
  });

  test("an unknown one at routes.i.to.j, suggesting a destination", () => {
    const routes = [{ name: "a", to: "default" }, { name: "b", to: ["central", "centrl", "x"] }];
    expect(problems({ destinations: { central: {} }, routes })).toEqual([
      'routes.1.to.1: unknown destination "centrl" (did you mean "central"?)',
      'routes.1.to.2: unknown destination "x" (known destinations: default, central)',
    ]);
    expect(problems({ destinations: "central", routes: [{ name: "a", to: "central" }] })).toEqual(['routes.0.to.0: unknown destination "central" (known destinations: default)']);
  });
});
