// The agent with an ingest collector, as a real process against a real
// nats-server (JetStream), and a client for its API over TCP or a unix socket.
import { join } from "node:path";
import { writeConfig } from "../../helpers/agent.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { startAgent, msgStartsWith, type AgentProcess } from "../../fault/harness.ts";

export interface IngestAgent {
  readonly agent: AgentProcess;
  /** "unix:///path" or "http://127.0.0.1:port", as the agent logged it */
  readonly address: string;
  /** the config file, to rewrite for a reload */
  readonly configFile: string;
  readonly dir: string;
  post(body: unknown, options?: PostOptions): Promise<Answer>;
}

export interface PostOptions {
  /** NDJSON: `body` is an array, sent one JSON per line */
  ndjson?: boolean;
  wait?: boolean;
  token?: string;
  query?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export interface AgentSpec {
  nats: string;
  /** nats.subject */
  subject?: string;
  stream?: string;
  /** the collector's config, as YAML flow-mapping entries; `listen` defaults to a free loopback port */
  ingest?: string;
  /** the collector's key under collectors (default "ingest") */
  name?: string;
  /** more orchestrator keys, as YAML flow-mapping entries */
  orchestrator?: string;
  /** the spool section, as a YAML flow mapping; default: one in the temp dir */
  spool?: string;
  /** more nats keys */
  natsExtra?: string;
  /** run this instead of bun src/main.ts (the compiled binary) */
  command?: string[];
  /** more top-level sections (destinations, routes), as YAML */
  extra?: string;
}

export function ndjson(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join("\n") + "\n";
}

/** A client for the API at `address` ("unix:///path" or "http://host:port"). */
export function client(address: string) {
  return async (body: unknown, o: PostOptions = {}): Promise<Answer> => {
    const query = o.query ?? (o.wait ? "?wait=published" : "");
    const path = `${o.path ?? "/v1/events"}${query}`;
    const headers: Record<string, string> = { "content-type": o.ndjson ? "application/x-ndjson" : "application/json", ...o.headers };
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    const text = o.ndjson ? ndjson(body as unknown[]) : typeof body === "string" ? body : JSON.stringify(body);
    const init: RequestInit & { unix?: string } = { method: o.method ?? "POST", headers, body: o.method === "GET" ? undefined : text };
    const unix = address.startsWith("unix://") ? address.slice("unix://".length) : undefined;
    if (unix) init.unix = unix;
    const response = await fetch(unix ? `http://localhost${path}` : `${address}${path}`, init);
    const raw = await response.text();
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {}
    return { status: response.status, body: parsed, headers: response.headers };
  };
}

/** Starts the agent and waits for its "ingest API on ..." line. */
export async function startIngestAgent(spec: AgentSpec): Promise<IngestAgent> {
  const dir = makeTempDir("ingest");
  const ingest = spec.ingest ?? "";
  const listen = /(^|,\s*)listen:/.test(ingest) ? "" : `listen: "127.0.0.1:0"${ingest ? ", " : ""}`;
  const configFile = writeConfig(configText(spec, dir, `${listen}${ingest}`));
  const agent = startAgent(["-c", configFile], spec.command);
  const line = await agent.waitForLog(msgStartsWith("ingest API on"), "the ingest API listening", 20_000);
  const address = line.listen as string;
  return { agent, address, configFile, dir, post: client(address) };
}

export function configText(spec: AgentSpec, dir: string, ingest: string): string {
  return `
orchestrator: { shutdown_timeout: 10s${spec.orchestrator ? `, ${spec.orchestrator}` : ""} }
nats: { url: "${spec.nats}", subject: ${spec.subject ?? "tapio.events"}, stream: { name: ${spec.stream ?? "INGEST"} }, reconnect_wait: 100ms${spec.natsExtra ? `, ${spec.natsExtra}` : ""} }
spool: ${spec.spool ?? `{ path: "${join(dir, "spool.db")}" }`}
collectors:
  ${spec.name ?? "ingest"}: { config: { ${ingest} } }
${spec.extra ?? ""}
`;
}

/** An event input as a sender writes it. */
export function input(source: string, seq: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { source, type: "node.check_failed", severity: "warning", event_data: { custom: { seq: String(seq) } }, ...extra };
}
