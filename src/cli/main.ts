// Dispatches the command line to a command; maps errors to exit codes.
import { ConfigError } from "../config/errors.ts";
import { redactText } from "../config/redact.ts";
import { EXIT, HELP, UsageError, type Command } from "./usage.ts";
import { runCommand } from "./run.ts";
import { runIsImplied } from "./implied-run.ts";
import { printConfigCommand, validateCommand } from "./config-commands.ts";
import { versionCommand } from "./version.ts";
import { statusCommand } from "./status.ts";
import { tailCommand } from "./tail.ts";
import { topCommand } from "./top.ts";
import { checkCommand } from "./check.ts";
import { emitCommand } from "./emit.ts";
import { schemaCommand } from "./schema.ts";
import { completionCommand } from "./completion.ts";


// Record<Command, ...>: every command of usage.ts's table has its function here.
const COMMANDS: Record<Command, (args: string[]) => Promise<number>> = {
  run: runCommand,
  validate: validateCommand,
  "print-config": printConfigCommand,
  check: checkCommand,
  version: versionCommand,
  completion: completionCommand,
  status: statusCommand,
  tail: tailCommand,
  top: topCommand,
  emit: emitCommand,
  schema: schemaCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === "help" || first === "--help" || first === "-h") {
      const topic = rest[0];
      process.stdout.write(`${(topic && HELP[topic]) || HELP.main}\n`);
      return EXIT.ok;
    }
    if (first === "--version") return await versionCommand([]);
    // No command, or a flag first: `run` is the default.
    if (runIsImplied(first)) return await runCommand(argv);
    const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first as Command] : undefined;
    if (!command) throw new UsageError(`unknown command "${first}"\n\n${HELP.main}`);
    return await command(rest);
  } catch (err) {
    // redactText: an error may quote a URL or a secret read by then
    const write = (text: string) => process.stderr.write(redactText(text));
    if (err instanceof UsageError) {
      write(`tapio-collectors: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      write(`${err.format()}\n`);
      return EXIT.usage;
    }
    const message = err instanceof Error ? err.message : String(err);
    write(`tapio-collectors: ${message}\n`);
    if (process.env.TAPIO_DEBUG) write(`${(err as Error).stack}\n`);
    return EXIT.failure;
  }
}
