// Collector instances in the config: `collectors:` keys are TYPE or
// TYPE/NAME, each validated by its type's schema, every bad key reported at
// the key with what is wrong, and every problem inside an instance's config
// located under the instance's own key.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { parse } from "yaml";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { Duration } from "../../src/config/duration.ts";
import { loadConfigText } from "../../src/config/load.ts";
import { printConfig } from "../../src/config/print.ts";
import { collectorSubject, eventSubject, NAME_PATTERN, routesOfSubject } from "../../src/orchestrator/instance.ts";
import { CollectorRegistry } from "../../src/orchestrator/registry.ts";
import { errors, issuesOf, load, testRegistry } from "./helpers.ts";

const SYNTHETIC_DEFAULTS = { rate: 10, burst: 1, interval: new Duration(1000), type: "synthetic.event" };

describe("valid instances", () => {
  test("a bare type and named instances of it, each with its own config and its type's defaults", () => {
    const config = load(
      ["collectors:", "  synthetic:", "  synthetic/a:", "    config: {rate: 5}", "  synthetic/b_2-x:", "    enabled: false", "    config: {burst: 3}", "  files/logs:", "    config: {paths: /var/log}", ""].join("\n"),
    );
    expect(config.collectors).toEqual({
      synthetic: { enabled: true, config: SYNTHETIC_DEFAULTS },
      "synthetic/a": { enabled: true, config: { ...SYNTHETIC_DEFAULTS, rate: 5 } },
      "synthetic/b_2-x": { enabled: false, config: { ...SYNTHETIC_DEFAULTS, burst: 3 } },
      "files/logs": { enabled: true, config: { paths: ["/var/log"] } },
    });
    // in type order, a bare type before its named instances (as bare types were ordered before): collectors start in this order
    expect(Object.keys(config.collectors)).toEqual(["files/logs", "synthetic", "synthetic/a", "synthetic/b_2-x"]);
    expect(Object.keys(load("collectors:\n  synthetic/b:\n  synthetic/a:\n  synthetic:\n  files:\n    config: {paths: x}\n").collectors)).toEqual(["files", "synthetic", "synthetic/a", "synthetic/b"]);
  });

  test("the built-in dns type twice, as in the README: dns/cluster and dns/external", () => {
    const config = loadConfigText(
      [
        "collectors:",
        "  dns/cluster:",
        "    config: {names: [kubernetes.default.svc.cluster.local.]}",
        "  dns/external:",
        "    config: {names: [example.com.], servers: [1.1.1.1, 8.8.8.8:53], interval: 1m}",
        "",
      ].join("\n"),
      "test.yaml",
      builtinRegistry(),
      {},
    );
    expect(config.collectors["dns/cluster"]?.config).toMatchObject({ names: ["kubernetes.default.svc.cluster.local."], servers: [] });
    expect(config.collectors["dns/external"]?.config).toMatchObject({ servers: ["1.1.1.1", "8.8.8.8:53"], interval: new Duration(60_000) });
  });
});

