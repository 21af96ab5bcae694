// `tapio-collectors check`: what `run` would need, tried without running:
// for each destination (the `nats` section, then each of `destinations`),
// NATS with its auth and TLS, permission to publish each subject its routes
// send it and a stream that takes it, and its spool file; every enabled
// collector's sources. One line per check, those of `destinations` named
// `destination <name>: ...`; exit 0 when all pass, 1 when any fails.
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, openSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { headers, PermissionViolationError, type NatsConnection } from "@nats-io/nats-core";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { loadConfigFile } from "../config/load.ts";
import type { Config, NatsConfig } from "../config/schema.ts";
import { builtinRegistry } from "../collectors/index.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { collectorSubject } from "../orchestrator/instance.ts";
import { DEFAULT_DESTINATION, spoolPathOf } from "../orchestrator/destination.ts";
import { RouteTable } from "../routing/routes.ts";
import { redactUrlCredentials } from "../config/redact.ts";
import { connectionOptions } from "../publish/connect.ts";
import { permissionMessage } from "../publish/connection.ts";
import { subjectsCover } from "../publish/subjects.ts";
import { EXIT, HELP, configPath, parseFlags } from "./usage.ts";

export interface CheckLine {
  ok: boolean;
  check: string;
  detail: string;
}

/** JetStream's reply to a publish whose Nats-Expected-Last-Sequence does not match: nothing stored. */
const WRONG_LAST_SEQUENCE = 10071;
/** ... to a stream create whose body names another stream than its subject: nothing created. */
const STREAM_NAME_MISMATCH = 10056;
/** A last sequence no stream reaches, so the probe is always refused. */
const NEVER_LAST_SEQUENCE = String(Number.MAX_SAFE_INTEGER);

export async function checkCommand(args: string[]): Promise<number> {
  const flags = parseFlags("check", args);
  if (flags.help) {
    process.stdout.write(`${HELP.check}\n`);
    return EXIT.ok;
  }
  const registry = builtinRegistry();
  const config = await loadConfigFile(configPath(flags.config), registry);
  let failed = false;
  for await (const line of runChecks(config, registry)) {
    failed ||= !line.ok;
    process.stdout.write(`${line.ok ? "ok  " : "FAIL"}  ${line.check}: ${line.detail}\n`);
  }
  return failed ? EXIT.failure : EXIT.ok;
}

export async function* runChecks(config: Config, registry: CollectorRegistry): AsyncGenerator<CheckLine> {
  const routes = new RouteTable(config.routes, (name) => name);
  const instances = Object.entries(config.collectors)
    .filter(([, c]) => c.enabled)
    .map(([name]) => name);
  /** The subjects destination `name` would get: `<its subject>.<instance>` for each instance whose events some route sends there. */
  const subjectsOf = (name: string, nats: NatsConfig) => instances.filter((i) => routes.destinationsOf(i).includes(name)).map((i) => collectorSubject(nats.subject, i));
  yield* destinationChecks(config, DEFAULT_DESTINATION, config.nats, subjectsOf(DEFAULT_DESTINATION, config.nats));
  for (const [name, nats] of Object.entries(config.destinations)) yield* destinationChecks(config, name, nats, subjectsOf(name, nats));
  yield* sourceChecks(config, registry);
}

/** NATS and the spool of one destination; the lines of `destinations` say which (`destination central: ...`). */
async function* destinationChecks(config: Config, name: string, nats: NatsConfig, subjects: string[]): AsyncGenerator<CheckLine> {
  const named = name === DEFAULT_DESTINATION ? "" : `destination ${name}: `;
  for await (const line of natsChecks(nats, subjects)) yield { ...line, check: `${named}${line.check}` };
  if (subjects.length === 0 && (name !== DEFAULT_DESTINATION || (config.routes ?? []).length > 0) && Object.values(config.collectors).some((c) => c.enabled)) {
    const why = (config.routes ?? []).length > 0 ? "no rule of routes sends it events of an enabled collector" : "no routes: every event goes to default";
    yield { ok: true, check: `${named}routes`, detail: `${why}; no subject to probe` };
  }
  yield spoolCheck(config.spool, spoolPathOf(config.spool.path, name), `${named}spool`);
}

