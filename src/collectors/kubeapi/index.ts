// The kubeapi collector: lists and watches this node's Pods and the Events
// about this node and its pods, and reports each change (see README.md).
import { backoffDelay, type BackoffPolicy } from "../../backoff.ts";
import type { EventInput } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { sleep } from "../../wait.ts";
import { emitAll } from "../common/poll.ts";
import { HttpStatusError, K8sClient, ResponseTooLargeError } from "../common/k8s-client.ts";
import { readableEndpoint } from "../common/source-checks.ts";
import { list, num, obj, parseJson, str, type Json } from "../common/json.ts";
import { SourceHealth } from "../common/source-health.ts";
import { EventSet, PodSet, resourceVersion, type ResourceSet } from "./resources.ts";
import { kubeapiConfigSchema, type KubeapiConfig } from "./schema.ts";
import { isGone, LineSplitter, parseWatchLine } from "./watch.ts";
import { kubeapiEvents } from "./events.ts";

/**
 * The API server closes a watch after timeoutSeconds; one still open this
 * much later (or watch_timeout later, if shorter) sits on a dead connection
 * and is dropped.
 */
const WATCH_GRACE_MS = 30_000;

/** How a watch ended: the server closed it (or it went quiet too long), or the resourceVersion expired. */
type WatchEnd = "ended" | "gone";

export class KubeapiCollector implements Collector {
  readonly #config: KubeapiConfig;

  constructor(config: KubeapiConfig) {
    this.#config = config;
  }

  async run(ctx: CollectorContext): Promise<void> {
    const c = this.#config;
    const node = c.node_name;
    const watcher = new Watcher(ctx, c);
    const pods = new PodSet(node);
    // "The agent's start": a collector restarted after a failure still skips
    // only what happened before the process started.
    const events = c.events ? new EventSet(node, pods, performance.timeOrigin) : undefined;
    const health = new SourceHealth(ctx, events ? [pods.name, events.name] : [pods.name]);

    if (ctx.once) {
      for (const set of events ? [pods, events] : [pods]) {
        try {
          await watcher.list(set);
          health.ok(set.name);
        } catch (err) {
          if (ctx.signal.aborted) return;
          health.failed(set.name, (err as Error).message);
        }
      }
      return;
    }
    // Events find this node's pods by uid: their watch starts after the first pod list.
    const { promise: firstPodList, resolve: podsListed } = Promise.withResolvers<void>();
    await Promise.all([
      watcher.listAndWatch(pods, health, podsListed),
      events && firstPodList.then(() => watcher.listAndWatch(events, health, () => {})),
    ]);
  }
}

/** Lists and watches the resource sets of one run of the collector. */
class Watcher {
  readonly #ctx: CollectorContext;
  readonly #c: KubeapiConfig;
  readonly #client: K8sClient;
  readonly #backoff: BackoffPolicy;

  constructor(ctx: CollectorContext, c: KubeapiConfig) {
    this.#ctx = ctx;
    this.#c = c;
    this.#client = apiClient(c);
    this.#backoff = { initialMs: c.reconnect_backoff.initial.ms, maxMs: c.reconnect_backoff.max.ms };
  }

