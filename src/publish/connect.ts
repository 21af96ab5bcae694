// NatsConfig -> nats.js connection options. Credential files are checked
// here, at start, so a typo fails with the file's name instead of as an
// endless reconnect loop. Secrets never reach a log or an error message.
import { accessSync, constants, readFileSync } from "node:fs";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { credsAuthenticator, nkeyAuthenticator, type Authenticator } from "@nats-io/nats-core";
import type { NatsConfig } from "../config/schema.ts";
import { PublisherError } from "./errors.ts";
import { rememberSecret } from "../config/redact.ts";

type NodeTlsOptions = NonNullable<NodeConnectionOptions["tls"]>;

export function connectionOptions(config: NatsConfig): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: config.url,
    name: config.name,
    maxReconnectAttempts: config.max_reconnects,
    reconnectTimeWait: config.reconnect_wait.ms,
    timeout: config.timeout.ms,
    inboxPrefix: config.inbox_prefix,
    // "forever" should survive a credentials rotation too; by default nats.js gives up after two identical auth errors
    ignoreAuthErrorAbort: config.max_reconnects === -1,
    // skips capturing a stack trace per request, i.e. per JetStream publish
    noAsyncTraces: true,
  };
  if (config.token !== undefined) options.token = config.token;
  if (config.username !== undefined) {
    options.user = config.username;
    options.pass = config.password;
  }
  const authenticators: Authenticator[] = [];
  if (config.nkey_seed_file !== undefined) {
    const file = config.nkey_seed_file;
    // seed files usually end with a newline, which is not part of the seed
    authenticators.push(checked(nkeyAuthenticator(fileSecret(file, "nkey seed", (b) => seedsRemembered(trimmed(b)))), file, "nkey seed"));
  }
  if (config.creds_file !== undefined) {
    const file = config.creds_file;
    authenticators.push(checked(credsAuthenticator(fileSecret(file, "credentials", seedsRemembered)), file, "credentials"));
  }
  if (authenticators.length > 0) options.authenticator = authenticators;
  const tls = tlsOptions(config);
  if (tls) options.tls = tls;
  return options;
}

function tlsOptions(config: NatsConfig): NodeTlsOptions | undefined {
  const tlsUrl = config.url.some((u) => u.trim().toLowerCase().startsWith("tls://"));
  if (!config.tls && !tlsUrl) return undefined;
  // an object, even empty, makes nats.js require TLS; without one it still upgrades when the server asks
  const tls: NodeTlsOptions = {};
  const { ca_file, cert_file, key_file, insecure_skip_verify } = config.tls ?? { insecure_skip_verify: false };
  // nats.js reads these at every connect, which picks up rotated certificates; only check them now
  if (ca_file !== undefined) tls.caFile = readable(ca_file, "TLS CA");
  if (cert_file !== undefined) tls.certFile = readable(cert_file, "TLS certificate");
  if (key_file !== undefined) tls.keyFile = readable(key_file, "TLS key");
  if (insecure_skip_verify) tls.rejectUnauthorized = false;
  return tls;
}

function readable(file: string, what: string): string {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new PublisherError(`cannot read ${what} file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return file;
}

function trimmed(bytes: Uint8Array): Uint8Array {
  return new TextEncoder().encode(new TextDecoder().decode(bytes).trim());
}

// an nkey seed: "S", the key type, then base32 (a .creds file holds one between its JWT and its end)
const SEED = /\bS[A-Z][A-Z2-7]{50,}\b/g;

/** The file's content unchanged, its seeds remembered so that no output ever shows them (redactText). */
function seedsRemembered(bytes: Uint8Array): Uint8Array {
  for (const seed of new TextDecoder().decode(bytes).match(SEED) ?? []) rememberSecret(seed);
  return bytes;
}

/**
 * Reads `file` now (failing with its name) and again at every (re)connect,
 * so rotated credentials are used without a restart; if a later read fails
 * (rotation mid-write), the last good content is used.
 */
function fileSecret(file: string, what: string, transform: (bytes: Uint8Array) => Uint8Array): () => Uint8Array {
  let last: Uint8Array;
  try {
    last = transform(readFileSync(file));
  } catch (err) {
    throw new PublisherError(`cannot read ${what} file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return () => {
    try {
      last = transform(readFileSync(file));
    } catch {
      // keep the last good copy
    }
    return last;
  };
}

/** Runs the authenticator once without a nonce, which parses the seed or creds, so a malformed file fails now. */
function checked(auth: Authenticator, file: string, what: string): Authenticator {
  try {
    auth();
  } catch (err) {
    // the parser's message never quotes the secret
    throw new PublisherError(`${what} file ${file} is not valid: ${(err as Error).message}`, { cause: err });
  }
  return auth;
}
