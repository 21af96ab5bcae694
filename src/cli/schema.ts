// `tapio-collectors schema`: the JSON Schema of the events the agent publishes (schema/collector-event.schema.json).
import { builtinRegistry } from "../collectors/index.ts";
import { collectorEventWireSchema } from "../event/wire.ts";
import { EXIT, HELP, parseFlags } from "./usage.ts";

/** The published schema file's text: what the command prints, and what the committed file must equal. */
export function collectorEventSchemaText(): string {
  return `${JSON.stringify(collectorEventWireSchema(builtinRegistry()).toJsonSchema(), null, 2)}\n`;
}

export async function schemaCommand(args: string[]): Promise<number> {
  if (parseFlags("schema", args).help) {
    process.stdout.write(`${HELP.schema}\n`);
    return EXIT.ok;
  }
  process.stdout.write(collectorEventSchemaText());
  return EXIT.ok;
}
