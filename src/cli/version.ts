import pkg from "../../package.json" with { type: "json" };
import { EXIT, HELP, parseFlags } from "./usage.ts";

export const AGENT_VERSION: string = pkg.version;

export async function versionCommand(args: string[]): Promise<number> {
  if (parseFlags("version", args).help) {
    process.stdout.write(`${HELP.version}\n`);
    return EXIT.ok;
  }
  process.stdout.write(`tapio-collectors ${AGENT_VERSION} (bun ${Bun.version}, ${process.platform}/${process.arch})\n`);
  return EXIT.ok;
}
