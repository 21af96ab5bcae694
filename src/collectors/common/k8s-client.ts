// The HTTP(S) client the kubelet and kubeapi collectors share: it sends the
// service-account token and verifies the server against a CA file.
import * as v from "valibot";
import { byteSize } from "../../config/kit.ts";
import { readText } from "./paths.ts";
import { obj, parseJson, str } from "./json.ts";

/**
 * The `max_response_bytes` key of the collectors that use this client: the
 * most a response body (or one line of a watch stream) may hold. Far above
 * any real node's /pods or /stats/summary or list page; a body past it is
 * refused (a parse error) rather than held in memory.
 */
export const maxResponseBytesSchema = () => v.optional(byteSize({ min: 1024 }), 64 * 1024 * 1024);

/** http(s)://host[:port] with an optional path prefix, no query: what `address` and `api_server` accept. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "" && url.search === "" && url.hash === "" && url.username === "";
  } catch {
    return false;
  }
}

/** The body was longer than max_response_bytes: not read past it. */
export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";
}

/** The server answered with a status outside 2xx. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

export interface K8sClientOptions {
  /** e.g. https://127.0.0.1:10250 or https://kubernetes.default.svc */
  readonly baseUrl: string;
  readonly tokenFile: string;
  readonly caFile: string;
  /** https without verifying the server certificate */
  readonly insecure: boolean;
  /** what the server is, for messages: "kubelet", "API server" */
  readonly what: string;
  /** appended to TLS verification failures: what the user can change */
  readonly tlsHint: string;
  /** max_response_bytes: the longest body getText reads */
  readonly maxResponseBytes: number;
}

// Error codes of a certificate that did not verify (BoringSSL/OpenSSL names, as Bun reports them).
const TLS_CODE = /CERT|SIGNATURE|ISSUER|SELF_SIGNED|TLS|SSL/;
const PEM_CERT = "-----BEGIN CERTIFICATE-----";
// Enough of an error body to explain it, not a whole HTML page.
const BODY_EXCERPT = 200;
// What is read of an error body to find that excerpt (an API server Status is a few hundred bytes).
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * Reads the token and the CA for every request: projected service-account
 * tokens rotate (about hourly), and a file read is cheap next to a request.
 */
export class K8sClient {
  readonly #o: K8sClientOptions;
  readonly #base: string;
  readonly #https: boolean;

  constructor(options: K8sClientOptions) {
    this.#o = options;
    this.#base = options.baseUrl.replace(/\/+$/, "");
    this.#https = this.#base.startsWith("https:");
  }

  /**
   * GET `path` (which starts with "/"). Resolves with a 2xx response whose body
   * the caller reads; a missing token or CA, a refused connection, a TLS
   * failure or another status rejects with a message that says what to check.
   */
  async get(path: string, signal: AbortSignal): Promise<Response> {
    const o = this.#o;
    const token = (await readText(o.tokenFile).catch((err: Error) => Promise.reject(new Error(`token_file: ${err.message}`)))).trim();
    if (token === "") throw new Error(`token_file ${o.tokenFile} is empty`);
    const url = this.#base + path;
    const init: BunFetchRequestInit = {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      signal,
      tls: await this.#tls(),
    };
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      if (signal.aborted) throw err;
      throw this.#describe(err);
    }
    if (response.ok) return response;
    const body = await readAtMost(response, ERROR_BODY_BYTES).then(({ text }) => text, () => "");
    throw new HttpStatusError(response.status, this.#statusMessage(response, path, body));
  }

  /**
   * GET `path` and read its whole body, all within `timeoutMs`. A body longer
   * than maxResponseBytes (by its Content-Length, or as it streams in) rejects
   * with a ResponseTooLargeError, having read no more than that.
   */
  async getText(path: string, signal: AbortSignal, timeoutMs: number): Promise<string> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, deadline]);
    try {
      const response = await this.get(path, both);
      const limit = this.#o.maxResponseBytes;
      const { text, complete } = await readAtMost(response, limit);
      if (!complete) throw new ResponseTooLargeError(`the ${this.#o.what} answered ${path.split("?")[0]} with a body larger than max_response_bytes (${limit} bytes)`);
      return text;
    } catch (err) {
      if (deadline.aborted && !signal.aborted) {
        throw new Error(`the ${this.#o.what} at ${this.#base} did not answer ${path.split("?")[0]} within ${timeoutMs / 1000}s`);
      }
      throw err;
    }
  }

  async #tls(): Promise<BunFetchRequestInitTLS | undefined> {
    if (!this.#https) return undefined;
    if (this.#o.insecure) return { rejectUnauthorized: false };
    const ca = await readText(this.#o.caFile).catch((err: Error) => Promise.reject(new Error(`ca_file: ${err.message}`)));
    // Bun reports a CA it cannot read only as "FailedToOpenSocket": say what is wrong instead.
    if (!ca.includes(PEM_CERT)) throw new Error(`ca_file ${this.#o.caFile} holds no PEM certificate`);
    return { ca };
  }

  #describe(err: unknown): Error {
    const { what, tlsHint } = this.#o;
    const code = String((err as { code?: unknown }).code ?? "");
    const message = err instanceof Error ? err.message : String(err);
    if (TLS_CODE.test(code)) {
      return new Error(`TLS verification of the ${what} at ${this.#base} failed (${code}: ${message}): ${tlsHint}`);
    }
    if (code === "ECONNREFUSED") return new Error(`cannot connect to the ${what} at ${this.#base}: connection refused`);
    return new Error(`request to the ${what} at ${this.#base} failed: ${code ? `${code}: ` : ""}${message}`);
  }

  #statusMessage(response: Response, path: string, body: string): string {
    const { what, tokenFile } = this.#o;
    const where = `the ${what} answered ${path.split("?")[0]} with HTTP ${response.status}`;
    if (response.status === 401) return `${where}: the token in ${tokenFile} was not accepted`;
    if (response.status === 403) return `${where}: the service account may not read it (check its RBAC rules)`;
    // The API server explains itself in a Status object; others send text.
    const parsed = parseJson(body);
    const excerpt = ((parsed.ok && str(obj(parsed.value)?.message)) || body).slice(0, BODY_EXCERPT).trim();
    return excerpt ? `${where}: ${excerpt}` : where;
  }
}

/**
 * The body as text, read as it streams in, up to `limit` bytes: `complete`
 * is false (and the connection closed) when there was more. A Content-Length
 * above the limit is refused before anything is read.
 */
async function readAtMost(response: Response, limit: number): Promise<{ text: string; complete: boolean }> {
  if (!response.body) return { text: "", complete: true };
  if (Number(response.headers.get("content-length")) > limit) {
    await response.body.cancel();
    return { text: "", complete: false };
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const pieces: string[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      pieces.push(decoder.decode(value.subarray(0, value.byteLength - (total - limit)), { stream: true }));
      return { text: pieces.join(""), complete: false };
    }
    pieces.push(decoder.decode(value, { stream: true }));
  }
  pieces.push(decoder.decode());
  return { text: pieces.join(""), complete: true };
}
