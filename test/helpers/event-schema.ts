// The published event schema (schema/collector-event.schema.json), compiled
// once by a real JSON Schema validator (ajv, draft 2020-12): what a consumer
// would check our events with.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export const PUBLISHED_SCHEMA_PATH = join(import.meta.dir, "../../schema/collector-event.schema.json");

/** A validator for `schema` as consumers would build one: strict, every error, formats checked. */
export function compileEventSchema(schema: object): ValidateFunction {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  // Our own annotations: let strict mode know them.
  ajv.addVocabulary(["x-collectors", "x-collector"]);
  return ajv.compile(schema);
}

let published: ValidateFunction | undefined;

/** Why `event` (an encoded event, parsed back) does not hold to the published schema; empty when it does. */
export function publishedSchemaProblems(event: unknown): string[] {
  published ??= compileEventSchema(JSON.parse(readFileSync(PUBLISHED_SCHEMA_PATH, "utf8")));
  if (published(event)) return [];
  return (published.errors ?? []).map((e) => `${e.instancePath || "(event)"} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ""} [${e.schemaPath}]`);
}

/** Throws, naming the event and each problem, when it does not hold to the published schema. */
export function expectPublishedSchema(event: unknown): void {
  const problems = publishedSchemaProblems(event);
  if (problems.length > 0) {
    throw new Error(`event does not match schema/collector-event.schema.json:\n  ${problems.join("\n  ")}\nevent: ${JSON.stringify(event).slice(0, 2000)}`);
  }
}
