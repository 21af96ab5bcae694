// Help texts and argument parsing shared by the commands.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how the command was called: exit 2, message without a stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const DEFAULT_CONFIG = "configs/collectors.yaml";

/** 0 ok, 1 runtime failure (including undelivered events), 2 usage or config error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export const HELP: Record<string, string> = {
  main: `tapio-collectors: a per-node Kubernetes event agent that publishes to NATS / JetStream

Usage:
  tapio-collectors [run] [--config FILE] [flags]   run the agent (the default command)
  tapio-collectors validate --config FILE          check a config file; exit 0 valid, 2 invalid
  tapio-collectors print-config --config FILE      print the effective config (defaults, env expanded, secrets ***)
  tapio-collectors version                         print the agent and Bun versions
  tapio-collectors COMMAND --help                  help for one command

The config file defaults to $TAPIO_CONFIG, else ${DEFAULT_CONFIG}.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.`,
  run: `Usage: tapio-collectors [run] [--config FILE] [flags]

Runs the collectors and publishes their events until SIGTERM or SIGINT, then
stops the collectors and drains the queue within orchestrator.shutdown_timeout.

Flags:
  -c, --config FILE       the YAML config (default $TAPIO_CONFIG, else ${DEFAULT_CONFIG})
      --log-level LEVEL   trace|debug|info|warn|error|fatal (overrides orchestrator.log_level)
      --log-format FMT    json (default) or pretty
      --dry-run           write events as NDJSON lines to stdout instead of publishing; logs go to stderr
      --once              each collector does one round, then drain everything and exit
                          (exit 0 only when every accepted event was delivered)
  -h, --help              this help`,
  validate: `Usage: tapio-collectors validate [--config FILE]

Loads, expands and validates the config. Prints every problem as
file:line:column path: message on stderr. Exit 0 valid, 2 invalid.`,
  "print-config": `Usage: tapio-collectors print-config [--config FILE]

Prints the effective config as YAML: defaults filled, environment variables
expanded, secrets shown as ***. Exit 2 when the config is invalid.`,
  version: `Usage: tapio-collectors version

Prints the agent version, the Bun version and the platform.`,
};

/** Parses flags for one command; unknown flags and stray arguments are usage errors. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}\n\n${HELP[command] ?? HELP.main}`);
  }
}

export const CONFIG_FLAG = { config: { type: "string", short: "c" } } as const;

export function configPath(value: string | undefined): string {
  return value ?? process.env.TAPIO_CONFIG ?? DEFAULT_CONFIG;
}
