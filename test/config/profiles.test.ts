import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { Duration } from "../../src/config/duration.ts";
import { loadConfigText } from "../../src/config/load.ts";
import { printConfig } from "../../src/config/print.ts";
import { applyProfile, mediumValues, PROFILE_NAMES, PROFILE_TABLE, profileDocument, type ProfileName } from "../../src/config/profiles.ts";
import type { Config } from "../../src/config/schema.ts";
import { issuesOf } from "./helpers.ts";

const MiB = 1024 * 1024;

function load(yaml: string, env: Record<string, string | undefined> = {}): Config {
  return loadConfigText(yaml, "test.yaml", builtinRegistry(), env);
}

function errors(yaml: string, env: Record<string, string | undefined> = {}): string[] {
  return issuesOf(() => load(yaml, env));
}

function withoutProfile(config: Config): Omit<Config, "profile"> {
  const { profile: _, ...rest } = config;
  return rest;
}

/** Every collector a profile configures, present with nothing but what it requires. */
const ALL_PROFILED_COLLECTORS = [
  "collectors:",
  "  kubelet:",
  "  memory:",
  "  kernel:",
  "  process:",
  "  network:",
  "  dns:",
  "    config: {names: [kubernetes.default.svc.cluster.local]}",
  "",
].join("\n");

type ProfileKey = keyof typeof PROFILE_TABLE;

/** medium's value of `path` as the README's table writes it: durations and (where low is a size) sizes in their notation. */
function mediumText(path: ProfileKey): string {
  const value = mediumValues(builtinRegistry())[path];
  const low = PROFILE_TABLE[path].low;
  if (typeof value === "number" && typeof low === "string" && low.endsWith("B")) {
    const unit = ([["GiB", 1024 * MiB], ["MiB", MiB], ["KiB", 1024]] as const).find(([, size]) => value % size === 0);
    return unit ? `${value / unit[1]}${unit[0]}` : String(value);
  }
  return String(value);
}

function at(config: Config, path: string): unknown {
  return path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);
}

function collectorConfig(config: Config, name: string): Record<string, unknown> {
  const section = config.collectors[name];
  if (!section) throw new Error(`collector ${name} is absent`);
  return section.config as Record<string, unknown>;
}

describe("profile with an otherwise empty file", () => {
  const expected: Record<ProfileName, { workers: number; batch_size: number; max_events: number; max_bytes: number; spool: number }> = {
    low: { workers: 2, batch_size: 256, max_events: 2000, max_bytes: 16 * MiB, spool: 256 * MiB },
    medium: { workers: 4, batch_size: 512, max_events: 10_000, max_bytes: 64 * MiB, spool: 1024 * MiB },
    high: { workers: 8, batch_size: 1024, max_events: 50_000, max_bytes: 256 * MiB, spool: 4096 * MiB },
  };
  for (const name of PROFILE_NAMES) {
    test(`${name} sets workers, batches, the queue and the spool`, () => {
      const config = load(`profile: ${name}\n`);
      const want = expected[name];
      expect(config.profile).toBe(name);
      expect(config.orchestrator.workers).toBe(want.workers);
      expect(config.orchestrator.batch_size).toBe(want.batch_size);
      expect(config.orchestrator.buffer).toEqual({ type: "memory", max_events: want.max_events, max_bytes: want.max_bytes, when_full: "block" });
      expect(config.spool.max_bytes).toBe(want.spool);
      // A profile enables nothing.
      expect(config.collectors).toEqual({});
    });
  }

  test("no profile: no profile key, today's defaults", () => {
    const config = load("orchestrator:\n");
    expect(config).not.toHaveProperty("profile");
    expect(config.orchestrator.workers).toBe(4);
  });

  test("an empty section is filled like a missing one", () => {
    const config = load("profile: high\norchestrator:\nspool: ~\ncollectors:\n");
    expect(config.orchestrator.workers).toBe(8);
    expect(config.spool.max_bytes).toBe(4096 * MiB);
    expect(config.collectors).toEqual({});
  });
});

