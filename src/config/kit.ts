// Building blocks for config schemas, the top-level one and each collector's,
// so every message reads "expected <what>, got <found value>" and unknown keys
// get a "did you mean". Defaults: wrap in v.optional(schema, default); the
// default goes through the schema too, so `v.optional(duration(), "30s")`
// yields a Duration.
import * as v from "valibot";
import { Duration } from "./duration.ts";
import { describeValue } from "./errors.ts";
import { isPlainMapping } from "./parse.ts";
import { suggest } from "./suggest.ts";

/** A schema that reads any YAML value into T. */
export type Schema<T> = v.GenericSchema<unknown, T>;

export function expectedGot(expected: string, input: unknown): string {
  return `expected ${expected}, got ${describeValue(input)}`;
}

/**
 * A value read by `parse`, which returns undefined to reject the input with
 * "expected <expected>, got <shown>"; `show` picks what of the input a
 * message may show (a URL's password must not be).
 */
export function parsed<T>(expected: string, parse: (input: unknown) => T | undefined, show: (input: unknown) => unknown = (x) => x): Schema<T> {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const output = parse(dataset.value);
      if (output !== undefined) return output;
      addIssue({ message: expectedGot(expected, show(dataset.value)) });
      return NEVER;
    }),
  );
}

function range(kind: string, min: number, max: number): string {
  if (max === Infinity) return `${kind} of at least ${min}`;
  return `${kind} from ${min} to ${max}`;
}

export function integer(min: number, max = Infinity): Schema<number> {
  return parsed(range("an integer", min, max), (x) =>
    typeof x === "number" && Number.isInteger(x) && x >= min && x <= max ? x : undefined,
  );
}

export function number(min: number, max = Infinity): Schema<number> {
  return parsed(range("a number", min, max), (x) =>
    typeof x === "number" && Number.isFinite(x) && x >= min && x <= max ? x : undefined,
  );
}

/**
 * "250ms", "30s", "5m", "1h", "1m30s"; also a bare 0, which needs no unit.
 * `positive` rejects zero, for timeouts, waits and backoffs that 0 would break.
 */
export function duration(options: { readonly positive?: boolean } = {}): Schema<Duration> {
  const { positive = false } = options;
  return parsed(`a duration ${positive ? "above 0 " : ""}like 250ms, 30s, 5m or 1h`, (x) => {
    const found = x === 0 ? new Duration(0) : typeof x === "string" ? Duration.parse(x) : undefined;
    return found && (!positive || found.ms > 0) ? found : undefined;
  });
}

// As in Kubernetes quantities: a unit with "i" is binary (1KiB = 1024), one
// without is decimal (1KB = 1K = 1000).
const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*(?:([KMGTP])(i?)B?|B)?$/i;
const PREFIX_POWER: Record<string, number> = { K: 1, M: 2, G: 3, T: 4, P: 5 };

function parseByteSize(text: string): number | undefined {
  const match = BYTE_SIZE.exec(text.trim());
  if (!match) return undefined;
  const [, amount = "", prefix, binary] = match;
  const power = prefix ? PREFIX_POWER[prefix.toUpperCase()] : 0;
  if (power === undefined) return undefined;
  return Math.round(Number(amount) * (binary ? 1024 : 1000) ** power);
}

/**
 * A number of bytes: an integer, or text with a unit such as 512KB, 64MiB,
 * 1GB or 1G. `unlimited` also accepts -1.
 */
export function byteSize(options: { readonly min?: number; readonly unlimited?: boolean } = {}): Schema<number> {
  const { min = 0, unlimited = false } = options;
  const expected = `a byte size like 512KB, 64MiB or 1GB${min > 0 ? ` (at least ${min} bytes)` : ""}${unlimited ? ", or -1 for unlimited" : ""}`;
  return parsed(expected, (x) => {
    if (unlimited && x === -1) return -1;
    const bytes = typeof x === "number" ? x : typeof x === "string" ? parseByteSize(x) : undefined;
    return bytes !== undefined && Number.isSafeInteger(bytes) && bytes >= min ? bytes : undefined;
  });
}

export function picklist<const T extends readonly string[]>(values: T): Schema<T[number]> {
  return parsed(`one of ${values.join(", ")}`, (x) => values.find((value) => value === x));
}

export function nonEmptyString(): Schema<string> {
  return parsed("a non-empty string", (x) => (typeof x === "string" && x.trim() !== "" ? x : undefined));
}

/** A string that passes `test`, e.g. a NATS subject; `expected` describes what passes, `show` as in `parsed`. */
export function text(expected: string, test: (value: string) => boolean, show?: (input: unknown) => unknown): Schema<string> {
  return parsed(expected, (x) => (typeof x === "string" && test(x) ? x : undefined), show);
}

/**
 * A password or token: a non-empty string, never shown in a message. A
 * number is refused rather than read as text: YAML may already have changed
 * its digits (0123, 1e5, 0x1F), so it must be quoted.
 */