describe("errors, located at the instance", () => {
  test("a problem inside an instance's config names the instance key", () => {
    expect(errors("collectors:\n  synthetic/a:\n    config:\n      rate: -1\n      intervl: 1s\n")).toEqual([
      "test.yaml:4:13 collectors.synthetic/a.config.rate: expected a number from 0 to 1000, got -1",
      'test.yaml:5:7 collectors.synthetic/a.config.intervl: unknown key "intervl" (did you mean "interval"?)',
    ]);
    expect(errors("collectors:\n  files/x:\n    config:\n      paths: [ok, 1]\n")).toEqual(["test.yaml:4:19 collectors.files/x.config.paths.1: expected a non-empty string, got 1"]);
    expect(errors("collectors:\n  files/x:\n")).toEqual(['test.yaml:2:3 collectors.files/x.config.paths: missing required key "paths"']);
    expect(errors("collectors:\n  synthetic/a: {enabeld: true}\n")).toEqual(['test.yaml:2:17 collectors.synthetic/a.enabeld: unknown key "enabeld" (did you mean "enabled"?)']);
  });

  test("the same mistake in two instances is reported for each, at its own key", () => {
    expect(errors("collectors:\n  synthetic/a: {config: {rate: x}}\n  synthetic/b: {config: {rate: x}}\n")).toEqual([
      'test.yaml:2:32 collectors.synthetic/a.config.rate: expected a number from 0 to 1000, got "x"',
      'test.yaml:3:32 collectors.synthetic/b.config.rate: expected a number from 0 to 1000, got "x"',
    ]);
  });

  test("an unknown type: a bare key reads as before; in TYPE/NAME the type is named, with a suggestion or the known types", () => {
    expect(errors("collectors:\n  synthtic: {}\n")).toEqual(['test.yaml:2:3 collectors.synthtic: unknown collector "synthtic" (did you mean "synthetic"?)']);
    expect(errors("collectors:\n  synthtic/a:\n    config: {rate: -1}\n")).toEqual([
      'test.yaml:2:3 collectors.synthtic/a: unknown collector type "synthtic" (did you mean "synthetic"?)',
    ]);
    expect(errors("collectors:\n  kafka/orders: {}\n")).toEqual(['test.yaml:2:3 collectors.kafka/orders: unknown collector type "kafka" (known collector types: files, synthetic)']);
  });

  test("a name that is not [a-z0-9_-]+: empty, a second slash, upper case, a dot, a space, a wildcard", () => {
    const bad = (key: string) => errors(`collectors:\n  "${key}": {}\n`);
    expect(bad("synthetic/")).toEqual(['test.yaml:2:3 collectors.synthetic/: "synthetic/" has no name after "/": write TYPE or TYPE/NAME']);
    expect(bad("synthetic/a/b")).toEqual(['test.yaml:2:3 collectors.synthetic/a/b: "synthetic/a/b" has more than one "/": write TYPE or TYPE/NAME']);
    expect(bad("synthetic//")).toEqual(['test.yaml:2:3 collectors.synthetic//: "synthetic//" has more than one "/": write TYPE or TYPE/NAME']);
    for (const name of ["External", "a.b", "a b", "*", ">", "é"]) {
      expect(bad(`synthetic/${name}`)).toEqual([`test.yaml:2:3 collectors.synthetic/${name}: instance name "${name}" may hold only lowercase letters, digits, "_" and "-"`]);
    }
    // and a bad name does not hide the problems of the other keys
    expect(errors("collectors:\n  synthetic/A: {}\n  synthetic/b: {config: {rate: -1}}\n  nope/c: {}\n")).toEqual([
      'test.yaml:2:3 collectors.synthetic/A: instance name "A" may hold only lowercase letters, digits, "_" and "-"',
      "test.yaml:3:32 collectors.synthetic/b.config.rate: expected a number from 0 to 1000, got -1",
      'test.yaml:4:3 collectors.nope/c: unknown collector type "nope" (known collector types: files, synthetic)',
    ]);
  });

  test("a type whose bare instance publishes below its subject cannot have named instances too: they would share subjects", () => {
    const registry = testRegistry().register({
      type: "push",
      description: "publishes to <subject>.<sender>",
      configSchema: v.optional(v.any(), {}),
      publishesBelow: true,
      create: () => ({ run: async () => {} }),
    });
    const loaded = (yaml: string) => loadConfigText(yaml, "test.yaml", registry, {});
    expect(issuesOf(() => loaded("collectors:\n  push:\n  synthetic/x:\n  push/a:\n  push/b: {enabled: false}\n"))).toEqual([
      'test.yaml:4:3 collectors.push/a: its subject <nats.subject>.push.a is one of those "push" publishes to (<nats.subject>.push.>): name both instances, e.g. push/default and push/a',
      'test.yaml:5:3 collectors.push/b: its subject <nats.subject>.push.b is one of those "push" publishes to (<nats.subject>.push.>): name both instances, e.g. push/default and push/b',
    ]);
    // named only, or bare only: every subject is one instance's
    expect(Object.keys(loaded("collectors:\n  push/default:\n  push/a:\n").collectors)).toEqual(["push/a", "push/default"]);
    expect(Object.keys(loaded("collectors:\n  push:\n  synthetic:\n  synthetic/a:\n").collectors)).toEqual(["push", "synthetic", "synthetic/a"]);
  });
});

