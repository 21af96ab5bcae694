// What each collector's event types carry: declared once, next to the
// collector (src/collectors/<name>/events.ts), by field name only. The kinds
// come from Tapio's Go table (go-domain.ts), so a declaration cannot name a
// field Go does not have. From the declarations come the published JSON
// Schema (src/event/wire.ts) and what the collector tests check every event
// against: one source of truth.
import * as v from "valibot";
import type { Severity } from "./event.ts";
import { GO_COLLECTOR_EVENT, type GoKind } from "./go-domain.ts";
import { goKindSchema } from "./input.ts";

type Schema = v.GenericSchema<unknown, unknown>;

/** One field of a member: its Go kind, only these values, or a struct of declared fields. */
export type FieldDecl =
  | { readonly decl: "field"; readonly optional: boolean }
  | { readonly decl: "values"; readonly values: readonly [string, ...string[]]; readonly optional: boolean }
  | { readonly decl: "struct"; readonly fields: FieldsDecl; readonly optional: boolean };

export interface FieldsDecl {
  readonly [name: string]: FieldDecl;
}

/** Fields of a struct (or keys of a map such as `custom`): words, an optional one ends in "?"; or declared fields. */
export function struct(...parts: Array<string | FieldsDecl>): FieldDecl {
  const fields: Record<string, FieldDecl> = {};
  for (const part of parts) {
    if (typeof part !== "string") Object.assign(fields, part);
    else for (const word of part.split(/\s+/).filter(Boolean)) fields[word.replace(/\?$/, "")] = { decl: "field", optional: word.endsWith("?") };
  }
  return { decl: "struct", fields, optional: false };
}

/** A string field that holds one of `values`. */
export function is(...values: [string, ...string[]]): FieldDecl {
  return { decl: "values", values, optional: false };
}

/** The same field, left out of some events. */
export function optional(field: FieldDecl): FieldDecl {
  return { ...field, optional: true };
}

export interface EventDecl {
  /** what happened, for the schema's reader */
  readonly description: string;
  readonly severities: readonly [Severity, ...Severity[]];
  /** the members of event_data, and nothing else */
  readonly event_data: FieldsDecl;
}

export interface CollectorEvents {
  /** the collector type that emits them */
  readonly collector: string;
  /**
   * True when the collector also emits types chosen outside its code (a
   * program's, a sender's, the config's): events of other collectors' types
   * from it are not held to those types' declarations.
   */
  readonly open: boolean;
  /** for a reader of the schema, when `open`: where its other types come from */
  readonly note?: string;
  readonly types: Readonly<Record<string, EventDecl>>;
}

export function declareEvents(collector: string, types: Record<string, EventDecl>, open?: { note: string }): CollectorEvents {
  // Built once here, so a declaration naming a field Go lacks fails at import, in every test.
  for (const [type, decl] of Object.entries(types)) declaredEventSchema(collector, type, decl);
  return { collector, open: open !== undefined, note: open?.note, types };
}

const EVENT_DATA = (GO_COLLECTOR_EVENT.event_data as { struct: Record<string, GoKind> }).struct;

/**
 * The valibot schema of one declared type: `severity` one of its
 * severities, `event_data` exactly the declared members and fields (strict:
 * an undeclared one fails), each of Go's kind.
 */
export function declaredEventSchema(collector: string, type: string, decl: EventDecl): Schema {
  return v.pipe(
    v.object({
      severity: v.picklist(decl.severities),
      event_data: structSchema({ struct: EVENT_DATA }, decl.event_data, `${type}: event_data`),
    }),
    v.metadata({ title: type, description: decl.description, "x-collector": collector }),
  );
}

function fieldSchema(kind: GoKind, decl: FieldDecl, path: string): Schema {
  let schema: Schema;
  if (decl.decl === "field") schema = goKindSchema(kind);
  else if (decl.decl === "values") {
    if (kind !== "string") throw new Error(`${path}: values are declared for a field that is not a Go string`);
    schema = decl.values.length === 1 ? v.literal(decl.values[0]) : v.picklist(decl.values);
  } else schema = structSchema(kind, decl.fields, path);
  return decl.optional ? v.optional(schema) : schema;
}

/** A Go struct with only the declared fields, or a Go map (custom, labels) with only the declared keys. */
function structSchema(kind: GoKind, fields: FieldsDecl, path: string): Schema {
  const entries: Record<string, Schema> = {};
  for (const [name, field] of Object.entries(fields)) {
    let fieldKind: GoKind | undefined;
    if (typeof kind === "object" && "struct" in kind) fieldKind = kind.struct[name];
    else if (typeof kind === "object" && "map" in kind) fieldKind = kind.map;
    else throw new Error(`${path}: fields are declared for a Go ${JSON.stringify(kind)}, not a struct or map`);
    if (fieldKind === undefined) throw new Error(`${path}.${name}: Go's struct has no such field`);
    entries[name] = fieldSchema(fieldKind, field, `${path}.${name}`);
  }
  return v.strictObject(entries);
}
