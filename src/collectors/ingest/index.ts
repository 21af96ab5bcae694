// A local push API: programs on the node (a CNI plugin, an admission hook, a
// node script) POST events and get the agent's queue, spool, deduplication
// and backpressure. Each event goes to `<subject>.<source>`, the sender's
// name as the last part of the subject.
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { access, constants } from "node:fs/promises";
import { dirname } from "node:path";
import type { Server } from "bun";
import type { Collector, CollectorContext, CollectorFactory, SourceCheck } from "../../orchestrator/collector.ts";
import { parseListen } from "../../http/server.ts";
import { readableFile } from "../common/source-checks.ts";
import { IngestApi } from "./api.ts";
import { ingestConfigSchema, UNIX_PREFIX, type IngestConfig } from "./schema.ts";
import { BearerToken } from "./token.ts";
import { ingestEvents } from "./events.ts";

/** On stop, requests under way get this long to be answered (the runner abandons a collector after 5 s). */
const STOP_GRACE_MS = 4000;
/** How long the last answers get to be written once no request is under way. */
const FLUSH_MS = 500;
/** A keep-alive TCP connection idle this long is closed (Bun sets no idle timeout on unix sockets). */
const IDLE_TIMEOUT_SECONDS = 30;

export class IngestCollector implements Collector {
  constructor(readonly config: IngestConfig) {}

  async run(ctx: CollectorContext): Promise<void> {
    // Nothing to read in a round: a --once run gets no API.
    if (ctx.once || ctx.signal.aborted) return;
    const { config } = this;
    const token = config.token_file === undefined ? undefined : BearerToken.read(config.token_file);
    const api = new IngestApi({ ctx, maxBody: config.max_body, waitTimeoutMs: config.wait_timeout.ms, token });
    const server = await listen(config, api);
    // The address as bound: port 0 in listen picks a free one.
    const address = config.listen.startsWith(UNIX_PREFIX) ? config.listen : server.url.origin;
    ctx.log.info({ listen: address, auth: token === undefined ? "none" : "bearer" }, `ingest API on ${address}: POST /v1/events`);
    ctx.healthy();
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    await api.drain(STOP_GRACE_MS);
    // Graceful first: the last answers are still being written. Bun removes the socket file as it stops.
    await Promise.race([server.stop(), Bun.sleep(FLUSH_MS)]);
    await server.stop(true);
  }
}

async function listen(config: IngestConfig, api: IngestApi): Promise<Server<undefined>> {
  const common = {
    fetch: (req: Request, server: Server<undefined>) => api.handle(req, server),
    // Well above max_body, so that IngestApi answers with its own message; Bun's own limit is a backstop.
    maxRequestBodySize: config.max_body * 4 + 1024 * 1024,
  };
  if (!config.listen.startsWith(UNIX_PREFIX)) {
    const { hostname, port } = parseListen(config.listen);
    try {
      return Bun.serve({ ...common, hostname, port, idleTimeout: IDLE_TIMEOUT_SECONDS });
    } catch (err) {
      throw new Error(`cannot listen on ${config.listen}: ${(err as Error).message}`);
    }
  }
  const path = config.listen.slice(UNIX_PREFIX.length);
  await removeStaleSocket(path);
  let server: Server<undefined>;
  try {
    server = Bun.serve({ ...common, unix: path });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`cannot listen on ${config.listen}: the directory ${dirname(path)} does not exist (create it, or mount a volume there)`);
    if (code === "EACCES") throw new Error(`cannot listen on ${config.listen}: permission denied to create a socket in ${dirname(path)} for this user`);
    throw new Error(`cannot listen on ${config.listen}: ${(err as Error).message}`);
  }
  try {
    chmodSync(path, Number.parseInt(config.socket_mode, 8));
  } catch (err) {
    server.stop(true);
    throw new Error(`cannot set socket_mode ${config.socket_mode} on ${path}: ${(err as Error).message}`);
  }
  return server;
}

/**
 * A socket file left by an agent that died is removed; one another process
 * still listens on, or a file that is not a socket, is left alone and the
 * start fails saying so.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (!stat.isSocket()) throw new Error(`cannot listen on unix://${path}: it exists and is not a socket (move it away, or choose another path)`);
  if (await answers(path)) throw new Error(`cannot listen on unix://${path}: another process listens on it (a second agent?)`);
  unlinkSync(path);
}

/** True when something accepts connections on the socket. */
async function answers(path: string): Promise<boolean> {
  try {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

export const ingestFactory: CollectorFactory<IngestConfig> = {
  type: "ingest",
  events: ingestEvents,
  description: "a local push API: programs on the node POST events (JSON or NDJSON) over a unix socket or loopback TCP",
  configSchema: ingestConfigSchema,
  // <its subject>.<source>: a bare ingest beside a named one would share subjects
  publishesBelow: true,
  sources(config) {
    const checks: SourceCheck[] = [];
    if (config.token_file !== undefined) checks.push(readableFile(config.token_file));
    if (config.listen.startsWith(UNIX_PREFIX)) {
      const dir = dirname(config.listen.slice(UNIX_PREFIX.length));
      checks.push({
        source: dir,
        async probe() {
          await access(dir, constants.W_OK).catch((err: NodeJS.ErrnoException) => {
            throw new Error(err.code === "ENOENT" ? `${dir} does not exist: the ingest socket is created there` : `${dir}: no write access for this user to create the ingest socket`);
          });
        },
      });
    }
    return checks;
  },
  create: (config) => new IngestCollector(config),
};
