// The event as the agent publishes it, as a valibot schema built from Tapio's
// Go field table (go-domain.ts, as input.ts builds what outside events may
// carry) and the collectors' event declarations (declare.ts); and the same
// as JSON Schema 2020-12, converted by @valibot/to-json-schema. That JSON
// Schema is published as schema/collector-event.schema.json and printed by
// `tapio-collectors schema`.
import * as v from "valibot";
import { toJsonSchema, type JsonSchema } from "@valibot/to-json-schema";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { declaredEventSchema, type CollectorEvents } from "./declare.ts";
import { BASE64, GO_COLLECTOR_EVENT, RFC3339, type GoStruct } from "./go-domain.ts";
import { goKindSchema } from "./input.ts";
import { NAME_PATTERN } from "../orchestrator/instance.ts";

type Schema = v.GenericSchema<unknown, unknown>;

function goField(name: string): Schema {
  const kind = GO_COLLECTOR_EVENT[name];
  if (kind === undefined) throw new Error(`Go's CollectorEvent has no field "${name}"`);
  return goKindSchema(kind);
}

const NAME = NAME_PATTERN.source.slice(1, -1);
/** A collector instance's key, TYPE or TYPE/NAME (src/orchestrator/instance.ts). */
const SOURCE = new RegExp(`^${NAME}(/${NAME})?$`);

function metadataSchema(): Schema {
  const metadata = (GO_COLLECTOR_EVENT.metadata as { struct: GoStruct }).struct;
  const entries: Record<string, Schema> = {};
  for (const [name, kind] of Object.entries(metadata)) entries[name] = v.optional(goKindSchema(kind));
  // The encoder always sets attributes.collector_name (src/event/encode.ts).
  entries.attributes = v.objectWithRest({ collector_name: v.pipe(v.string(), v.regex(SOURCE)) }, v.string());
  return v.strictObject(entries);
}

/** One rule for the declared types: which declaration applies to an event, if any. */
interface DeclaredType {
  readonly type: string;
  readonly schema: Schema;
  /** sources whose events of this type are not held to it: the other collectors that emit types chosen outside their code */
  readonly exempt: RegExp | undefined;
}

function declaredTypes(all: readonly CollectorEvents[]): DeclaredType[] {
  const out: DeclaredType[] = [];
  const owner = new Map<string, string>();
  for (const events of all) {
    const others = all.filter((e) => e.open && e.collector !== events.collector).map((e) => e.collector);
    const exempt = others.length > 0 ? new RegExp(`^(${others.join("|")})(/|$)`) : undefined;
    for (const [type, decl] of Object.entries(events.types)) {
      const first = owner.get(type);
      if (first !== undefined) throw new Error(`event type ${type} is declared by both ${first} and ${events.collector}`);
      owner.set(type, events.collector);
      out.push({ type, schema: declaredEventSchema(events.collector, type, decl), exempt });
    }
  }
  return out;
}

export interface WireSchema {
  /** the valibot schema of a published event */
  readonly schema: Schema;
  /** the same as JSON Schema 2020-12 */
  toJsonSchema(): JsonSchema;
}

/**
 * The published event: the envelope every event has (Go's CollectorEvent
 * fields the agent sends, strict, with what the encoder always sets
 * required), and for a declared type what its collector declared. Events of
 * exec and ingest, whose types are their programs' and senders', are held
 * to the envelope only.
 */
export function wireSchema(all: readonly CollectorEvents[]): WireSchema {
  const declared = declaredTypes(all);
  const byType = new Map(declared.map((d) => [d.type, d]));
  const envelope = v.strictObject({
    event_id: v.pipe(v.string(), v.minLength(1)),
    timestamp: goField("timestamp"),
    type: v.pipe(v.string(), v.minLength(1)),
    source: v.pipe(v.string(), v.regex(SOURCE)),
    severity: goField("severity"),
    event_data: goField("event_data"),
    metadata: metadataSchema(),
    // (causality_context and collection_context: Go has them, no collector sends them)
    k8s_context: v.optional(goField("k8s_context")),
    correlation_hints: v.optional(goField("correlation_hints")),
    trace_context: v.optional(goField("trace_context")),
  });
  // Custom: valibot has no if/then. overrideAction below writes it as JSON Schema.
  const declaredHolds = v.rawCheck<v.InferOutput<typeof envelope>>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const event = dataset.value;
    const rule = byType.get(event.type);
    if (!rule || rule.exempt?.test(event.source)) return;
    const result = v.safeParse(rule.schema, event);
    if (!result.success) for (const issue of result.issues) addIssue({ message: `${v.getDotPath(issue) ?? "(event)"}: ${issue.message} (as ${event.type} is declared)` });
  });
  const schema = v.pipe(
    envelope,
    declaredHolds,
    v.metadata({
      title: "Tapio CollectorEvent, as tapio-collectors publishes it",
      description:
        "One event per NATS message (header Nats-Msg-Id: event_id). Every field decodes into Tapio's Go domain.CollectorEvent with encoding/json. An event of a type in $defs carries what that definition says (its x-collector emits it), unless it came from a collector listed with open: true in x-collectors.",
      "x-collectors": Object.fromEntries(
        all.map((e) => [e.collector, { types: Object.keys(e.types), ...(e.open ? { open: true, note: e.note } : {}) }]),
      ),
    }),
  );

  return {
    schema,
    toJsonSchema: () => {
      const { $schema, title, description, ...rest } = toJsonSchema(schema, {
        target: "draft-2020-12",
        errorMode: "throw",
        definitions: Object.fromEntries(declared.map((d) => [d.type, d.schema])),
        overrideAction: ({ valibotAction, jsonSchema }) => {
          if (valibotAction === declaredHolds) {
            return { ...jsonSchema, allOf: declared.map(ifThen) };
          }
          // JSON numbers are finite: nothing to say.
          if (valibotAction.type === "finite") return jsonSchema;
          if (valibotAction.type === "regex") {
            const requirement = (valibotAction as unknown as { requirement: RegExp }).requirement;
            // Go's time.Time takes RFC 3339 (the pattern is its strict form); []byte takes base64.
            if (requirement === RFC3339) return { ...jsonSchema, format: "date-time" };
            if (requirement === BASE64) return { ...jsonSchema, contentEncoding: "base64" };
          }
          return undefined;
        },
        overrideSchema: ({ valibotSchema, jsonSchema }) => {
          // v.never(): a field Go cannot decode; say why.
          if (valibotSchema.type === "never") return { ...jsonSchema, description: (valibotSchema as unknown as { message: string }).message };
          return undefined;
        },
      });
      // The draft and the title first, for a reader.
      return { $schema, title, description, ...rest };
    },
  };
}

function ifThen(rule: DeclaredType): JsonSchema {
  const when: JsonSchema = { properties: { type: { const: rule.type } }, required: ["type"] };
  if (rule.exempt) {
    when.properties!.source = { not: { type: "string", pattern: rule.exempt.source } };
    when.required!.push("source");
  }
  return { if: when, then: { $ref: `#/$defs/${rule.type}` } };
}

/** The built-in collectors' published event schema. */
export function collectorEventWireSchema(registry: CollectorRegistry): WireSchema {
  return wireSchema(
    registry.types().map((type) => {
      const events = registry.get(type)!.events;
      if (!events) throw new Error(`collector ${type} declares no events (its events.ts)`);
      return events;
    }),
  );
}
