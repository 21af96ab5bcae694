// validate and print-config: load the config exactly as `run` would.
import { loadConfigFile } from "../config/load.ts";
import { printConfig } from "../config/print.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { CONFIG_FLAG, HELP, configPath, parseFlags } from "./usage.ts";

export async function validateCommand(args: string[]): Promise<number> {
  const flags = parseFlags("validate", args, CONFIG_FLAG);
  if (flags.help) {
    process.stdout.write(`${HELP.validate}\n`);
    return 0;
  }
  const file = configPath(flags.config);
  const config = await loadConfigFile(file, builtinRegistry());
  const enabled = Object.entries(config.collectors).filter(([, c]) => c.enabled).map(([n]) => n);
  process.stderr.write(`${file}: valid (${enabled.length} collector(s) enabled${enabled.length ? `: ${enabled.join(", ")}` : ""})\n`);
  return 0;
}

export async function printConfigCommand(args: string[]): Promise<number> {
  const flags = parseFlags("print-config", args, CONFIG_FLAG);
  if (flags.help) {
    process.stdout.write(`${HELP["print-config"]}\n`);
    return 0;
  }
  const config = await loadConfigFile(configPath(flags.config), builtinRegistry());
  process.stdout.write(printConfig(config));
  return 0;
}