async function* natsChecks(nats: NatsConfig, subjects: readonly string[]): AsyncGenerator<CheckLine> {
  const servers = nats.url.map(redactUrlCredentials).join(", ");
  let nc: NatsConnection;
  try {
    nc = await connect({ ...connectionOptions(nats), maxReconnectAttempts: 0, reconnect: false });
  } catch (err) {
    yield { ok: false, check: "nats", detail: `cannot connect to ${servers}: ${(err as Error).message}` };
    return;
  }
  const refusals = new Refusals(nc);
  try {
    yield { ok: true, check: "nats", detail: `connected to ${nc.getServer()} (max_payload ${nc.info?.max_payload ?? "?"} bytes)` };
    if (nats.mode === "jetstream") {
      const stream = await streamCheck(nc, nats, refusals);
      yield stream.line;
      for (const subject of subjects) yield await jetstreamPublishCheck(nc, nats, subject, stream.missing, refusals);
    } else {
      for (const subject of subjects) yield await corePublishCheck(nc, subject, refusals);
    }
  } finally {
    await nc.close();
  }
}

/** Collects the server's permission refusals, which come apart from the request they refuse. */
class Refusals {
  readonly #seen: PermissionViolationError[] = [];

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) if (s.type === "error" && s.error instanceof PermissionViolationError) this.#seen.push(s.error);
    })();
  }

  /** The refusal of publishing to `subject`, or of our reply inbox, once the server has answered everything sent so far. */
  async of(nc: NatsConnection, subject: string): Promise<string | undefined> {
    await nc.flush().catch(() => {});
    await new Promise<void>((resolve) => setImmediate(resolve));
    const refusal = this.#seen.find((e) => (e.operation === "publish" && e.subject === subject) || e.operation === "subscription");
    return refusal && permissionMessage(refusal);
  }
}

async function streamCheck(nc: NatsConnection, nats: NatsConfig, refusals: Refusals): Promise<{ line: CheckLine; missing: boolean }> {
  const { name } = nats.stream;
  const check = `stream ${name}`;
  const needed = `${nats.subject}.>`;
  const jsm = await jetstreamManager(nc, { timeout: nats.timeout.ms, checkAPI: false });
  try {
    const info = await jsm.streams.info(name);
    const subjects = info.config.subjects ?? [];
    const list = subjects.map((s) => `"${s}"`).join(", ");
    if (!subjectsCover(subjects, nats.subject)) {
      return { missing: false, line: { ok: false, check, detail: `its subjects [${list}] do not cover "${needed}"; add "${needed}" or configure another stream` } };
    }
    return { missing: false, line: { ok: true, check, detail: `exists, subjects [${list}] cover "${needed}"` } };
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) {
      const refusal = await refusals.of(nc, `$JS.API.STREAM.INFO.${name}`);
      return { missing: false, line: { ok: false, check, detail: refusal ?? `cannot look it up: ${(err as Error).message}` } };
    }
  }
  // Missing: the agent creates it at start. A create whose body names another
  // stream is refused by JetStream after the permission check and creates nothing.
  const createSubject = `$JS.API.STREAM.CREATE.${name}`;
  try {
    const reply = await nc.request(createSubject, JSON.stringify({ name: `${name}-check-${randomUUID()}`, subjects: [needed] }), { timeout: nats.timeout.ms });
    const code = (reply.json() as { error?: { err_code?: number } }).error?.err_code;
    if (code === STREAM_NAME_MISMATCH) {
      return { missing: true, line: { ok: true, check, detail: `does not exist; the agent may create it for "${needed}" at start` } };
    }
    return { missing: true, line: { ok: false, check, detail: `does not exist, and the create probe got an unexpected reply: ${reply.string().slice(0, 200)}` } };
  } catch (err) {
    const refusal = await refusals.of(nc, createSubject);
    return { missing: true, line: { ok: false, check, detail: `does not exist and cannot be created: ${refusal ?? (err as Error).message}` } };
  }
}

