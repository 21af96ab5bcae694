// Would Go's encoding/json decode this JSON into that Go type? Walks a parsed
// event against the kinds in src/event/go-domain.ts and says where it would not.
// Stricter than Go in three places, on purpose: enum strings must be known
// values (Go takes any string, but its code compares them), null is refused
// (the schema leaves absent fields out), and integers stop at 2^53 (past it a
// JavaScript number is no longer the exact integer it meant to be).
import { BASE64, INT_RANGES, RFC3339, type GoKind, type GoStruct } from "../../src/event/go-domain.ts";

export interface GoDecodeCheck {
  /** fields Go would refuse (the whole event fails to decode) or that break the schema's rules */
  problems: string[];
  /** fields Go has no place for: decoding drops them silently */
  dropped: string[];
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function kindName(kind: GoKind): string {
  if (typeof kind === "string") return kind;
  if ("enum" in kind) return `one of ${kind.enum.join("|")}`;
  if ("struct" in kind) return "an object";
  if ("map" in kind) return `an object of ${kindName(kind.map)}`;
  if ("slice" in kind) return `an array of ${kindName(kind.slice)}`;
  return "nothing";
}

/** Checks `value` (parsed JSON) against `kind`; `path` names it in the messages. */
export function checkGoKind(value: unknown, kind: GoKind, path: string, out: GoDecodeCheck = { problems: [], dropped: [] }): GoDecodeCheck {
  const fail = (why = `expected ${kindName(kind)}, got ${describe(value)}`) => out.problems.push(`${path}: ${why}`);
  // Go accepts null anywhere (as "no value"); the schema says absent fields are left out, never null.
  if (value === null) return fail("null (absent optional fields are left out, not sent as null)"), out;
  if (typeof kind === "string") {
    switch (kind) {
      case "any":
        return out;
      case "string":
        if (typeof value !== "string") fail();
        return out;
      case "bool":
        if (typeof value !== "boolean") fail();
        return out;
      case "float64":
        if (typeof value !== "number") fail();
        return out;
      case "time":
        if (typeof value !== "string" || !RFC3339.test(value)) fail(`expected an RFC 3339 time, got ${describe(value)}`);
        return out;
      case "bytes":
        if (typeof value !== "string" || !BASE64.test(value)) fail(`expected standard base64, got ${describe(value)}`);
        return out;
      default: {
        // Go parses an integer field's number text as an integer: no fraction, no exponent, in range.
        const [min, max] = INT_RANGES[kind]!;
        if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) fail(`expected an integer for ${kind}, got ${describe(value)}`);
        return out;
      }
    }
  }
  if ("never" in kind) return fail(`Go cannot decode this field (${kind.never})`), out;
  if ("enum" in kind) {
    if (typeof value !== "string" || !kind.enum.includes(value)) fail();
    return out;
  }
  if ("slice" in kind) {
    if (!Array.isArray(value)) return fail(), out;
    value.forEach((item, i) => checkGoKind(item, kind.slice, `${path}[${i}]`, out));
    return out;
  }
  if (typeof value !== "object" || Array.isArray(value)) return fail(), out;
  const members = value as Record<string, unknown>;
  if ("map" in kind) {
    for (const [key, item] of Object.entries(members)) checkGoKind(item, kind.map, `${path}.${key}`, out);
    return out;
  }
  checkGoStruct(members, kind.struct, path, out);
  return out;
}

function checkGoStruct(members: Record<string, unknown>, fields: GoStruct, path: string, out: GoDecodeCheck): void {
  for (const [key, item] of Object.entries(members)) {
    const field = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (field !== undefined) {
      checkGoKind(item, field, `${path}.${key}`, out);
      continue;
    }
    // Go falls back to a case-insensitive match: a key that only matches so is a typo that happens to work.
    const folded = Object.keys(fields).find((name) => name.toLowerCase() === key.toLowerCase());
    if (folded) out.problems.push(`${path}.${key}: matches Go's "${folded}" only without case`);
    else out.dropped.push(`${path}.${key}`);
  }
}
