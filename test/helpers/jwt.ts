// Decentralized (JWT) auth for tests, without nsc: an operator, accounts and
// users as fresh nkeys, with their JWTs built by hand.
//
// A NATS JWT is base64url(header).base64url(claims).base64url(signature),
// the header {"typ":"JWT","alg":"ed25519-nkey"}, the signature the issuer's
// ed25519 nkey signing "<header>.<claims>". The claims follow nats-io/jwt v2:
// `jti` (base32 of sha512/256 of the claims serialised without jti), `iat`,
// `iss` (issuer public key), `sub` (subject public key), `name`, and `nats`
// with `type` and `version: 2`. Account limits are written out in full: an
// absent limit decodes as 0, which nats-server reads as "none allowed".
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";
import { makeTempDir } from "./cleanup.ts";

const HEADER = { typ: "JWT", alg: "ed25519-nkey" };
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const decoder = new TextDecoder();

function base64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}

/** RFC 4648 base32, no padding (as Go's base32.StdEncoding.WithPadding(NoPadding)). */
function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Signs `nats` (the type-specific claims) about `subject` with `issuer`'s nkey. */
export function encodeJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
  };
  // jti: a hash of the claims without it, as nats-io/jwt computes it (the server does not recompute it)
  claims.jti = base32(createHash("sha512-256").update(JSON.stringify(claims)).digest());
  claims.nats = { ...nats, version: 2 };
  const signed = `${base64url(JSON.stringify(HEADER))}.${base64url(JSON.stringify(claims))}`;
  return `${signed}.${base64url(issuer.sign(new TextEncoder().encode(signed)))}`;
}

/** The claims of a JWT, unverified (for assertions). */
export function decodeJwt(jwt: string): Record<string, unknown> {
  const claims = jwt.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(claims, "base64url").toString()) as Record<string, unknown>;
}

const UNLIMITED_ACCOUNT = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};
const UNLIMITED_JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

export interface JwtAccount {
  readonly keys: KeyPair;
  readonly publicKey: string;
  /** signed by the operator that created it (or by whoever `createJwtAccount` was given) */
  readonly jwt: string;
}

export interface JwtUser {
  readonly publicKey: string;
  readonly jwt: string;
  /** a .creds file: the user JWT and the user's seed */
  readonly credsFile: string;
  /** the user's seed, to check it never leaks */
  readonly seed: string;
}

export interface JwtOperator {
  readonly keys: KeyPair;
  readonly publicKey: string;
  readonly jwt: string;
  /** a new account signed by this operator; JetStream enabled (unlimited) if `jetstream` */
  account(name: string, opts?: { jetstream?: boolean }): JwtAccount;
  /**
   * nats-server configuration trusting this operator, with `accounts`
   * preloaded into a memory resolver (the only accounts the server knows).
   */
  serverConfig(accounts: readonly JwtAccount[]): string;
}

export function createJwtOperator(name = "tapio-test-operator"): JwtOperator {
  const keys = createOperator();
  const publicKey = keys.getPublicKey();
  const account = (accountName: string, opts: { jetstream?: boolean } = {}): JwtAccount => {
    const pair = createAccount();
    const limits = opts.jetstream ? { ...UNLIMITED_ACCOUNT, ...UNLIMITED_JETSTREAM } : UNLIMITED_ACCOUNT;
    return {
      keys: pair,
      publicKey: pair.getPublicKey(),
      jwt: encodeJwt(keys, pair.getPublicKey(), accountName, { type: "account", limits }),
    };
  };
  // nats-server 2.9 refuses to start JetStream in operator mode without a system account
  const system = account("SYS");
  const jwt = encodeJwt(keys, publicKey, name, { type: "operator", system_account: system.publicKey });
  return {
    keys,
    publicKey,
    jwt,
    account,
    serverConfig(accounts) {
      const preload = [system, ...accounts].map((a) => `  ${a.publicKey}: "${a.jwt}"`).join("\n");
      return `operator: "${jwt}"\nsystem_account: ${system.publicKey}\nresolver: MEMORY\nresolver_preload: {\n${preload}\n}\n`;
    },
  };
}

/** A .creds file's text, in the layout `nsc generate creds` writes. */
export function credsText(userJwt: string, seed: string): string {
  return (
    `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
    `************************* IMPORTANT *************************\n` +
    `NKEY Seed printed below can be used to sign and prove identity.\n` +
    `NKEYs are sensitive and should be treated as secrets.\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n` +
    `*************************************************************\n`
  );
}

/**
 * A new user of `account`, its JWT signed by the account, written as a
 * .creds file; without `permissions` it may publish and subscribe anywhere
 * (what `nsc add user --allow-pub A,B --allow-sub C` sets is `{ pub: [A, B], sub: [C] }`).
 */
export function createJwtUser(account: JwtAccount, name = "tapio-collectors", permissions: { pub?: string[]; sub?: string[] } = {}): JwtUser {
  const user = createUser();
  const publicKey = user.getPublicKey();
  const pub = permissions.pub ? { allow: permissions.pub } : {};
  const sub = permissions.sub ? { allow: permissions.sub } : {};
  const jwt = encodeJwt(account.keys, publicKey, name, { type: "user", pub, sub, subs: -1, data: -1, payload: -1 });
  const seed = decoder.decode(user.getSeed());
  const credsFile = join(makeTempDir("creds"), "user.creds");
  writeFileSync(credsFile, credsText(jwt, seed), { mode: 0o600 });
  return { publicKey, jwt, credsFile, seed };
}
