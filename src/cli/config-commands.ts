// validate and print-config: load the config exactly as `run` would.
import { ConfigError } from "../config/errors.ts";
import { loadConfigFile, loadConfigText, readConfigStream } from "../config/load.ts";
import { printConfig } from "../config/print.ts";
import { redactText } from "../config/redact.ts";
import { builtinRegistry } from "../collectors/index.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import type { Config } from "../config/schema.ts";
import { routeWarnings } from "../routing/warnings.ts";
import { EXIT, HELP, UsageError, configPath, parseCommandLine, parseFlags } from "./usage.ts";

/** The operand that means standard input, and how messages name it. */
const STDIN = "-";
export const STDIN_NAME = "<stdin>";

/** Every file is checked and reported, valid or not; exit 2 when any is invalid. */
export async function validateCommand(args: string[]): Promise<number> {
  const { flags, operands } = parseCommandLine("validate", args);
  if (flags.help) {
    process.stdout.write(`${HELP.validate}\n`);
    return EXIT.ok;
  }
  const files = flags.config === undefined ? operands : [flags.config, ...operands];
  if (files.length === 0) files.push(configPath(undefined));
  if (files.filter((file) => file === STDIN).length > 1) throw new UsageError("validate: - (standard input) can be read once");
  const registry = builtinRegistry();
  let invalid = 0;
  for (const file of files) {
    const name = file === STDIN ? STDIN_NAME : file;
    try {
      reportValid(name, await loadForValidate(file, name, registry));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // redactText: as main does for a ConfigError, in case a message quotes a URL with credentials
      process.stderr.write(`${redactText(err.format())}\n`);
      invalid++;
    }
  }
  return invalid === 0 ? EXIT.ok : EXIT.usage;
}

function loadForValidate(file: string, name: string, registry: CollectorRegistry): Promise<Config> {
  if (file !== STDIN) return loadConfigFile(file, registry);
  return readConfigStream(process.stdin, name).then((text) => loadConfigText(text, name, registry));
}

function reportValid(name: string, config: Config): void {
  // Warnings go where problems go (stderr), before the verdict; they leave the exit code alone.
  for (const warning of routeWarnings(config)) process.stderr.write(`${name}: warning: ${warning}\n`);
  const enabled = Object.entries(config.collectors).filter(([, c]) => c.enabled).map(([n]) => n);
  process.stderr.write(`${name}: valid (${enabled.length} collector(s) enabled${enabled.length ? `: ${enabled.join(", ")}` : ""})\n`);
}

export async function printConfigCommand(args: string[]): Promise<number> {
  const flags = parseFlags("print-config", args);
  if (flags.help) {
    process.stdout.write(`${HELP["print-config"]}\n`);
    return EXIT.ok;
  }
  const config = await loadConfigFile(configPath(flags.config), builtinRegistry());
  process.stdout.write(printConfig(config));
  return EXIT.ok;
}
