// validate and print-config: load the config exactly as `run` would.
import { loadConfigFile } from "../config/load.ts";
import { printConfig } from "../config/print.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { routeWarnings } from "../routing/warnings.ts";
import { EXIT, HELP, configPath, parseFlags } from "./usage.ts";

export async function validateCommand(args: string[]): Promise<number> {
  const flags = parseFlags("validate", args);
  if (flags.help) {
    process.stdout.write(`${HELP.validate}\n`);
    return EXIT.ok;
  }
  const file = configPath(flags.config);
  const config = await loadConfigFile(file, builtinRegistry());
  // Warnings go where problems go (stderr), before the verdict; they leave the exit code alone.
  for (const warning of routeWarnings(config)) process.stderr.write(`${file}: warning: ${warning}\n`);
  const enabled = Object.entries(config.collectors).filter(([, c]) => c.enabled).map(([n]) => n);
  process.stderr.write(`${file}: valid (${enabled.length} collector(s) enabled${enabled.length ? `: ${enabled.join(", ")}` : ""})\n`);
  return EXIT.ok;
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
