// `emit`: hands events to a running agent's ingest API, the shell-script way
// in. One event from flags, or NDJSON lines from stdin sent in batches; a
// full queue (429) is waited out as the agent asks (Retry-After), a few times.
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { loadConfigFile } from "../config/load.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { ingestConfigSchema, UNIX_PREFIX, type IngestConfig } from "../collectors/ingest/schema.ts";
import { EVENTS_PATH } from "../collectors/ingest/api.ts";
import { parseListen } from "../http/server.ts";
import { SEVERITIES } from "../event/event.ts";
import { DEFAULT_EMIT_SOURCE, EXIT, HELP, UsageError, parseFlags } from "./usage.ts";

/** 429s waited out before giving up. */
export const MAX_RETRIES = 5;
/** A Retry-After longer than this is capped: emit is for scripts, which should not hang. */
const MAX_RETRY_AFTER_S = 30;
/** stdin goes out in requests of at most this many events and bytes (the default max_body is 1 MiB). */
const BATCH_EVENTS = 500;
const BATCH_BYTES = 256 * 1024;
/** A request that gets no answer within this fails (wait=published answers within wait_timeout, 30 s by default). */
const REQUEST_TIMEOUT_MS = 60_000;

/** Where the API is: a unix socket or a base URL. */
type Target = { socket: string; url?: undefined } | { url: string; socket?: undefined };

/** The API answered with an error: exit 1, its message printed. */
export class EmitFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EmitFailedError";
  }
}

export async function emitCommand(args: string[]): Promise<number> {
  const flags = parseFlags("emit", args);
  if (flags.help) {
    process.stdout.write(`${HELP.emit}\n`);
    return EXIT.ok;
  }
  if (flags.socket !== undefined && flags.url !== undefined) throw new UsageError("emit: --socket and --url name the same thing; pass one");
  if (flags.type === undefined && (flags.severity !== undefined || flags.data !== undefined)) throw new UsageError("emit: --severity and --data describe the event of --type; without --type, events are read from stdin");
  if (flags.severity !== undefined && !(SEVERITIES as readonly string[]).includes(flags.severity)) throw new UsageError(`emit: --severity: expected one of ${SEVERITIES.join(", ")}, got "${flags.severity}"`);
  const source = flags.source ?? DEFAULT_EMIT_SOURCE;
  const { target, tokenFile } = await resolveTarget(flags);
  const token = tokenFile === undefined ? undefined : readToken(tokenFile);
  const send = (body: string, ndjson: boolean) => post(target, token, body, ndjson, flags.wait === true);

  if (flags.type !== undefined) {
    const event: Record<string, unknown> = { source, type: flags.type };
    if (flags.severity !== undefined) event.severity = flags.severity;
    if (flags.data !== undefined) event.event_data = parseData(flags.data);
    try {
      await send(JSON.stringify(event), false);
    } catch (err) {
      if (err instanceof RequestRefused) throw new EmitFailedError(err.describe());
      throw err;
    }
    return EXIT.ok;
  }
  const sent = await sendStdin(source, send);
  if (sent === 0) process.stderr.write("tapio-collectors emit: no events on stdin (one JSON object per line)\n");
  return EXIT.ok;
}

async function resolveTarget(flags: { socket?: string; url?: string; config?: string; "token-file"?: string }): Promise<{ target: Target; tokenFile?: string }> {
  if (flags.socket !== undefined) return { target: { socket: flags.socket }, tokenFile: flags["token-file"] };
  if (flags.url !== undefined) return { target: { url: baseUrl(flags.url) }, tokenFile: flags["token-file"] };
  let config: IngestConfig;
  if (flags.config !== undefined) {
    const loaded = await loadConfigFile(flags.config, builtinRegistry());
    const ingest = Object.entries(loaded.collectors).filter(([name]) => name === "ingest" || name.startsWith("ingest/"));
    if (ingest.length !== 1) throw new UsageError(`emit: ${flags.config} has ${ingest.length === 0 ? "no ingest collector" : `${ingest.length} ingest collectors (${ingest.map(([n]) => n).join(", ")})`}; pass --socket or --url`);
    config = ingest[0]![1].config as IngestConfig;
  } else {
    config = v.parse(ingestConfigSchema, undefined);
  }
  const tokenFile = flags["token-file"] ?? config.token_file;
  if (config.listen.startsWith(UNIX_PREFIX)) return { target: { socket: config.listen.slice(UNIX_PREFIX.length) }, tokenFile };
  const { hostname, port } = parseListen(config.listen);
  if (port === 0) throw new UsageError(`emit: the ingest listen address is "${config.listen}" (a free port picked at start); pass --url with the port the agent logged`);
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
  return { target: { url: `http://${host.includes(":") ? `[${host}]` : host}:${port}` }, tokenFile };
}

