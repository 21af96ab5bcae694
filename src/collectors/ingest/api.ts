// POST /v1/events: what a sender gets back, and when. Every request is
// taken whole or refused whole; an answer never waits on a full queue
// (429), and with ?wait=published it comes once every event is published or
// spooled, or names what was dropped and why.
import type { Server } from "bun";
import type { CollectorContext, EventFate } from "../../orchestrator/collector.ts";
import { DROP_REASONS } from "../../event/drop-reasons.ts";
import { LogThrottle } from "../../log.ts";
import { checkEvents, parseBody } from "./body.ts";
import type { BearerToken } from "./token.ts";

export const EVENTS_PATH = "/v1/events";
/** Seconds a sender is told to wait after a 429: the workers empty a full queue within about that. */
export const RETRY_AFTER_SECONDS = 1;
const NDJSON = /^application\/(?:x-)?ndjson\b/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export interface IngestApiOptions {
  ctx: CollectorContext;
  /** max_body in bytes */
  maxBody: number;
  /** wait_timeout in ms */
  waitTimeoutMs: number;
  token: BearerToken | undefined;
}

type Answer = { status: number; body: Record<string, unknown>; headers?: Record<string, string> };

export class IngestApi {
  readonly #o: IngestApiOptions;
  readonly #throttle = new LogThrottle();
  #draining = false;
  /** token_file could not be read the last time it was looked at */
  #tokenProblem = false;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(options: IngestApiOptions) {
    this.#o = options;
  }

  async handle(req: Request, server: Server<undefined>): Promise<Response> {
    const answer = await this.#answer(req, server);
    // A newline after the JSON, so that curl's output ends its line.
    return new Response(`${JSON.stringify(answer.body)}\n`, { status: answer.status, headers: { "content-type": "application/json", ...answer.headers } });
  }

  /** From now on new requests get 503; resolves once those under way are answered, or after `ms`. */
  drain(ms: number): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#idle = done;
    });
  }

  async #answer(req: Request, server: Server<undefined>): Promise<Answer> {
    const url = new URL(req.url);
    if (url.pathname !== EVENTS_PATH) return { status: 404, body: { error: `not found: the API is POST ${EVENTS_PATH}` } };
    if (req.method !== "POST") return { status: 405, body: { error: `method ${req.method} not allowed: POST ${EVENTS_PATH}` }, headers: { allow: "POST" } };
    if (this.#draining) return { status: 503, body: { error: "the agent is shutting down: send again later" } };
    const token = this.#o.token;
    if (token) {
      this.#checkToken(token);
      if (!token.matches(req.headers.get("authorization"))) {
        this.#warn("unauthorized", "a request without the right bearer token was refused (401)");
        return { status: 401, body: { error: "missing or wrong bearer token: send Authorization: Bearer <the token in token_file>" }, headers: { "www-authenticate": 'Bearer realm="tapio-collectors ingest"' } };
      }
    }
    const wait = url.searchParams.get("wait");
    if (wait !== null && wait !== "published") return { status: 400, body: { error: `wait: expected "published", got ${JSON.stringify(wait)}` } };
    this.#inFlight++;
    try {
      return await this.#accept(req, server, wait === "published");
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #accept(req: Request, server: Server<undefined>, waitPublished: boolean): Promise<Answer> {
    const { ctx, maxBody } = this.#o;
    const body = await readBody(req, maxBody);
    if (body === undefined) return { status: 413, body: { error: `the body is larger than max_body (${maxBody} bytes): send fewer events per request` } };
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return this.#badRequest({ error: "the body is not valid UTF-8" });
    }
    const parsed = parseBody(text, NDJSON.test(req.headers.get("content-type") ?? ""));
    if (!parsed.ok) return this.#badRequest({ error: parsed.error });
    const checked = checkEvents(parsed.items);
    if (!checked.ok) {
      const n = parsed.items.length;
      return this.#badRequest({
        error: `${checked.invalid} of ${n} event(s) invalid; none was accepted`,
        invalid_count: checked.invalid,
        invalid: checked.listed,
      });
    }
    const emissions = checked.emissions;
    const result = ctx.emitAll(emissions, { fates: waitPublished });
    switch (result.status) {
      case "stopped":
        return { status: 503, body: { error: "the agent is shutting down: send again later" } };
      case "full":
        if (result.never) return { status: 413, body: { error: `${emissions.length} events are more than the agent's queue holds at once (orchestrator.buffer.max_events): send fewer per request` } };
        this.#warn("full", "the queue is full: requests are refused with 429 until it has room");
        return {
          status: 429,
          body: { error: `the agent's queue is full: none of the ${emissions.length} event(s) was accepted; send them again after ${RETRY_AFTER_SECONDS}s` },
          headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
        };
      case "invalid":
        return this.#badRequest({ error: `event ${result.index}: ${result.message}; none was accepted`, invalid_count: 1, invalid: [{ index: result.index, problems: [result.message] }] });
      case "queued":
        if (!result.fates) return { status: 202, body: { accepted: emissions.length } };
        server.timeout(req, Math.ceil(this.#o.waitTimeoutMs / 1000) + 10);
        return this.#waitForFates(emissions.length, result.fates);
    }
  }

  async #waitForFates(accepted: number, fates: Promise<EventFate[]>): Promise<Answer> {
    const timeoutMs = this.#o.waitTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const settled = await Promise.race([fates, timedOut]);
    clearTimeout(timer);
    if (settled === undefined) {
      return {
        status: 504,
        body: {
          accepted,
          error: `not every event was published or spooled within wait_timeout (${timeoutMs / 1000}s); they were accepted and are delivered as usual: do not send them again`,
        },
      };
    }
    const dropped = settled.flatMap((fate, index) => (fate === undefined ? [] : [{ index, reason: fate, detail: fate === "lost" ? "the agent stopped before NATS or the spool took it" : DROP_REASONS[fate] }]));
    if (dropped.length === 0) return { status: 202, body: { accepted } };
    const first = dropped[0]!;
    this.#warn("dropped", `${dropped.length} accepted event(s) were dropped before they were published (${first.reason}); the sender was told (502)`);
    return {
      status: 502,
      body: { accepted, error: `${dropped.length} of ${accepted} accepted event(s) were dropped, not published: ${first.reason} (${first.detail})`, dropped },
    };
  }

  /** Reads token_file again if it changed; health says while it cannot be read. */
  #checkToken(token: BearerToken): void {
    const problem = token.refresh();
    if (problem !== undefined) {
      this.#tokenProblem = true;
      this.#o.ctx.degraded(problem);
    } else if (this.#tokenProblem) {
      this.#tokenProblem = false;
      this.#o.ctx.healthy();
    }
  }

  /** A 400, counted as a parse error (orchestrator_collector_parse_errors_total{source="request"}) and logged rate-limited. */
  #badRequest(body: { error: string } & Record<string, unknown>): Answer {
    this.#o.ctx.parseError("request", body.error);
    return { status: 400, body };
  }

  /** A warning, rate-limited, naming the collector (ingest, or one of its instances). */
  #warn(key: string, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#o.ctx.log.warn(suppressed > 0 ? { suppressed } : {}, `${this.#o.ctx.name}: ${message}`);
  }
}

/**
 * The body, or undefined when it is larger than `max`: refused by its
 * Content-Length before reading, or as soon as that many bytes arrived
 * (chunked), never buffering more.
 */
async function readBody(req: Request, max: number): Promise<Uint8Array | undefined> {
  const length = Number(req.headers.get("content-length") ?? Number.NaN);
  if (Number.isSafeInteger(length)) {
    if (length > max) return undefined;
    return new Uint8Array(await req.arrayBuffer());
  }
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
