// Hiding secrets before anything is shown: in `print-config`, config errors,
// logs, /status and error messages. Two layers: each place that shows a value
// hides what it knows is secret (keys, URL userinfo), and `redactText`, the
// last guard on every log line and error written out, hides any secret value
// this process holds wherever it turns up.
import { isPlainMapping } from "./parse.ts";

const HIDDEN = "***";

/**
 * token, password, *_token, *_password, *secret*; never *_file, which holds a
 * path, not the secret, nor a collector instance's key (`dns/secret-zone`).
 */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase();
  if (k.endsWith("_file") || k.includes("/")) return false;
  return k === "token" || k === "password" || k.endsWith("_token") || k.endsWith("_password") || k.includes("secret");
}

/**
 * A mapping under this key holds HTTP headers (telemetry.otlp.headers): their
 * values are never shown, whatever their names.
 */
const HEADERS_KEY = "headers";

/** A header whose value is a credential: Authorization, API keys, tokens, cookies, signatures. */
export function isSecretHeader(name: string): boolean {
  const n = name.toLowerCase().replaceAll("-", "_");
  return isSecretKey(n) || /auth|key|token|password|cookie|signature|credential/.test(n);
}

/** True when a dotted config path (`nats.password`) is or lies under a secret key. */
export function isSecretPath(path: string): boolean {
  return path.split(".").some(isSecretKey);
}

// scheme://user:password@host or scheme://token@host, anywhere in the text
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^@/\s]*)@/gi;

function hiddenUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(":");
  return colon === -1 ? HIDDEN : `${userinfo.slice(0, colon)}:${HIDDEN}`;
}

/**
 * The text with the credentials of every URL in it hidden: the password of
 * `user:password@` ("nats://tapio:***@host:4222") and a lone token
 * ("nats://***@host:4222"). For a message quoting URLs.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, (_, scheme: string, userinfo: string) => `${scheme}${hiddenUserinfo(userinfo)}@`);
}

/**
 * One value meant as a URL, valid or not, with everything up to its last "@"
 * treated as credentials: unlike the pattern above, this also hides a
 * password holding a space or "/", which makes the URL invalid.
 */
export function redactUrl(value: string): string {
  const at = value.lastIndexOf("@");
  if (at === -1) return value;
  const scheme = value.indexOf("://");
  const start = scheme === -1 || scheme > at ? 0 : scheme + 3;
  return `${value.slice(0, start)}${hiddenUserinfo(value.slice(start, at))}${value.slice(at)}`;
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
    Object.entries(value).map(([key, item]) => {
      if (key === HEADERS_KEY && isPlainMapping(item)) return [key, Object.fromEntries(Object.keys(item).map((name) => [name, HIDDEN]))];
      return [key, isSecretKey(key) && item !== undefined && item !== null ? HIDDEN : redactSecrets(item)];
    }),
  );
}

/**
 * Secrets shorter than this are left to the first layer: hiding every
 * occurrence of "abc" or "1234" in every log line would garble the logs.
 */
const MIN_GUARDED_LENGTH = 6;
/** every form a secret may be written in: as is, JSON-escaped (in a log line), percent-encoded (in a URL) */
const guarded = new Set<string>();

/** Makes `redactText` hide `secret` from now on (a password, token or seed this process read). */
export function rememberSecret(secret: string | undefined): void {
  if (secret === undefined || secret.length < MIN_GUARDED_LENGTH) return;
  for (const form of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) guarded.add(form);
}

/** Remembers the value of every secret key in a loaded config (see isSecretKey). */
export function rememberSecrets(config: unknown): void {
  if (Array.isArray(config)) for (const item of config) rememberSecrets(item);
  if (!isPlainMapping(config)) return;
  for (const [key, item] of Object.entries(config)) {
    // Only credential headers: hiding a tenant name such as "production" in every log line would garble the logs.
    if (key === HEADERS_KEY && isPlainMapping(item)) {
      for (const [name, header] of Object.entries(item)) if (isSecretHeader(name) && typeof header === "string") rememberSecret(header);
    } else if (isSecretKey(key) && typeof item === "string") rememberSecret(item);
    else rememberSecrets(item);
  }
}

/** The last guard, for text about to be written out: URL credentials and every remembered secret hidden. */
export function redactText(text: string): string {
  let out = text;
  // known secrets first: hiding URL userinfo first could cut one holding "@" in two
  for (const secret of guarded) if (out.includes(secret)) out = out.replaceAll(secret, HIDDEN);
  return redactUrlCredentials(out);
}
