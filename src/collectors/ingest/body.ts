// A request body of ingest into events: a JSON object, a JSON array of them,
// or NDJSON (one per line). Every event is checked before any is accepted
// (all or nothing), and each problem names the event's index (and its line
// in NDJSON), so the sender can fix them all at once.
import { parseExternalEvent } from "../../event/input.ts";
import { MAX_SUBJECT_SUFFIX_LENGTH } from "../../event/encode.ts";
import type { Emission } from "../../orchestrator/collector.ts";

/** The sender's name, the last part of the subject: lower-case words joined by dots. */
export const SOURCE = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const SOURCE_EXPECTED = `lower-case letters, digits, _ and -, in words joined by dots (up to ${MAX_SUBJECT_SUFFIX_LENGTH} characters), like "node-check" or "cni.calico"`;
/** Problems of at most this many events are listed; the rest are counted. */
export const MAX_LISTED = 100;
/** A value shown in a message is cut to this many characters. */
const EXCERPT = 60;

export interface Item {
  /** 1-based line of an NDJSON body */
  readonly line?: number;
  readonly value?: unknown;
  /** the item is not JSON */
  readonly error?: string;
}

export type ParsedBody = { readonly ok: true; readonly items: readonly Item[] } | { readonly ok: false; readonly error: string };

/** Splits and parses a body; a body that is not JSON at all is one error, a bad NDJSON line a problem of its event. */
export function parseBody(text: string, ndjson: boolean): ParsedBody {
  if (ndjson) {
    const items: Item[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === "") continue;
      try {
        items.push({ line: i + 1, value: JSON.parse(line) });
      } catch (err) {
        items.push({ line: i + 1, error: `invalid JSON: ${(err as Error).message}` });
      }
    }
    return { ok: true, items };
  }
  if (text.trim() === "") return { ok: false, error: "empty body: expected a JSON object, an array of them, or NDJSON (Content-Type: application/x-ndjson)" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${(err as Error).message} (for one event per line, send Content-Type: application/x-ndjson)` };
  }
  if (Array.isArray(value)) return { ok: true, items: value.map((v) => ({ value: v })) };
  if (typeof value === "object" && value !== null) return { ok: true, items: [{ value }] };
  return { ok: false, error: `expected a JSON object or an array of objects, got ${describe(value)}` };
}

export interface EventProblem {
  readonly index: number;
  readonly line?: number;
  readonly problems: readonly string[];
}

export type CheckedEvents = { readonly ok: true; readonly emissions: Emission[] } | { readonly ok: false; readonly invalid: number; readonly listed: EventProblem[] };

/**
 * Each item as an event input plus its `source` (the subject suffix). All or
 * nothing: any problem and no event is returned, the first MAX_LISTED
 * problem events listed.
 */
export function checkEvents(items: readonly Item[]): CheckedEvents {
  const emissions: Emission[] = [];
  const listed: EventProblem[] = [];
  let invalid = 0;
  for (let index = 0; index < items.length; index++) {
    const item = items[index]!;
    const problems = item.error !== undefined ? [item.error] : checkOne(item.value, emissions);
    if (problems.length === 0) continue;
    invalid++;
    if (listed.length < MAX_LISTED) listed.push(item.line === undefined ? { index, problems } : { index, line: item.line, problems });
  }
  return invalid === 0 ? { ok: true, emissions } : { ok: false, invalid, listed };
}

/** The event's problems; none: it was added to `emissions`. */
function checkOne(value: unknown, emissions: Emission[]): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [`expected a JSON object, got ${describe(value)}`];
  const { source, ...input } = value as Record<string, unknown>;
  const problems: string[] = [];
  if (source === undefined) problems.push(`source: required: the sender's name, ${SOURCE_EXPECTED}`);
  else if (typeof source !== "string" || source.length > MAX_SUBJECT_SUFFIX_LENGTH || !SOURCE.test(source)) problems.push(`source: expected ${SOURCE_EXPECTED}, got ${describe(source)}`);
  const event = parseExternalEvent(input);
  if (!event.ok) problems.push(...event.problems);
  if (problems.length === 0 && event.ok) emissions.push({ event: event.input, subjectSuffix: source as string });
  return problems;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > EXCERPT ? `${value.slice(0, EXCERPT)}...` : value);
  if (typeof value === "object") return "an object";
  return `${typeof value === "number" ? "the number" : "a"} ${String(value).slice(0, EXCERPT)}`;
}
