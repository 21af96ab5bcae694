// The kubelet collector: polls the kubelet's /pods and /stats/summary over
// HTTPS and reports container and pod problems, and node and storage
// thresholds, when they change (see README.md).
import { cpus, availableParallelism } from "node:os";
import type { EventInput } from "../../event/event.ts";
import type { Collector, CollectorContext, CollectorFactory } from "../../orchestrator/collector.ts";
import { emitAll, poll } from "../common/poll.ts";
import { K8sClient, ResponseTooLargeError } from "../common/k8s-client.ts";
import { readableEndpoint } from "../common/source-checks.ts";
import { parseJson } from "../common/json.ts";
import { SourceHealth } from "../common/source-health.ts";
import { PodTracker } from "./pods.ts";
import { kubeletConfigSchema, type KubeletConfig } from "./schema.ts";
import { StatsTracker } from "./stats.ts";
import { kubeletEvents } from "./events.ts";

const PODS_PATH = "/pods";
const STATS_PATH = "/stats/summary";

export class KubeletCollector implements Collector {
  readonly #config: KubeletConfig;

  constructor(config: KubeletConfig) {
    this.#config = config;
  }

  async run(ctx: CollectorContext): Promise<void> {
    const c = this.#config;
    if (c.insecure) {
      ctx.log.warn({ address: c.address }, `collector ${ctx.name}: TLS verification of the kubelet is off (insecure: true); its identity is not checked`);
    }
    const client = kubeletClient(c);
    const pods = new PodTracker({
      crashLoopRestarts: c.crash_loop_restarts,
      ignoreWaitingReasons: new Set(c.ignore_waiting_reasons),
      notReadyAfterMs: c.not_ready_after.ms,
    });
    const stats = new StatsTracker({
      nodeCpuPercent: c.node_cpu_percent,
      nodeMemoryPercent: c.node_memory_percent,
      ephemeralStoragePercent: c.ephemeral_storage_percent,
      nodeCpuCores: c.node_cpu_cores || cpus().length || availableParallelism(),
    });
    const storageLimit = (uid: string) => pods.storageLimit(uid);

    /** One request: fetch, parse, let `apply` find the changes, emit them. */
    const fetchAndApply = async (path: string, apply: (body: unknown, out: EventInput[], bad: (detail: string) => void) => boolean) => {
      const bad = (detail: string) => ctx.parseError(path, detail);
      const text = await client.getText(path, ctx.signal, c.timeout.ms).catch((err: unknown) => {
        if (err instanceof ResponseTooLargeError) bad(err.message);
        throw err;
      });
      const parsed = parseJson(text);
      if (!parsed.ok) {
        bad(parsed.detail);
        throw new Error(`the kubelet's ${path} is not JSON`);
      }
      const out: EventInput[] = [];
      const usable = apply(parsed.value, out, bad);
      await emitAll(ctx, out);
      if (!usable) throw new Error(`the kubelet's ${path} has an unexpected shape`);
    };

    const health = new SourceHealth(ctx, [PODS_PATH, STATS_PATH]);
    // Storage thresholds use the pods' limits from /pods: the first stats
    // round waits for the first pods round.
    const { promise: firstPods, resolve: podsRead } = Promise.withResolvers<void>();
    const podsLoop = poll(health.contextFor(PODS_PATH), c.pods_interval.ms, async () => {
      try {
        await fetchAndApply(PODS_PATH, (body, out, bad) => pods.update(body, Date.now(), out, bad));
      } finally {
        podsRead();
      }
    });
    const statsLoop = firstPods.then(() =>
      poll(health.contextFor(STATS_PATH), c.stats_interval.ms, () =>
        fetchAndApply(STATS_PATH, (body, out, bad) => stats.update(body, storageLimit, Date.now(), out, bad)),
      ),
    );
    await Promise.all([podsLoop, statsLoop]);
  }
}

function kubeletClient(c: KubeletConfig): K8sClient {
  return new K8sClient({
    baseUrl: c.address,
    tokenFile: c.token_file,
    caFile: c.ca_file,
    insecure: c.insecure,
    what: "kubelet",
    tlsHint: `is ca_file (${c.ca_file}) the CA that signed the kubelet's serving certificate? (insecure: true skips verification)`,
    maxResponseBytes: c.max_response_bytes,
  });
}

export const kubeletFactory: CollectorFactory<KubeletConfig> = {
  type: "kubelet",
  events: kubeletEvents,
  description: "kubelet /pods and /stats/summary: container waits, failures, restarts, crash loops, unready pods, storage and node thresholds",
  configSchema: kubeletConfigSchema,
  // Events come only on change, so a healthy node is silent for as long as it
  // stays healthy: no quiet period. A failing poll shows as degraded instead.
  quietPeriodMs: () => undefined,
  sources: (c) => [readableEndpoint(kubeletClient(c), c.address, "/pods", c.timeout.ms)],
  create: (config) => new KubeletCollector(config),
};
