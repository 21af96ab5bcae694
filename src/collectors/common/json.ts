// Readers for untrusted JSON (kubelet and API server answers): each returns
// the value when it has the expected kind, undefined otherwise, never throws.

export type Json = Record<string, unknown>;

const NO_ITEMS: readonly unknown[] = [];

/** A JSON object, or undefined for anything else (null, a list, a scalar). */
export function obj(x: unknown): Json | undefined {
  return typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Json) : undefined;
}

export function str(x: unknown): string | undefined {
  return typeof x === "string" ? x : undefined;
}

export function num(x: unknown): number | undefined {
  return typeof x === "number" && Number.isFinite(x) ? x : undefined;
}

/** The items of a list; an empty list for anything else, so loops need no guard. */
export function list(x: unknown): readonly unknown[] {
  return Array.isArray(x) ? x : NO_ITEMS;
}

/** Absent optional fields are left out of an event rather than sent as null. */
export function omitUndefined<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

/** JSON.parse without throwing: the value, or why it is not JSON. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; detail: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, detail: `${(err as Error).message} (${text.length} characters${text.length === 0 ? "" : `, starting ${JSON.stringify(text.slice(0, 40))}`})` };
  }
}
