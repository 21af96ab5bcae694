// The effective config, as `print-config` shows it: defaults filled, the
// environment expanded, durations in their notation, secrets hidden.
import { stringify } from "yaml";
import { Duration } from "./duration.ts";
import type { Config } from "./schema.ts";

const HIDDEN = "***";

/** token, password, *_token, *_password, *secret*; never *_file, which holds a path, not the secret. */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase();
  if (k.endsWith("_file")) return false;
  return k === "token" || k === "password" || k.endsWith("_token") || k.endsWith("_password") || k.includes("secret");
}

// nats://user:password@host or nats://token@host
const URL_CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/)([^@/\s]*)@/i;

function redactUrl(text: string): string {
  return text.replace(URL_CREDENTIALS, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon === -1 ? HIDDEN : `${userinfo.slice(0, colon)}:${HIDDEN}`}@`;
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A copy with secret values replaced by "***", including credentials inside
 * URLs. Plain objects and arrays are copied; other objects (Duration) are kept.
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, isSecretKey(key) && item !== undefined && item !== null ? HIDDEN : redactSecrets(item)]),
  );
}

export function printConfig(config: Config): string {
  const shown = stringify(redactSecrets(config), (_key, value: unknown) => (value instanceof Duration ? value.toString() : value));
  return `# effective configuration: defaults filled, environment expanded, secrets hidden\n${shown}`;
}
