// Hiding secrets before a value is shown: in `print-config` and in logs.
import { isPlainMapping } from "./parse.ts";

const HIDDEN = "***";

/** token, password, *_token, *_password, *secret*; never *_file, which holds a path, not the secret. */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase();
  if (k.endsWith("_file")) return false;
  return k === "token" || k === "password" || k.endsWith("_token") || k.endsWith("_password") || k.includes("secret");
}

// scheme://user:password@host or scheme://token@host, anywhere in the text
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^@/\s]*)@/gi;

/**
 * The text with the credentials of every URL in it hidden: the password of
 * `user:password@` ("nats://tapio:***@host:4222") and a lone token
 * ("nats://***@host:4222"). For a NATS server URL, or a message quoting one.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon === -1 ? HIDDEN : `${userinfo.slice(0, colon)}:${HIDDEN}`}@`;
  });
}

/**
 * A copy with secret values replaced by "***", including credentials inside
 * URLs. Plain objects and arrays are copied; other objects (Duration) are kept.
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === "string") return redactUrlCredentials(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (!isPlainMapping(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, isSecretKey(key) && item !== undefined && item !== null ? HIDDEN : redactSecrets(item)]),
  );
}
