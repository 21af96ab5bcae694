// Builds a validated Config from YAML text, exactly as the agent loads one.
import { loadConfigText } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import type { CollectorRegistry } from "../../src/orchestrator/registry.ts";

export function configFrom(yaml: string, registry: CollectorRegistry = builtinRegistry(), env: Record<string, string | undefined> = {}): Config {
  return loadConfigText(yaml, "test.yaml", registry, env);
}