/**
 * Publishes an empty message with an expected last sequence no stream has:
 * the stream refuses it (nothing is stored) and its refusal names the stream,
 * which proves the permission and the coverage at once.
 */
async function jetstreamPublishCheck(nc: NatsConnection, nats: NatsConfig, subject: string, streamMissing: boolean, refusals: Refusals): Promise<CheckLine> {
  const check = `publish ${subject}`;
  const h = headers();
  h.set("Nats-Expected-Last-Sequence", NEVER_LAST_SEQUENCE);
  try {
    const reply = await nc.request(subject, new Uint8Array(), { headers: h, timeout: nats.timeout.ms });
    const ack = reply.json() as { stream?: string; error?: { err_code?: number; description?: string } };
    if (ack.error?.err_code !== WRONG_LAST_SEQUENCE) {
      return { ok: false, check, detail: `unexpected reply to the probe: ${reply.string().slice(0, 200)}` };
    }
    if (ack.stream !== nats.stream.name) {
      return { ok: false, check, detail: `stream "${ack.stream}" takes it, not the configured "${nats.stream.name}"` };
    }
    return { ok: true, check, detail: `allowed, stream ${ack.stream} takes it (probe refused by the stream, nothing stored)` };
  } catch (err) {
    const refusal = await refusals.of(nc, subject);
    if (refusal) return { ok: false, check, detail: refusal };
    if ((err as Error).message.includes("no responders")) {
      // No stream listens yet; one the agent creates from the config will.
      if (streamMissing) return { ok: true, check, detail: `allowed; stream ${nats.stream.name}, created at start, will take it` };
      return { ok: false, check, detail: `no stream takes "${subject}": events would get no_responders` };
    }
    return { ok: false, check, detail: (err as Error).message };
  }
}

/**
 * Core NATS confirms nothing: publish once and see whether the server
 * refuses. Subscribers see one empty message with the header Tapio-Check;
 * a stream that captures the subject refuses it (expected last sequence).
 */
async function corePublishCheck(nc: NatsConnection, subject: string, refusals: Refusals): Promise<CheckLine> {
  const check = `publish ${subject}`;
  const h = headers();
  h.set("Tapio-Check", "1");
  h.set("Nats-Expected-Last-Sequence", NEVER_LAST_SEQUENCE);
  try {
    nc.publish(subject, new Uint8Array(), { headers: h });
  } catch (err) {
    return { ok: false, check, detail: (err as Error).message };
  }
  const refusal = await refusals.of(nc, subject);
  return refusal ? { ok: false, check, detail: refusal } : { ok: true, check, detail: "allowed (one empty probe message with header Tapio-Check)" };
}

/** The agent creates the directory and the file `path` (a destination's spool); both must be writable by this user. */
function spoolCheck(spool: Config["spool"], path: string, check: string): CheckLine {
  if (!spool.enabled) return { ok: true, check, detail: "disabled (events wait in memory while NATS is away)" };
  let dir = dirname(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const probe = join(dir, `.tapio-check-${process.pid}-${randomUUID()}`);
  try {
    writeFileSync(probe, "");
    unlinkSync(probe);
    if (existsSync(path)) closeSync(openSync(path, "r+"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "EACCES" || code === "EPERM" ? "permission denied for this user" : code === "EROFS" ? "read-only file system" : (err as Error).message;
    return { ok: false, check, detail: `${path} cannot be written (${why})` };
  }
  return { ok: true, check, detail: `${path} writable` };
}

async function* sourceChecks(config: Config, registry: CollectorRegistry): AsyncGenerator<CheckLine> {
  for (const [name, section] of Object.entries(config.collectors)) {
    if (!section.enabled) continue;
    const sources = registry.forKey(name)?.sources?.(section.config) ?? [];
    if (sources.length === 0) yield { ok: true, check: `collector ${name}`, detail: "reads nothing outside the agent" };
    for (const source of sources) {
      try {
        await source.probe(AbortSignal.timeout(30_000));
        yield { ok: true, check: `collector ${name}`, detail: `${source.source} readable` };
      } catch (err) {
        yield { ok: false, check: `collector ${name}`, detail: (err as Error).message };
      }
    }
  }
}
