// `status`: the agent's /status document as a report for a person, or as
// JSON. Also where `top` gets the agent's URL and the document from.
import type { StatusDocument } from "../http/server.ts";
import { parseListen } from "../http/server.ts";
import { loadConfigFile } from "../config/load.ts";
import { DEFAULT_HTTP_LISTEN } from "../config/schema.ts";
import { builtinRegistry } from "../collectors/index.ts";
import { EXIT, HELP, UsageError, parseFlags } from "./usage.ts";
import { formatAge, formatBytes, formatCount, formatDuration, formatPercent, renderTable, truncate } from "./table.ts";


/** How long a /status request may take before the agent counts as unreachable. */
export const STATUS_TIMEOUT_MS = 5000;


/** The agent did not answer /status usefully: exit 1, with this message and no stack. */
export class AgentUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentUnreachableError";
  }
}

export async function statusCommand(args: string[]): Promise<number> {
  const flags = parseFlags("status", args);
  if (flags.help) {
    process.stdout.write(`${HELP.status}\n`);
    return EXIT.ok;
  }
  const base = await resolveAgentUrl("status", flags.url, flags.config);
  const doc = await fetchStatus(base);
  process.stdout.write(flags.json ? `${JSON.stringify(doc, null, 2)}\n` : `${renderStatus(doc)}\n`);
  return EXIT.ok;
}

/**
 * The agent's base URL: --url, else the http.listen of --config, else the
 * default. A bare "host:port" gets http://; a trailing /status is dropped.
 */
export async function resolveAgentUrl(command: string, url: string | undefined, config: string | undefined): Promise<string> {
  if (url !== undefined) return normalizeAgentUrl(command, url);
  if (config === undefined) return agentUrl(DEFAULT_HTTP_LISTEN);
  const loaded = await loadConfigFile(config, builtinRegistry());
  if (!loaded.http.enabled) throw new UsageError(`${command}: ${config} disables the HTTP endpoints (http.enabled: false); pass --url`);
  if (parseListen(loaded.http.listen).port === 0) {
    throw new UsageError(`${command}: http.listen in ${config} is "${loaded.http.listen}" (a free port picked at start); pass --url with the port the agent logged`);
  }
  return agentUrl(loaded.http.listen);
}

/** The URL of an agent whose endpoints listen at `listen` (http.listen). */
function agentUrl(listen: string): string {
  const { hostname, port } = parseListen(listen);
  // all interfaces: talk to it over loopback
  const host = hostname === "0.0.0.0" || hostname === "" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function normalizeAgentUrl(command: string, text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new UsageError(`${command}: --url: expected an address like ${agentUrl(DEFAULT_HTTP_LISTEN)}, got "${text}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`${command}: --url: expected an http:// or https:// address, got "${text}"`);
  }
  const path = parsed.pathname.replace(/\/+$/, "").replace(/\/status$/, "");
  return `${parsed.origin}${path}`;
}

/** GET <base>/status. Any failure is an AgentUnreachableError naming the URL. */
export async function fetchStatus(base: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<StatusDocument> {
  const url = `${base}/status`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
  } catch (err) {
    throw new AgentUnreachableError(`cannot reach the agent at ${url}: ${fetchFailure(err, timeoutMs)}`);
  }
  const body = await res.text().catch(() => "");
  if (!res.ok) throw new AgentUnreachableError(`the agent at ${url} answered ${res.status} ${res.statusText}${body ? `: ${truncate(body.trim(), 200)}` : ""}`);
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new AgentUnreachableError(`${url} did not answer with JSON (is it a tapio-collectors agent?): ${truncate(body.trim(), 120)}`);
  }
  if (!isStatusDocument(doc)) throw new AgentUnreachableError(`${url} did not answer with a tapio-collectors status document`);
  return doc;
}

function fetchFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${formatDuration(timeoutMs / 1000)}`;
  if (e.code === "ECONNREFUSED" || e.code === "ConnectionRefused") return "connection refused (is the agent running, with http.listen on this address?)";
  return (e.message ?? String(err)).replace(/^[A-Z_]+: /, "");
}

function isStatusDocument(doc: unknown): doc is StatusDocument {
  if (typeof doc !== "object" || doc === null) return false;
  const d = doc as Partial<StatusDocument>;
  return typeof d.agent === "object" && Array.isArray(d.collectors) && typeof d.queue === "object" && typeof d.delivery === "object";
}

/** The sum of a collector's drops over every reason. */
export function droppedTotal(dropped: Record<string, number> | undefined): number {
  let n = 0;
  for (const v of Object.values(dropped ?? {})) n += v;
  return n;
}

/** The report `status` prints. */
export function renderStatus(doc: StatusDocument, now = Date.now()): string {
  const { agent, health, queue, delivery } = doc;
  const out: string[] = [];
  out.push(`tapio-collectors ${agent.version} (bun ${agent.bun}), pid ${agent.pid}, up ${formatDuration(agent.uptime_seconds)}`);
  out.push(`ready:  ${agent.ready ? "yes" : "NO"} (${agent.ready_reason})`);
  out.push(`health: ${health.state}`);
  for (const p of health.problems) out.push(`  - ${p}`);

  out.push("", "Collectors");
  if (doc.collectors.length === 0) out.push("  none running");
  else {
    const rows = doc.collectors.map((c) => [
      c.name,
      c.state,
      formatCount(c.events_accepted),
      formatCount(c.events_published),
      formatCount(droppedTotal(c.events_dropped)),
      formatCount(c.events_spooled),
      String(c.restarts),
      formatAge(c.last_event_time, now),
      c.last_error ? truncate(c.last_error, 48) : "-",
    ]);
    out.push(
      indent(
        renderTable(
          [
            { header: "NAME" },
            { header: "STATE" },
            { header: "ACCEPTED", align: "right" },
            { header: "PUBLISHED", align: "right" },
            { header: "DROPPED", align: "right" },
            { header: "SPOOLED", align: "right" },
            { header: "RESTARTS", align: "right" },
            { header: "LAST EVENT" },
            { header: "LAST ERROR" },
          ],
          rows,
        ),
      ),
    );
    const reasons = doc.collectors.flatMap((c) => Object.entries(c.events_dropped ?? {}).map(([reason, n]) => `${c.name} ${reason}=${formatCount(n)}`));
    if (reasons.length > 0) out.push(`  drops by reason: ${reasons.join(", ")}`);
  }

  const destinations = Object.entries(doc.destinations ?? {});
  // With several destinations, these sections are the default one's; the others are in the table below.
  const which = destinations.length > 1 ? " (destination default)" : "";
  out.push("", `Queue${which}`);
  out.push(`  ${formatCount(queue.length)} event(s), ${formatBytes(queue.bytes)}, ${formatPercent(queue.utilization)} full${queue.waiting > 0 ? `, ${queue.waiting} producer(s) waiting` : ""}`);

  const nats = delivery.nats;
  out.push("", `NATS${which}`);
  const state = nats.closed ? "closed (gave up)" : nats.connected ? `connected${nats.server ? ` to ${nats.server}` : ""}` : `DISCONNECTED${nats.server ? ` (last server ${nats.server})` : ""}`;
  out.push(`  ${nats.mode}, ${state}, ${nats.reconnects} reconnect(s)`);
  out.push(`  last error: ${nats.lastError ? truncate(nats.lastError, 100) : "-"}`);
  const errors = Object.entries(doc.publish_errors ?? {});
  if (errors.length > 0) out.push(`  publish errors: ${errors.map(([reason, n]) => `${reason}=${formatCount(n)}`).join(", ")}`);

  out.push("", `Spool${which}`);
  const spool = delivery.spool;
  if (!spool) out.push("  disabled");
  else {
    const oldest = spool.oldest_age_seconds === undefined ? "" : `, oldest ${formatDuration(spool.oldest_age_seconds)}`;
    out.push(`  ${formatCount(spool.depth)} event(s), ${formatBytes(spool.bytes)}${oldest} (${spool.path})`);
  }

  out.push("", `Circuits${which}`);
  if (delivery.circuits.length === 0) out.push("  none yet");
  else {
    const rows = delivery.circuits.map((c) => [c.subject, c.state.replace("_", "-"), String(c.consecutive_failures), String(c.opens)]);
    out.push(indent(renderTable([{ header: "SUBJECT" }, { header: "STATE" }, { header: "FAILURES", align: "right" }, { header: "OPENS", align: "right" }], rows)));
  }
  if (destinations.length > 1) {
    out.push("", "Destinations");
    out.push(indent(destinationsTable(destinations)));
  }
  return out.join("\n");
}

/** One row per destination: connection, queue, spool, and its books. */
export function destinationsTable(destinations: Array<[string, NonNullable<StatusDocument["destinations"]>[string]]>): string {
  const rows = destinations.map(([name, d]) => {
    const open = d.circuits.filter((c) => c.state !== "closed").length;
    const nats = d.nats.closed ? "closed" : d.nats.connected ? "connected" : "DISCONNECTED";
    return [
      name,
      `${nats}${open > 0 ? `, ${open} circuit(s) open` : ""}`,
      formatCount(d.queue.length),
      d.spool ? formatCount(d.spool.depth) : "disabled",
      formatCount(d.ledger.accepted),
      formatCount(d.ledger.published),
      formatCount(d.ledger.discarded),
      formatCount(d.ledger.lost),
    ];
  });
  return renderTable(
    [
      { header: "DESTINATION" },
      { header: "NATS" },
      { header: "QUEUED", align: "right" },
      { header: "SPOOLED", align: "right" },
      { header: "ACCEPTED", align: "right" },
      { header: "PUBLISHED", align: "right" },
      { header: "DISCARDED", align: "right" },
      { header: "LOST", align: "right" },
    ],
    rows,
  );
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