describe("collectors", () => {
  test("keys are filled for the collectors the file names; the others stay absent", () => {
    const config = load(
      ["profile: low", "collectors:", "  kubelet:", "  memory: {enabled: false}", "  dns:", "    config: {names: [a.example.]}", ""].join("\n"),
    );
    expect(Object.keys(config.collectors).sort()).toEqual(["dns", "kubelet", "memory"]);
    const kubelet = collectorConfig(config, "kubelet");
    expect(kubelet.pods_interval).toEqual(new Duration(30_000));
    expect(kubelet.stats_interval).toEqual(new Duration(60_000));
    expect(kubelet.crash_loop_restarts).toBe(5);
    expect(kubelet.node_cpu_percent).toBe(95);
    // A profile does not touch keys it has no value for.
    expect(kubelet.address).toBe("https://127.0.0.1:10250");
    // enabled: false stays; its config is filled all the same.
    expect(config.collectors.memory?.enabled).toBe(false);
    const memory = collectorConfig(config, "memory");
    expect(memory.interval).toEqual(new Duration(30_000));
    expect(memory.psi).toEqual({ memory: { some_avg10: 20, full_avg10: 10 }, cpu: { some_avg10: 90, full_avg10: 0 }, io: { some_avg10: 60, full_avg10: 30 } });
    expect(memory.memory_available).toEqual({ percent: 5, bytes: 50 * MiB });
    const dns = collectorConfig(config, "dns");
    expect(dns.names).toEqual(["a.example."]);
    expect(dns.interval).toEqual(new Duration(60_000));
    expect(dns.latency_high).toEqual(new Duration(2000));
  });

  test("a collector enabled by the environment is filled; one the file leaves out is not", () => {
    const config = load("profile: high\ncollectors:\n  kernel:\n    enabled: ${KERNEL:-false}\n", { KERNEL: "true" });
    expect(Object.keys(config.collectors)).toEqual(["kernel"]);
    expect(collectorConfig(config, "kernel").vmstat_interval).toEqual(new Duration(5000));
    expect(collectorConfig(config, "kernel").read_interval).toEqual(new Duration(500));
  });

  for (const name of PROFILE_NAMES) {
    test(`${name} gives the same config as writing its values in the file`, () => {
      const explicit = profileDocument(name, builtinRegistry());
      const collectors = explicit.collectors as Record<string, { config: Record<string, unknown> }>;
      collectors.dns!.config.names = ["kubernetes.default.svc.cluster.local"];
      const written = load(stringify(explicit));
      const profiled = load(`profile: ${name}\n${ALL_PROFILED_COLLECTORS}`);
      expect(profiled.profile).toBe(name);
      expect(withoutProfile(profiled)).toEqual(written);
    });
  }
});

describe("medium is today's defaults", () => {
  test("with an otherwise empty file", () => {
    expect(withoutProfile(load("profile: medium\n"))).toEqual(load("orchestrator:\n"));
  });

  test("with every collector a profile configures", () => {
    expect(withoutProfile(load(`profile: medium\n${ALL_PROFILED_COLLECTORS}`))).toEqual(load(ALL_PROFILED_COLLECTORS));
  });

  test("medium's values are the schemas' defaults", () => {
    const defaults = load(ALL_PROFILED_COLLECTORS);
    const medium = mediumValues(builtinRegistry());
    for (const path of Object.keys(PROFILE_TABLE) as ProfileKey[]) {
      expect([path, medium[path]]).toEqual([path, at(defaults, path)]);
      expect(medium[path]).toBeDefined();
    }
  });

  test("the other profiles do change every key they set", () => {
    const medium = load(`profile: medium\n${ALL_PROFILED_COLLECTORS}`);
    const low = load(`profile: low\n${ALL_PROFILED_COLLECTORS}`);
    const high = load(`profile: high\n${ALL_PROFILED_COLLECTORS}`);
    for (const [path, row] of Object.entries(PROFILE_TABLE) as Array<[ProfileKey, (typeof PROFILE_TABLE)[ProfileKey]]>) {
      expect(at(medium, path)).toBeDefined();
      if (String(row.low) !== mediumText(path)) expect([path, at(low, path)]).not.toEqual([path, at(medium, path)]);
      if (String(row.high) !== mediumText(path)) expect([path, at(high, path)]).not.toEqual([path, at(medium, path)]);
    }
  });
});

