// The effective config, as `print-config` shows it: defaults filled, the
// environment expanded, durations in their notation, secrets hidden.
import { stringify } from "yaml";
import { Duration } from "./duration.ts";
import { redactSecrets } from "./redact.ts";
import type { Config } from "./schema.ts";

export function printConfig(config: Config): string {
  const shown = stringify(redactSecrets(config), (_key, value: unknown) => (value instanceof Duration ? value.toString() : value));
  return `# effective configuration: defaults filled, environment expanded, secrets hidden\n${shown}`;
}