function baseUrl(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new UsageError(`emit: --url: expected an address like http://127.0.0.1:9091, got "${text}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`emit: --url: expected an http:// or https:// address, got "${text}"`);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "").replace(/\/v1\/events$/, "")}`;
}

function readToken(path: string): string {
  try {
    const token = readFileSync(path, "utf8").trim();
    if (token === "") throw new Error("it is empty");
    return token;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied for this user" : (err as Error).message;
    throw new UsageError(`emit: --token-file ${path}: ${why}`);
  }
}

function parseData(text: string): unknown {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`emit: --data: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new UsageError(`emit: --data: expected a JSON object of event_data members, like '{"custom":{"disk":"92%"}}'`);
  }
  return data;
}

/** Reads NDJSON from stdin and sends it in batches; lines without a source get `source`. Returns how many events were sent. */
async function sendStdin(source: string, send: (body: string, ndjson: boolean) => Promise<void>): Promise<number> {
  let batch: string[] = [];
  let lines: number[] = [];
  let bytes = 0;
  let sent = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      await send(`${batch.join("\n")}\n`, true);
    } catch (err) {
      if (err instanceof RequestRefused) throw new EmitFailedError(`${err.describe(lines)}${sent > 0 ? `\n(the ${sent} event(s) before stdin line ${lines[0]} were accepted)` : ""}`);
      throw err;
    }
    sent += batch.length;
    batch = [];
    lines = [];
    bytes = 0;
  };
  let lineNo = 0;
  for await (const line of stdinLines()) {
    lineNo++;
    if (line.trim() === "") continue;
    const text = withSource(line, source);
    if (batch.length >= BATCH_EVENTS || (batch.length > 0 && bytes + text.length > BATCH_BYTES)) await flush();
    batch.push(text);
    lines.push(lineNo);
    bytes += text.length + 1;
  }
  await flush();
  return sent;
}

/** The line with `source` added when it is a JSON object without one; anything else goes as it is (the API names its problem). */
function withSource(line: string, source: string): string {
  try {
    const value = JSON.parse(line);
    if (typeof value === "object" && value !== null && !Array.isArray(value) && !("source" in value)) return JSON.stringify({ source, ...value });
  } catch {}
  return line;
}

async function* stdinLines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of Bun.stdin.stream()) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl).replace(/\r$/, "");
      rest = rest.slice(nl + 1);
    }
  }
  rest += decoder.decode();
  if (rest !== "") yield rest.replace(/\r$/, "");
}

/** The API refused a request (400, 401, 413, 5xx): what it said, in lines for a person. */
class RequestRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: { error?: string; invalid?: Array<{ index: number; line?: number; problems: string[] }>; invalid_count?: number; dropped?: Array<{ index: number; reason: string; detail: string }> },
  ) {
    super(`the ingest API answered ${status}: ${body.error ?? "(no reason given)"}`);
  }

  /** The message, with each listed problem; `lines` maps an event's index in the request to its stdin line. */
  describe(lines?: number[]): string {
    const where = (index: number) => (lines ? `stdin line ${lines[index]}` : `event ${index}`);
    const out = [this.message];
    for (const e of this.body.invalid ?? []) for (const p of e.problems) out.push(`  ${where(e.index)}: ${p}`);
    const listed = this.body.invalid?.length ?? 0;
    if (this.body.invalid_count !== undefined && this.body.invalid_count > listed) out.push(`  ... and ${this.body.invalid_count - listed} more invalid event(s)`);
    for (const d of this.body.dropped ?? []) out.push(`  ${where(d.index)}: dropped: ${d.reason} (${d.detail})`);
    return out.join("\n");
  }
}

async function post(target: Target, token: string | undefined, body: string, ndjson: boolean, waitPublished: boolean): Promise<void> {
  const path = `${EVENTS_PATH}${waitPublished ? "?wait=published" : ""}`;
  const where = target.socket !== undefined ? `unix://${target.socket}` : target.url;
  const headers: Record<string, string> = { "content-type": ndjson ? "application/x-ndjson" : "application/json" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(target.socket !== undefined ? `http://localhost${path}` : `${target.url}${path}`, {
        method: "POST",
        body,
        headers,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(target.socket !== undefined ? { unix: target.socket } : {}),
      });
    } catch (err) {
      throw new EmitFailedError(unreachable(where, err));
    }
    if (response.status === 202) return;
    const text = await response.text();
    let answer: RequestRefused["body"];
    try {
      answer = JSON.parse(text);
    } catch {
      answer = { error: text.trim().slice(0, 200) || response.statusText };
    }
    if (response.status === 429 && attempt < MAX_RETRIES) {
      const after = Number(response.headers.get("retry-after") ?? Number.NaN);
      const seconds = Number.isFinite(after) && after >= 0 ? Math.min(MAX_RETRY_AFTER_S, after) : 1;
      process.stderr.write(`tapio-collectors emit: the agent's queue is full (429); trying again in ${seconds}s (${attempt + 1} of ${MAX_RETRIES})\n`);
      await Bun.sleep(seconds * 1000);
      continue;
    }
    const refused = new RequestRefused(response.status, answer);
    if (response.status === 429) throw new EmitFailedError(`${refused.message}\n  (still full after ${MAX_RETRIES} tries)`);
    throw refused;
  }
}

function unreachable(where: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const hint = "is the agent running with an ingest collector listening there?";
  if (code === "ENOENT") return `cannot reach the ingest API at ${where}: no such socket (${hint})`;
  if (code === "ECONNREFUSED") return `cannot reach the ingest API at ${where}: connection refused (${hint})`;
  if (code === "EACCES") return `cannot reach the ingest API at ${where}: permission denied for this user (socket_mode and the socket's group say who may send)`;
  if ((err as Error).name === "TimeoutError") return `the ingest API at ${where} did not answer within ${REQUEST_TIMEOUT_MS / 1000}s`;
  return `cannot reach the ingest API at ${where}: ${(err as Error).message}`;
}