describe("explicit keys win", () => {
  test("keys in the file override the profile; the rest comes from it", () => {
    const config = load(
      [
        "profile: high",
        "orchestrator:",
        "  workers: 3",
        "  buffer: {max_bytes: 1MiB}",
        "spool: {max_bytes: 100MiB}",
        "collectors:",
        "  kubelet:",
        "    config: {pods_interval: 1m}",
        "",
      ].join("\n"),
    );
    expect(config.orchestrator.workers).toBe(3);
    expect(config.orchestrator.batch_size).toBe(1024);
    expect(config.orchestrator.buffer.max_bytes).toBe(MiB);
    expect(config.orchestrator.buffer.max_events).toBe(50_000);
    expect(config.spool.max_bytes).toBe(100 * MiB);
    expect(collectorConfig(config, "kubelet").pods_interval).toEqual(new Duration(60_000));
    expect(collectorConfig(config, "kubelet").stats_interval).toEqual(new Duration(15_000));
  });

  test("a value in the file equal to the default still wins over the profile", () => {
    expect(load("profile: low\norchestrator: {workers: 4}\n").orchestrator.workers).toBe(4);
  });

  test("the short forms buffer_size and buffer_bytes win over the profile's long forms, without a conflict", () => {
    const both = load("profile: high\norchestrator:\n  buffer_size: 1234\n  buffer_bytes: 2MiB\n");
    expect(both.orchestrator.buffer).toEqual({ type: "memory", max_events: 1234, max_bytes: 2 * MiB, when_full: "block" });
    const one = load("profile: low\norchestrator:\n  buffer_size: 1234\n");
    expect(one.orchestrator.buffer.max_events).toBe(1234);
    expect(one.orchestrator.buffer.max_bytes).toBe(16 * MiB);
    const other = load("profile: high\norchestrator:\n  buffer_bytes: 8MiB\n");
    expect(other.orchestrator.buffer.max_events).toBe(50_000);
    expect(other.orchestrator.buffer.max_bytes).toBe(8 * MiB);
  });

  test("the deploy ConfigMap's style (short forms from the environment) loads under every profile", () => {
    for (const name of PROFILE_NAMES) {
      const config = load(`profile: ${name}\norchestrator:\n  workers: 4\n  buffer_size: \${BS:-10000}\n  buffer_bytes: \${BB}\n`, { BB: "64MiB" });
      expect(config.orchestrator.buffer.max_events).toBe(10_000);
      expect(config.orchestrator.buffer.max_bytes).toBe(64 * MiB);
    }
  });

  test("setting both forms yourself is still an error, at your key", () => {
    expect(errors("profile: high\norchestrator:\n  buffer_size: 5\n  buffer: {max_events: 6}\n")).toEqual([
      "test.yaml:3:3 orchestrator.buffer_size: buffer_size is the short form of buffer.max_events; set only one",
    ]);
  });

  test("values from the environment count as set", () => {
    expect(load("profile: high\norchestrator:\n  workers: ${W:-3}\n").orchestrator.workers).toBe(3);
    expect(load("profile: high\norchestrator:\n  workers: ${W}\n", { W: "5" }).orchestrator.workers).toBe(5);
    const kubelet = load("profile: low\ncollectors:\n  kubelet:\n    config:\n      pods_interval: ${PODS}\n", { PODS: "7s" });
    expect(collectorConfig(kubelet, "kubelet").pods_interval).toEqual(new Duration(7000));
    expect(load("profile: low\norchestrator:\n  buffer_size: ${BS}\n", { BS: "77" }).orchestrator.buffer.max_events).toBe(77);
  });

  test("a key that expanded to nothing is not set: the profile's value applies, as a default would", () => {
    expect(load("profile: high\norchestrator:\n  workers: ${W}\n").orchestrator.workers).toBe(8);
    const config = load("profile: high\norchestrator:\n  buffer_size: ${BS}\n");
    expect(config.orchestrator.buffer.max_events).toBe(50_000);
  });

  test("the profile itself may come from the environment", () => {
    expect(load("profile: ${TAPIO_PROFILE:-low}\n").orchestrator.workers).toBe(2);
    expect(load("profile: ${TAPIO_PROFILE:-low}\n", { TAPIO_PROFILE: "high" }).orchestrator.workers).toBe(8);
    const unset = load("profile: ${TAPIO_PROFILE}\n");
    expect(unset).not.toHaveProperty("profile");
    expect(unset.orchestrator.workers).toBe(4);
  });
});