export function secret(): Schema<string> {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const x = dataset.value;
      if (typeof x === "string" && x.trim() !== "") return x;
      let message: string;
      if (typeof x === "number" || typeof x === "boolean") {
        message = `expected a string in quotes, got a ${typeof x} (not shown): YAML reads an unquoted secret such as 0123 as a number and may change it`;
      } else if (typeof x === "string" && x !== "") message = "expected a non-empty string, got a string of only spaces";
      else message = expectedGot("a non-empty string", x); // "", a mapping, a list, nothing: no value to hide
      addIssue({ message });
      return NEVER;
    }),
  );
}

export function bool(): Schema<boolean> {
  return parsed("true or false", (x) => (typeof x === "boolean" ? x : undefined));
}

/** One item or a list of them, always read as a list: `url: a` is `url: [a]`. */
export function stringOrList<T = string>(item: Schema<T> = nonEmptyString() as Schema<T>): Schema<T[]> {
  return v.pipe(
    v.unknown(),
    v.transform((x) => (typeof x === "string" ? [x] : x)),
    v.array(item, (issue) => expectedGot("a string or a list of strings", issue.input)),
  );
}

export interface StrictObjectOptions {
  /** what the keys name, for messages: "key" (the default), "collector" */
  readonly noun?: string;
  /** explanations for keys that are known mistakes, given instead of a suggestion */
  readonly hints?: Readonly<Record<string, string>>;
}

function objectMessage(issue: v.ObjectIssue): string {
  const last = issue.path?.at(-1);
  if (issue.input === undefined && last?.origin === "key") return `missing required key "${String(last.key)}"`;
  return expectedGot("a mapping", issue.input);
}

/** `unknown <noun> "key"`, with the hint for it, a "did you mean", or the known ones. */
export function unknownKeyMessage(key: string, allowed: readonly string[], options: StrictObjectOptions): string {
  const { noun = "key", hints = {} } = options;
  const unknown = `unknown ${noun} "${key}"`;
  if (Object.hasOwn(hints, key)) return `${unknown}: ${hints[key]}`;
  // `destinations.central.url: x` is one key named with dots in YAML, not three nested ones.
  const parts = key.split(".");
  if (noun === "key" && parts.length > 1 && allowed.includes(parts[0]!) && parts.every((p) => p !== "")) {
    const nested = `${parts.slice(0, -1).map((part) => `${part}: { `).join("")}${parts.at(-1)}: ...${" }".repeat(parts.length - 1)}`;
    return `${unknown}: YAML does not nest a dotted key; write it nested: ${nested}`;
  }
  const close = suggest(key, allowed);
  if (close) return `${unknown} (did you mean "${close}"?)`;
  return allowed.length > 0 ? `${unknown} (known ${noun}s: ${allowed.join(", ")})` : `${unknown} (no ${noun}s are known)`;
}

/**
 * A mapping with exactly these keys. Unlike v.strictObject, which stops at the
 * first unknown key, every unknown key is reported, each with a suggestion.
 */
export function strictObject<const E extends v.ObjectEntries>(
  entries: E,
  options: StrictObjectOptions = {},
): v.ObjectSchema<E, typeof objectMessage> {
  const allowed = Object.keys(entries);
  const base = v.object(entries, objectMessage);
  // Only lends its identity (kind and type) to the unknown-key issues.
  const strict = v.strictObject(entries);
  // v._standardSchema and v._addIssue are valibot internals (the "_" prefix),
  // free to change in any release: that is why package.json pins valibot to
  // an exact version. Check this function and test/config/kit.test.ts before
  // upgrading it.
  return v._standardSchema<v.ObjectSchema<E, typeof objectMessage>>({
    ...base,
    "~run"(dataset, config) {
      const input = dataset.value;
      // v.object would read a list as a mapping without keys; make it fail as a non-mapping does.
      if (Array.isArray(input)) return v.object(entries, expectedGot("a mapping", input))["~run"]({ value: null }, config);
      const output = base["~run"](dataset, config);
      if (!isPlainMapping(input)) return output;
      for (const key of Object.keys(input)) {
        if (Object.hasOwn(entries, key)) continue;
        v._addIssue(strict, "key", output, config, {
          input: key,
          expected: "never",
          message: unknownKeyMessage(key, allowed, options),
          path: [{ type: "object", origin: "key", input, key, value: input[key] }],
        });
      }
      return output;
    },
  });
}

const VALIBOT_EXPECTS: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  Object: "a mapping",
  Array: "a list",
};

/**
 * Messages for plain valibot schemas in a collector's config, in the same
 * style as the kit's. Pass as `message` in the parse config.
 */
export function fallbackMessage(issue: v.BaseIssue<unknown>): string {
  const last = issue.path?.at(-1);
  if (last?.origin === "key") {
    if (issue.input === undefined) return `missing required key "${String(last.key)}"`;
    if (issue.expected === "never") return `unknown key "${String(last.key)}"`;
  }
  const expected = issue.expected === null ? "a valid value" : (VALIBOT_EXPECTS[issue.expected] ?? issue.expected);
  return expectedGot(expected, issue.input);
}