describe("subjects", () => {
  test("a bare type keeps its subject; a named instance gets <prefix>.<type>.<name>; the way back finds the key", () => {
    expect(collectorSubject("tapio.events", "dns")).toBe("tapio.events.dns");
    expect(collectorSubject("tapio.events", "dns/external")).toBe("tapio.events.dns.external");
    expect(routesOfSubject("tapio.events", "tapio.events.dns")).toEqual(["dns"]);
    // a named instance, or a bare type's events with a subject suffix: both readings give the subject
    expect(routesOfSubject("tapio.events", "tapio.events.dns.external")).toEqual(["dns.external", "dns/external"]);
    expect(routesOfSubject("tapio.events", "other.dns")).toEqual([]);
    expect(routesOfSubject("tapio.events", "tapio.events.ingest.x.app")).toEqual(["ingest.x.app", "ingest/x.app"]);
    expect(eventSubject("tapio.events", "ingest/x", "app")).toBe("tapio.events.ingest.x.app");
  });

  test("distinct valid keys never share a subject (types and names are single tokens without '/'), so a subject names one instance", () => {
    const token = ["a", "b", "ab", "a-b", "a_b", "0", "dns", "external"];
    const keys = [...token, ...token.flatMap((t) => token.map((n) => `${t}/${n}`))];
    const subjects = keys.map((k) => collectorSubject("p.q", k));
    expect(new Set(subjects).size).toBe(keys.length);
    for (const key of keys) expect(routesOfSubject("p.q", collectorSubject("p.q", key))).toContain(key);
    for (const subject of subjects) for (const t of subject.split(".")) expect(t).toMatch(/^[^\s.*>/]+$/);
  });

  test("the registry refuses a type that is not one such token, which is what keeps subjects distinct", () => {
    const create = () => ({ run: async () => {} });
    for (const type of ["a.b", "a/b", "Dns", "", "a b", "*"]) {
      expect(() => new CollectorRegistry().register({ type, description: "", configSchema: v.any(), create })).toThrow(`collector type "${type}" may hold only lowercase letters`);
    }
    for (const type of builtinRegistry().types()) expect(type).toMatch(NAME_PATTERN);
  });
});

describe("profiles and print-config", () => {
  test("a profile fills every instance of a type the file names, and the file still wins", () => {
    const config = loadConfigText(
      [
        "profile: low",
        "collectors:",
        "  dns/cluster:",
        "    config: {names: [a.example.]}",
        "  dns/external:",
        "    config: {names: [b.example.], interval: 5m}",
        "  process/containers:",
        "",
      ].join("\n"),
      "test.yaml",
      builtinRegistry(),
      {},
    );
    const cfg = (key: string) => config.collectors[key]!.config as Record<string, any>;
    expect(cfg("dns/cluster").interval).toEqual(new Duration(60_000));
    expect(cfg("dns/cluster").latency_high).toEqual(new Duration(2000));
    expect(cfg("dns/external").interval).toEqual(new Duration(300_000));
    expect(cfg("dns/external").latency_high).toEqual(new Duration(2000));
    expect(cfg("process/containers").interval).toEqual(new Duration(15_000));
    expect(Object.keys(config.collectors)).toEqual(["dns/cluster", "dns/external", "process/containers"]);
  });

  test("print-config shows each instance under its key, and an instance named like a secret is not hidden", () => {
    const printed = printConfig(load("collectors:\n  synthetic/secret-zone: {config: {rate: 3}}\n  synthetic/my_token:\n"));
    const shown = parse(printed.replace(/^#.*\n/, ""));
    expect(shown.collectors["synthetic/secret-zone"].config.rate).toBe(3);
    expect(shown.collectors["synthetic/my_token"].config.rate).toBe(10);
    expect(load(printed.replace(/^#.*\n/, "")).collectors).toEqual(load("collectors:\n  synthetic/secret-zone: {config: {rate: 3}}\n  synthetic/my_token:\n").collectors);
  });
});