describe("errors", () => {
  test("an unknown profile is located, with a suggestion", () => {
    expect(errors("profile: hihg\n")).toEqual(['test.yaml:1:10 profile: expected one of low, medium, high, got "hihg" (did you mean "high"?)']);
    expect(errors("orchestrator: {}\nprofile: meduim\n")).toEqual([
      'test.yaml:2:10 profile: expected one of low, medium, high, got "meduim" (did you mean "medium"?)',
    ]);
    expect(errors("profile: turbo\n")).toEqual(['test.yaml:1:10 profile: expected one of low, medium, high, got "turbo"']);
    expect(errors("profile: 3\n")).toEqual(["test.yaml:1:10 profile: expected one of low, medium, high, got 3"]);
    expect(errors("profile:\n")).toEqual(["test.yaml:1:9 profile: expected one of low, medium, high, got null"]);
    expect(errors("profile: ${P}\n", { P: "hihg" })).toEqual(['test.yaml:1:10 profile: expected one of low, medium, high, got "hihg" (did you mean "high"?)']);
  });

  test("a misspelled top-level key suggests profile", () => {
    expect(errors("profil: high\n")).toEqual(['test.yaml:1:1 profil: unknown key "profil" (did you mean "profile"?)']);
  });

  test("a bad profile is reported with the file's other errors", () => {
    expect(errors("profile: hihg\norchestrator:\n  workers: abc\n")).toEqual([
      'test.yaml:1:10 profile: expected one of low, medium, high, got "hihg" (did you mean "high"?)',
      'test.yaml:3:12 orchestrator.workers: expected an integer from 1 to 64, got "abc"',
    ]);
  });

  test("errors under a profile point at the file's lines", () => {
    const yaml = [
      "profile: low",
      "orchestrator:",
      "  workers: 100",
      "  wokers: 2",
      "collectors:",
      "  kubelet:",
      "    config:",
      "      pods_interval: soon",
      "  dns:",
      "  memory:",
      "    config: [1]",
      "",
    ].join("\n");
    expect(errors(yaml)).toEqual([
      "test.yaml:3:12 orchestrator.workers: expected an integer from 1 to 64, got 100",
      'test.yaml:4:3 orchestrator.wokers: unknown key "wokers" (did you mean "workers"?)',
      'test.yaml:8:22 collectors.kubelet.config.pods_interval: expected a duration above 0 like 250ms, 30s, 5m or 1h, got "soon"',
      'test.yaml:9:3 collectors.dns.config.names: missing required key "names"',
      "test.yaml:11:13 collectors.memory.config: expected a mapping, got a list",
    ]);
    // The same errors as without the profile.
    expect(errors(yaml.replace("profile: low\n", "\n"))).toEqual(errors(yaml));
  });

  test("a section that is not a mapping stays the file's error", () => {
    expect(errors("profile: high\norchestrator: [1]\n")).toEqual(["test.yaml:2:15 orchestrator: expected a mapping, got a list"]);
  });

  test("a failed expansion is reported once, not hidden by the profile", () => {
    expect(errors("profile: high\norchestrator:\n  workers: ${W:?set W}\n")).toEqual(["test.yaml:3:12 orchestrator.workers: environment variable W is not set: set W"]);
  });
});

