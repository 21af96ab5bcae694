// Environment expansion, applied after YAML parsing to scalar values only, so
// a variable's value is always text inside one scalar and can never add keys,
// list items or anchors, whatever characters it holds.
//
//   ${VAR}            the value of VAR, "" when unset
//   ${VAR:-default}   default when VAR is unset or empty
//   ${VAR:?message}   an error showing message when VAR is unset or empty
//   $$                a literal "$"
//   $ otherwise       itself ("cost: 5$" stays as written)
//
// The default and the message are literal text up to the first "}": they are
// not expanded again and cannot contain "}". YAML reads the file before any
// expansion, so a reference must fit the scalar around it: inside [...] or
// {...} quote it ("${VAR}"), and an unquoted one cannot contain ": " or " #".
//
// Two rules of the loader (parse.ts) build on this: a mapping value that is
// only references and expands to "" leaves its key out (an optional setting
// from an unset variable takes its default), and a list-typed key such as
// nats.url splits an expanded scalar on commas into items.

export type Env = Readonly<Record<string, string | undefined>>;

export type Expansion =
  | { readonly ok: true; readonly value: string; /** at least one ${...} was replaced */ readonly expanded: boolean }
  | { readonly ok: false; /** index in the input where the faulty ${ starts */ readonly index: number; readonly message: string };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)(.*))?$/s;

export function expandEnv(text: string, env: Env): Expansion {
  let value = "";
  let expanded = false;
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf("$", i);
    if (dollar === -1) break;
    value += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === "$") {
      value += "$";
      i = dollar + 2;
      continue;
    }
    if (next !== "{") {
      value += "$";
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf("}", dollar + 2);
    if (close === -1) return { ok: false, index: dollar, message: 'unterminated "${": missing "}" (write "$$" for a literal "$")' };
    const body = text.slice(dollar + 2, close);
    const match = REFERENCE.exec(body);
    if (!match) {
      return {
        ok: false,
        index: dollar,
        message: `invalid reference "\${${body}}": expected \${NAME}, \${NAME:-default} or \${NAME:?message} where NAME is letters, digits and _`,
      };
    }
    const [, name = "", operator, argument = ""] = match;
    const current = env[name];
    const missing = current === undefined || current === "";
    if (operator === ":?" && missing) {
      const reason = current === undefined ? "is not set" : "is empty";
      return { ok: false, index: dollar, message: `environment variable ${name} ${reason}${argument ? `: ${argument}` : ""}` };
    }
    value += operator === ":-" && missing ? argument : (current ?? "");
    expanded = true;
    i = close + 1;
  }
  return { ok: true, value: value + text.slice(i), expanded };
}

const NULL = /^(?:~|null|Null|NULL|)$/;
const TRUE = /^(?:true|True|TRUE)$/;
const FALSE = /^(?:false|False|FALSE)$/;
const DECIMAL = /^[-+]?[0-9]+$/;
const OCTAL = /^0o[0-7]+$/;
const HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INFINITY = /^([-+]?)\.(?:inf|Inf|INF)$/;
const NAN = /^\.(?:nan|NaN|NAN)$/;

/**
 * Types text the way a YAML 1.2 core-schema plain scalar is typed: null, bool,
 * int (decimal, 0o octal, 0x hex), float (including .inf and .nan), else the
 * text itself. Used for unquoted scalars after expansion, so `${WORKERS:-4}`
 * is the number 4 as if 4 had been written.
 */
export function coreScalar(text: string): null | boolean | number | string {
  if (NULL.test(text)) return null;
  if (TRUE.test(text)) return true;
  if (FALSE.test(text)) return false;
  if (DECIMAL.test(text)) return Number.parseInt(text, 10);
  if (OCTAL.test(text)) return Number.parseInt(text.slice(2), 8);
  if (HEX.test(text)) return Number.parseInt(text.slice(2), 16);
  if (FLOAT.test(text)) return Number.parseFloat(text);
  const infinity = INFINITY.exec(text);
  if (infinity) return infinity[1] === "-" ? -Infinity : Infinity;
  if (NAN.test(text)) return Number.NaN;
  return text;
}
