// Events that arrive from outside the agent (an `exec` program's stdout, the
// `ingest` API) are checked against Tapio's Go CollectorEvent before they are
// accepted: one field of the wrong kind would make Go consumers drop the whole
// event, so it is refused here, with its path, instead. The valibot schemas
// are built from the Go field table (go-domain.ts): one source of truth.
import * as v from "valibot";
import type { EventInput } from "./event.ts";
import { BASE64, GO_COLLECTOR_EVENT, INT_RANGES, RFC3339, type GoKind, type GoStruct } from "./go-domain.ts";

type Schema = v.GenericSchema<unknown, unknown>;

/** The valibot schema of one Go kind. Structs are strict: an unknown key is a typo Go would silently drop. */
export function goKindSchema(kind: GoKind): Schema {
  if (typeof kind === "string") {
    switch (kind) {
      case "any":
        return v.unknown();
      case "string":
        return v.string();
      case "bool":
        return v.boolean();
      case "float64":
        return v.pipe(v.number(), v.finite());
      case "time":
        return v.pipe(v.string(), v.regex(RFC3339, "expected an RFC 3339 time"));
      case "bytes":
        return v.pipe(v.string(), v.regex(BASE64, "expected standard base64"));
      default: {
        const [min, max] = INT_RANGES[kind]!;
        return v.pipe(
          v.number(),
          v.integer(`expected an integer for ${kind}`),
          v.minValue(min, `below the range of ${kind}`),
          v.maxValue(max, `above the range of ${kind}`),
        );
      }
    }
  }
  if ("never" in kind) return v.never(`Go cannot decode this field (${kind.never})`);
  if ("enum" in kind) return v.picklist(kind.enum as string[]);
  if ("slice" in kind) return v.array(goKindSchema(kind.slice));
  if ("map" in kind) return v.record(v.string(), goKindSchema(kind.map));
  return goStructSchema(kind.struct);
}

function goStructSchema(fields: GoStruct): Schema {
  const entries: Record<string, Schema> = {};
  for (const [name, kind] of Object.entries(fields)) entries[name] = v.optional(goKindSchema(kind));
  return v.strictObject(entries);
}

function field(name: string): GoKind {
  const kind = GO_COLLECTOR_EVENT[name];
  if (kind === undefined) throw new Error(`Go's CollectorEvent has no field "${name}"`);
  return kind;
}

/** Fields only the agent sets: an outside input that carries one is refused (it would forge another source's identity). */
export const AGENT_SET_FIELDS = ["event_id", "source", "collector_name"] as const;

/** Dotted, like every built-in type (`container.oom`): the first part names the domain. */
const TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;
const MAX_TYPE_LENGTH = 256;

let builtExternalEventSchema: ReturnType<typeof buildExternalEventSchema> | undefined;

/**
 * An event input from outside: what a built-in collector could emit, and
 * nothing the agent sets. Built on first use: the whole Go CollectorEvent as
 * valibot schemas is ~12 000 objects, which an agent with no exec or ingest
 * collector would keep for nothing.
 */
export function externalEventSchema(): ReturnType<typeof buildExternalEventSchema> {
  return (builtExternalEventSchema ??= buildExternalEventSchema());
}

function buildExternalEventSchema() {
  return v.strictObject({
    type: v.pipe(
      v.string(),
      v.maxLength(MAX_TYPE_LENGTH, `type is longer than ${MAX_TYPE_LENGTH} characters`),
      v.regex(TYPE, 'type is dotted words, e.g. "node.check_failed"'),
    ),
    severity: v.optional(goKindSchema(field("severity")), "info"),
    // Members by kind (custom, kernel, process, ...), as built-in collectors send them.
    event_data: v.optional(goKindSchema(field("event_data")), {}),
    metadata: v.optional(goKindSchema(field("metadata"))),
    k8s_context: v.optional(goKindSchema(field("k8s_context"))),
    correlation_hints: v.optional(goKindSchema(field("correlation_hints"))),
    trace_context: v.optional(goKindSchema(field("trace_context"))),
    timestamp: v.optional(goKindSchema(field("timestamp"))),
  });
}

export type ExternalEventResult = { ok: true; input: EventInput } | { ok: false; problems: string[] };

/** At most this many problems are named for one input; the rest are counted. */
const MAX_PROBLEMS = 10;

/**
 * Checks one parsed JSON value as an outside event input. Problems name the
 * field path (`event_data.custom.count: ...`), so the sender can fix them.
 */
export function parseExternalEvent(value: unknown): ExternalEventResult {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, problems: [`expected a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`] };
  }
  const forged: string[] = AGENT_SET_FIELDS.filter((name) => Object.hasOwn(value, name));
  const attributes = (value as { metadata?: { attributes?: unknown } }).metadata?.attributes;
  if (typeof attributes === "object" && attributes !== null && Object.hasOwn(attributes, "collector_name")) forged.push("metadata.attributes.collector_name");
  if (forged.length > 0) {
    return { ok: false, problems: forged.map((name) => `${name}: set by the agent; an input may not carry it`) };
  }
  const result = v.safeParse(externalEventSchema(), value);
  if (result.success) return { ok: true, input: result.output as EventInput };
  const problems = result.issues.slice(0, MAX_PROBLEMS).map(describeIssue);
  if (result.issues.length > MAX_PROBLEMS) problems.push(`and ${result.issues.length - MAX_PROBLEMS} more`);
  return { ok: false, problems };
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  const path = v.getDotPath(issue);
  // valibot names an unknown key of a strict object as "Invalid key: Expected never but received \"x\"".
  if (issue.type === "strict_object" && issue.path) {
    return `${path}: not a field Go's CollectorEvent has (it would be dropped)`;
  }
  return `${path ?? "(event)"}: ${issue.message}`;
}