  /**
   * List, then watch from the list's resourceVersion, until stopped. A watch
   * that ends is resumed from the last resourceVersion seen (events and
   * bookmarks move it); one that expired (410) starts over with a list.
   * Every reconnect waits a backoff, longer while failures go on.
   */
  async listAndWatch(set: ResourceSet, health: SourceHealth, listed: () => void): Promise<void> {
    const ctx = this.#ctx;
    let rv: string | undefined;
    let failures = 0;
    while (!ctx.signal.aborted) {
      try {
        if (rv === undefined) {
          rv = await this.list(set);
          listed();
          health.ok(set.name);
        }
        const end = await this.#watch(set, rv, (next) => (rv = next), () => health.ok(set.name));
        if (end === "gone") rv = undefined;
        failures = 0;
      } catch (err) {
        if (ctx.signal.aborted) return;
        listed();
        if (err instanceof HttpStatusError && err.status === 410) {
          rv = undefined;
        } else {
          health.failed(set.name, (err as Error).message);
          failures++;
        }
      }
      if (!(await sleep(backoffDelay(failures, this.#backoff), ctx.signal))) return;
    }
  }

  /** Lists every page, reports the differences, and returns the list's resourceVersion. */
  async list(set: ResourceSet): Promise<string> {
    const { page_size, timeout } = this.#c;
    const bad = (detail: string) => this.#ctx.parseError(`${set.name} list`, detail);
    const items: unknown[] = [];
    let rv: string | undefined;
    let next: string | undefined;
    do {
      const page = `${set.path}${set.path.includes("?") ? "&" : "?"}limit=${page_size}${next ? `&continue=${encodeURIComponent(next)}` : ""}`;
      const text = await this.#client.getText(page, this.#ctx.signal, timeout.ms).catch((err: unknown) => {
        if (err instanceof ResponseTooLargeError) bad(err.message);
        throw err;
      });
      const parsed = parseJson(text);
      const body = parsed.ok ? obj(parsed.value) : undefined;
      const meta = obj(body?.metadata);
      if (!parsed.ok || !body || !(Array.isArray(body.items) || body.items === null)) {
        bad(parsed.ok ? `expected a ${set.name} list object with items` : parsed.detail);
        throw new Error(`the API server's list of ${set.name} is not a list`);
      }
      for (const item of list(body.items)) items.push(item);
      rv = str(meta?.resourceVersion);
      next = str(meta?.continue) || undefined;
    } while (next);
    if (!rv) {
      bad("the list has no metadata.resourceVersion");
      throw new Error(`the API server's list of ${set.name} has no resourceVersion to watch from`);
    }
    const out: EventInput[] = [];
    set.replace(items, out, bad);
    await emitAll(this.#ctx, out);
    return rv;
  }

  /** `moved` gets each resourceVersion the stream reaches; `connected` is called once the server accepts the watch. */
  async #watch(set: ResourceSet, rv: string, moved: (rv: string) => void, connected: () => void): Promise<WatchEnd> {
    const ctx = this.#ctx;
    const c = this.#c;
    const where = `${set.name} watch`;
    const path = `${set.path}${set.path.includes("?") ? "&" : "?"}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${Math.ceil(c.watch_timeout.ms / 1000)}`;
    const stop = new AbortController();
    const abort = () => stop.abort();
    ctx.signal.addEventListener("abort", abort, { once: true });
    const deadline = setTimeout(abort, c.watch_timeout.ms + Math.min(WATCH_GRACE_MS, c.watch_timeout.ms));
    const lines: string[] = [];
    const out: EventInput[] = [];
    const collect = (line: string) => void lines.push(line);
    const tooLong = (chars: number) => ctx.parseError(where, `a line of more than ${chars} characters, skipped`);
    const bad = (detail: string) => ctx.parseError(where, detail);
    try {
      const response = await this.#client.get(path, stop.signal);
      connected();
      if (!response.body) return "ended";
      const reader = response.body.getReader();
      // One watch event is one object: no longer than a response may be.
      const splitter = new LineSplitter(c.max_response_bytes);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        splitter.push(value, collect, tooLong);
        for (const line of lines) {
          const event = parseWatchLine(line);
          if ("error" in event) {
            bad(event.error);
            continue;
          }
          if (event.type === "ERROR") {
            if (isGone(event.object)) return "gone";
            throw new Error(`the API server ended the ${set.name} watch with an error: ${statusText(event.object)}`);
          }
          const version = resourceVersion(event.object);
          if (event.type !== "BOOKMARK") {
            set.apply(event.type, event.object, out, bad);
            await emitAll(ctx, out);
            out.length = 0;
          }
          if (version) moved(version);
        }
        lines.length = 0;
      }
      if (splitter.end() !== "") bad("the stream ended inside a line");
      return "ended";
    } catch (err) {
      // Our own deadline: the connection went quiet; watch again.
      if (stop.signal.aborted && !ctx.signal.aborted) return "ended";
      throw err;
    } finally {
      clearTimeout(deadline);
      ctx.signal.removeEventListener("abort", abort);
      // Closes the connection when the watch ends early (410, error, stop).
      stop.abort();
    }
  }
}

function statusText(status: Json): string {
  return [num(status.code), str(status.reason), str(status.message)].filter((x) => x !== undefined).join(" ") || "no details";
}

function apiClient(c: KubeapiConfig): K8sClient {
  return new K8sClient({
    baseUrl: c.api_server,
    tokenFile: c.token_file,
    caFile: c.ca_file,
    insecure: false,
    what: "API server",
    tlsHint: `is ca_file (${c.ca_file}) the cluster's CA?`,
    maxResponseBytes: c.max_response_bytes,
  });
}

export const kubeapiFactory: CollectorFactory<KubeapiConfig> = {
  type: "kubeapi",
  events: kubeapiEvents,
  description: "Kubernetes API: list+watch of this node's Pods (k8s.pod) and the Events about the node and its pods (k8s.event)",
  configSchema: kubeapiConfigSchema,
  // Pods and Events change only when something happens on the node: a quiet
  // node is silent. A failing list or watch shows as degraded instead.
  quietPeriodMs: () => undefined,
  // One pod proves the service account may list pods (RBAC does not look at the node filter).
  sources: (c) => [readableEndpoint(apiClient(c), c.api_server, "/api/v1/pods?limit=1", c.timeout.ms)],
  create: (config) => new KubeapiCollector(config),
};
