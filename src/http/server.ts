// The agent's HTTP endpoints, on Bun.serve: /healthz (alive), /readyz
// (ready to take events), /status (JSON for people and tools), /metrics
// (Prometheus text). Loopback by default (http.listen).
import { redactText } from "../config/redact.ts";
import type { Server } from "bun";
import type { Logger } from "pino";
import type { HttpConfig } from "../config/schema.ts";
import type { AgentMetrics } from "../metrics/metrics.ts";
import type { Orchestrator } from "../orchestrator/orchestrator.ts";

export interface StatusDocument {
  agent: { version: string; bun: string; pid: number; started_at: string; uptime_seconds: number; ready: boolean; ready_reason: string };
  health: ReturnType<Orchestrator["agentHealth"]>;
  collectors: ReturnType<Orchestrator["status"]>["collectors"];
  queue: ReturnType<Orchestrator["status"]>["queue"];
  delivery: ReturnType<Orchestrator["status"]>["delivery"];
  /** every destination by name (default: the nats section, also in `delivery`); absent from agents before issue 15 */
  destinations?: ReturnType<Orchestrator["status"]>["destinations"];
  publish_errors: Record<string, number>;
}

export interface HttpServerOptions {
  config: HttpConfig;
  orchestrator: Orchestrator;
  metrics: AgentMetrics;
  log: Logger;
  build: { version: string; bun: string };
}

export class HttpServer {
  readonly #server: Server<undefined>;
  readonly #o: HttpServerOptions;
  readonly #startedAt = Date.now();

  constructor(options: HttpServerOptions) {
    this.#o = options;
    const { hostname, port } = parseListen(options.config.listen);
    this.#server = Bun.serve({ hostname, port, fetch: (req) => this.#route(req), error: (err) => this.#error(err) });
    options.log.info({ url: this.url }, `HTTP endpoints on ${this.url} (/healthz, /readyz, /status, /metrics)`);
  }

  /** Where it listens, with the real port when http.listen asked for port 0. */
  get url(): string {
    const host = this.#server.hostname ?? "0.0.0.0";
    return `http://${host.includes(":") ? `[${host}]` : host}:${this.#server.port}`;
  }

  async #route(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    switch (path) {
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        const { ready, reason } = this.#o.orchestrator.readiness();
        return new Response(redactText(`${ready ? "ready" : "not ready"}: ${reason}\n`), { status: ready ? 200 : 503 });
      }
      case "/status":
        // error texts from NATS and the collectors end up here: the last guard as on log lines
        return new Response(redactText(JSON.stringify(this.status())), { headers: { "content-type": "application/json;charset=utf-8" } });
      case "/metrics":
        return new Response(await this.#o.metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      default:
        return new Response("not found: try /healthz, /readyz, /status or /metrics\n", { status: 404 });
    }
  }

  status(): StatusDocument {
    const o = this.#o.orchestrator;
    const { ready, reason } = o.readiness();
    const s = o.status();
    return {
      agent: {
        ...this.#o.build,
        pid: process.pid,
        started_at: new Date(this.#startedAt).toISOString(),
        uptime_seconds: (Date.now() - this.#startedAt) / 1000,
        ready,
        ready_reason: reason,
      },
      health: s.health,
      collectors: s.collectors,
      queue: s.queue,
      delivery: s.delivery,
      destinations: s.destinations,
      publish_errors: s.publish_errors,
    };
  }

  #error(err: Error): Response {
    this.#o.log.error({ err: err.message }, `HTTP handler failed: ${err.message}`);
    return new Response("internal error\n", { status: 500 });
  }

  stop(): void {
    this.#server.stop(true);
  }
}

/** "127.0.0.1:9090", "[::1]:9090", ":9090" (all interfaces, only when written so). */
export function parseListen(listen: string): { hostname: string; port: number } {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port: Number(listen.slice(i + 1)) };
}
