// The bearer token senders must present, from token_file: read at start (a
// file that cannot be read fails the start, saying why) and again whenever
// the file changes, so a rotated token needs no restart. Compared in
// constant time, as digests: neither its content nor its length leaks.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

/** How often the file is looked at for a change, at most. */
const CHECK_EVERY_MS = 1000;

const digest = (text: string) => createHash("sha256").update(text).digest();

export class BearerToken {
  #digest: Buffer;
  #stamp: string;
  #checkedAt = Date.now();
  #problem: string | undefined;

  private constructor(
    readonly path: string,
    token: { digest: Buffer; stamp: string },
  ) {
    this.#digest = token.digest;
    this.#stamp = token.stamp;
  }

  /** Throws an Error naming the file and the cause when it cannot be read or is empty. */
  static read(path: string): BearerToken {
    return new BearerToken(path, readToken(path));
  }

  /**
   * Re-reads the file if it changed (looked at once a second at most).
   * Returns why a file that can no longer be read was not (the last token
   * stays in use), or undefined.
   */
  refresh(): string | undefined {
    const now = Date.now();
    if (now - this.#checkedAt < CHECK_EVERY_MS) return this.#problem;
    this.#checkedAt = now;
    try {
      let stamp: string;
      try {
        stamp = stampOf(this.path);
      } catch (err) {
        throw unreadable(this.path, err);
      }
      if (stamp !== this.#stamp) {
        const next = readToken(this.path);
        this.#digest = next.digest;
        this.#stamp = next.stamp;
      }
      this.#problem = undefined;
    } catch (err) {
      this.#problem = `${(err as Error).message}; the last token read stays in use`;
    }
    return this.#problem;
  }

  /** True when `authorization` is "Bearer <the token>". */
  matches(authorization: string | null): boolean {
    if (authorization === null) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match !== null && timingSafeEqual(digest(match[1]!), this.#digest);
  }
}

function stampOf(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

function unreadable(path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === "ENOENT" ? "does not exist" : code === "EACCES" || code === "EPERM" ? "permission denied for this user" : (err as Error).message;
  return new Error(`token_file ${path}: ${why}`);
}

function readToken(path: string): { digest: Buffer; stamp: string } {
  let text: string;
  let stamp: string;
  try {
    stamp = stampOf(path);
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw unreadable(path, err);
  }
  if (text === "") throw new Error(`token_file ${path} is empty`);
  if (/\s/.test(text)) throw new Error(`token_file ${path} holds more than one word: a bearer token has no spaces`);
  return { digest: digest(text), stamp };
}