describe("print-config", () => {
  const printed = printConfig(load(`profile: high\norchestrator: {workers: 6}\n${ALL_PROFILED_COLLECTORS}`));
  const shown = parse(printed);

  test("shows the profile and the values it set", () => {
    expect(shown.profile).toBe("high");
    expect(printed).toContain("profile: high\n");
    expect(shown.orchestrator.workers).toBe(6);
    expect(shown.orchestrator.batch_size).toBe(1024);
    expect(shown.orchestrator.buffer.max_events).toBe(50_000);
    expect(shown.orchestrator.buffer.max_bytes).toBe(256 * MiB);
    expect(shown.spool.max_bytes).toBe(4096 * MiB);
    expect(shown.collectors.kubelet.config.pods_interval).toBe("5s");
    expect(shown.collectors.kubelet.config.stats_interval).toBe("15s");
    expect(shown.collectors.memory.config.interval).toBe("5s");
    expect(shown.collectors.process.config.interval).toBe("2s");
    expect(shown.collectors.process.config.max_events_per_poll).toBe(2000);
    expect(shown.collectors.network.config.interval).toBe("10s");
    expect(shown.collectors.dns.config.interval).toBe("10s");
    expect(shown.collectors.kernel.config.read_interval).toBe("500ms");
  });

  test("the printed config loads back to the same config", () => {
    const reloaded = load(printed.replace(/^#.*\n/, ""));
    expect(reloaded).toEqual(load(`profile: high\norchestrator: {workers: 6}\n${ALL_PROFILED_COLLECTORS}`));
  });
});

describe("applyProfile", () => {
  test("does not change the document it is given", () => {
    const document = { profile: "high", orchestrator: { workers: 3 }, collectors: { kubelet: null } };
    const before = structuredClone(document);
    const filled = applyProfile(document);
    expect(document).toEqual(before);
    expect(filled).not.toBe(document);
    expect((filled.orchestrator as Record<string, unknown>).workers).toBe(3);
  });

  test("returns the document itself without a valid profile", () => {
    const document = { profile: "hihg", orchestrator: {} };
    expect(applyProfile(document)).toBe(document);
    const none = { orchestrator: {} };
    expect(applyProfile(none)).toBe(none);
  });

  test("keeps a written __proto__ key a key", () => {
    const orchestrator = {};
    Object.defineProperty(orchestrator, "__proto__", { value: 1, enumerable: true, writable: true, configurable: true });
    const filled = applyProfile({ profile: "low", orchestrator }).orchestrator as Record<string, unknown>;
    expect(Object.hasOwn(filled, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(filled)).toBe(Object.prototype);
  });
});

describe("README", () => {
  test("the Profiles table matches the profile table", () => {
    const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Profiles"), readme.indexOf("### `nats`"));
    const rows = [...section.matchAll(/^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [m[1], m[2]!.trim(), m[3]!.trim(), m[4]!.trim()]);
    const expected = (Object.entries(PROFILE_TABLE) as Array<[ProfileKey, (typeof PROFILE_TABLE)[ProfileKey]]>).map(([path, row]) => [
      path.replace(/^collectors\.([^.]+)\.config\./, "$1."),
      String(row.low),
      mediumText(path),
      String(row.high),
    ]);
    expect(rows).toEqual(expected);
  });
});
