// A registry with fake collectors and shortcuts for the config tests.
import * as v from "valibot";
import { ConfigError } from "../../src/config/errors.ts";
import { duration, integer, nonEmptyString, number, strictObject, stringOrList } from "../../src/config/kit.ts";
import { loadConfigText } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { CollectorRegistry } from "../../src/orchestrator/registry.ts";

const idle = () => ({ run: async () => {} });

export function testRegistry(): CollectorRegistry {
  return new CollectorRegistry()
    .register({
      type: "synthetic",
      description: "test events",
      configSchema: v.optional(
        strictObject({
          rate: v.optional(number(0, 1000), 10),
          burst: v.optional(integer(1, 100), 1),
          interval: v.optional(duration(), "1s"),
          type: v.optional(nonEmptyString(), "synthetic.event"),
        }),
        {},
      ),
      create: idle,
    })
    .register({
      type: "files",
      description: "a collector with a required key",
      configSchema: strictObject({ paths: stringOrList(), api_token: v.optional(nonEmptyString()) }),
      create: idle,
    });
}

export function load(yaml: string, env: Record<string, string | undefined> = {}): Config {
  return loadConfigText(yaml, "test.yaml", testRegistry(), env);
}

/** The formatted issues of a config that must fail. */
export function errors(yaml: string, env: Record<string, string | undefined> = {}): string[] {
  return issuesOf(() => load(yaml, env));
}

/** The formatted issues of a load that must fail with a ConfigError. */
export function issuesOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.format().split("\n");
    throw err;
  }
  throw new Error("the config was accepted");
}
