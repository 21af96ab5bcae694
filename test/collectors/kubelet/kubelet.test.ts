// The kubelet collector against a local HTTPS kubelet that serves the
// recorded nri-kubernetes 1.35 responses and checks the bearer token.
import { afterAll, describe, expect, test } from "bun:test";
import pino from "pino";
import * as v from "valibot";
import { KubeletCollector, kubeletFactory } from "../../../src/collectors/kubelet/index.ts";
import { kubeletConfigSchema } from "../../../src/collectors/kubelet/schema.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { recordingContext, runInBackground, runOnce } from "../../helpers/collector-context.ts";
import { testPki } from "../../helpers/tls.ts";
import { PODS_JSON, startFakeKubelet, tokenFile, type FakeKubelet } from "./fake-kubelet.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const pki = testPki();
const kubelets: FakeKubelet[] = [];
afterAll(() => {
  for (const k of kubelets) k.stop();
});

function kubelet(token = "token-1"): FakeKubelet {
  const k = startFakeKubelet(token);
  kubelets.push(k);
  return k;
}

function collector(k: FakeKubelet, token: string, config: Record<string, unknown> = {}): KubeletCollector {
  return new KubeletCollector(v.parse(kubeletConfigSchema, { address: k.url, token_file: token, ca_file: pki.caFile, ...config }));
}

/** The event without what changes per run (id, time, collector name). */
function stable(e: CollectorEvent): Record<string, unknown> {
  const { attributes: _, ...metadata } = e.metadata;
  return { type: e.type, severity: e.severity, event_data: e.event_data, metadata };
}

function failjob(name: string, uid: string, finishedAt: string, containerId: string) {
  return {
    type: "kubelet.container.terminated",
    severity: "warning",
    event_data: {
      kubelet: {
        event_type: "container_terminated",
        pod_lifecycle: { namespace: "scraper", pod: name, container: "main", status: "terminated", reason: "Error", exit_code: 42, restart_count: 0, timestamp: finishedAt },
      },
    },
    metadata: { pod_name: name, pod_namespace: "scraper", pod_uid: uid, node_name: "datagen-1-35", container_name: "main", container_id: containerId },
  };
}

const NODE_METRICS = {
  node_name: "datagen-1-35",
  cpu_usage_nano: 573081903,
  cpu_usage_milli: 573,
  memory_usage: 3080323072,
  memory_available: 7299776512,
  memory_working_set: 917110784,
  timestamp: "2026-06-26T10:14:35Z",
};

// What the fixture gives with thresholds low enough to cross: node CPU 57.31%
// of 1 core, memory 11.16%, and e2e-scraper's 13 MB of ephemeral storage.
const FIXTURE_EVENTS = [
  failjob("e2e-failjob-64h4g", "0961a396-5fff-45fe-a970-19b2aac96e5d", "2026-06-26T10:14:08Z", "7228c83273e06a326bc27d624138a8f1c1979a887f0cabf9ab5d15feccf91986"),
  failjob("e2e-failjob-4kj9v", "55d90638-651f-430e-9b6c-ca0462a0beef", "2026-06-26T10:14:07Z", "be08fc25bb341cd8becf2a144275fc0c6b7494a6c2dcf142096cbf335b1a5f9c"),
  failjob("e2e-failjob-28dqq", "7301a765-c63f-4f77-98ef-e7ecef8768b8", "2026-06-26T10:14:33Z", "66a24ad283f68a7788951625d89427e94573fc079e168bdae328c9ca370e824e"),
  {
    type: "kubelet.pod.not_ready",
    severity: "warning",
    event_data: {
      kubelet: {
        event_type: "pod_not_ready",
        pod_lifecycle: {
          namespace: "scraper",
          pod: "e2e-container-creating",
          condition: "Ready",
          status: "False",
          reason: "ContainersNotReady",
          message: "containers with unready status: [alpine]",
          timestamp: "2026-06-26T10:12:51Z",
        },
      },
    },
    metadata: { pod_name: "e2e-container-creating", pod_namespace: "scraper", pod_uid: "567cc614-001a-402b-99fd-3d1f8db83f30", node_name: "datagen-1-35" },
  },
  failjob("e2e-failjob-p2w8g", "d8a38756-a435-427c-b71c-b103380648fe", "2026-06-26T10:14:33Z", "66c311398d558addc9aea4651aab14452659626e7a8ab8d1ca90bcccba8e87fc"),
  {
    type: "kubelet.node.cpu",
    severity: "warning",
    event_data: { kubelet: { event_type: "node_cpu", node_metrics: NODE_METRICS }, custom: { state: "above", usage_percent: "57.31", threshold_percent: "50" } },
    metadata: { node_name: "datagen-1-35" },
  },
  {
    type: "kubelet.node.memory",
    severity: "warning",
    event_data: { kubelet: { event_type: "node_memory", node_metrics: NODE_METRICS }, custom: { state: "above", usage_percent: "11.16", threshold_percent: "10" } },
    metadata: { node_name: "datagen-1-35" },
  },
  {
    type: "kubelet.ephemeral.storage",
    severity: "warning",
    event_data: {
      kubelet: {
        event_type: "ephemeral_storage",
        storage_event: {
          namespace: "scraper",
          pod: "e2e-scraper-5f97dc94d8-vkcjl",
          used_bytes: 13295616,
          available_bytes: 821203210240,
          usage_percent: 0.001619,
          timestamp: "2026-06-26T10:14:40Z",
        },
      },
      custom: { state: "above", threshold_percent: "0.001" },
    },
    metadata: { pod_name: "e2e-scraper-5f97dc94d8-vkcjl", pod_namespace: "scraper", pod_uid: "559f50c7-6133-4901-a283-262ff4358722", node_name: "datagen-1-35" },
  },
];
const LOW_THRESHOLDS = { node_cpu_cores: 1, node_cpu_percent: 50, node_memory_percent: 10, ephemeral_storage_percent: 0.001 };

describe("kubelet collector", () => {
  test("one round over HTTPS: exactly the fixture's events, with the bearer token", async () => {
    const k = kubelet();
    const rec = await runOnce(collector(k, tokenFile("token-1").path, LOW_THRESHOLDS));
    expect(rec.degraded).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
    expect(rec.events.map(stable)).toEqual(FIXTURE_EVENTS);
    expect(k.requests).toEqual([
      { path: "/pods", authorization: "Bearer token-1" },
      { path: "/stats/summary", authorization: "Bearer token-1" },
    ]);
  });

  test("with the default thresholds the fixture gives only its pod problems", async () => {
    const k = kubelet();
    const rec = await runOnce(collector(k, tokenFile("token-1").path));
    expect(rec.events.map((e) => e.type)).toEqual([
      "kubelet.container.terminated",
      "kubelet.container.terminated",
      "kubelet.container.terminated",
      "kubelet.pod.not_ready",
      "kubelet.container.terminated",
    ]);
  });

  test("polls on, without repeating a condition, and re-reads a rotated token on the next poll", async () => {
    const k = kubelet("old");
    const token = tokenFile("old");
    const run = runInBackground(collector(k, token.path, { ...LOW_THRESHOLDS, pods_interval: "150ms", stats_interval: "150ms" }));
    await waitFor(() => k.requests.filter((r) => r.path === "/pods").length >= 3, "three polls of /pods");
    expect(run.rec.events.map(stable)).toEqual(FIXTURE_EVENTS);

    // right after a poll of /pods, rotate: its next poll must send the new token. (Waiting for
    // /pods to be the newest request took seconds: /stats/summary polls in step with it.)
    const podsPolls = () => k.requests.filter((r) => r.path === "/pods").length;
    const seen = podsPolls();
    await waitFor(() => podsPolls() > seen, "a /pods poll");
    k.tokens.add("new");
    token.write("new");
    const rotatedAt = k.requests.length;
    await waitFor(() => k.requests.slice(rotatedAt).some((r) => r.path === "/pods"), "the next /pods poll");
    expect(k.requests.slice(rotatedAt).find((r) => r.path === "/pods")?.authorization).toBe("Bearer new");
    await waitFor(() => k.requests.slice(rotatedAt).some((r) => r.path === "/stats/summary" && r.authorization === "Bearer new"), "/stats/summary with the new token");
    k.tokens.delete("old");
    const retiredAt = k.requests.length;
    await waitFor(() => k.requests.length >= retiredAt + 4, "more polls with the new token only");
    expect(k.requests.slice(retiredAt).every((r) => r.authorization === "Bearer new")).toBe(true);
    expect(run.rec.degraded).toEqual([]);
    expect(run.rec.events).toHaveLength(FIXTURE_EVENTS.length);
    expect(await run.stop()).toBeLessThan(100);
  });

  test("a kubelet certificate not signed by ca_file: degraded with a clear message, no events", async () => {
    const k = kubelet();
    // a certificate, but not the CA that signed the kubelet's
    const rec = await runOnce(collector(k, tokenFile("token-1").path, { ca_file: pki.clientCert }));
    expect(rec.events).toEqual([]);
    expect(rec.degraded).toHaveLength(2);
    for (const [i, path] of ["/pods", "/stats/summary"].entries()) {
      expect(rec.degraded[i]).toStartWith(`${path}: TLS verification of the kubelet at ${k.url} failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE: `);
      expect(rec.degraded[i]).toEndWith(`): is ca_file (${pki.clientCert}) the CA that signed the kubelet's serving certificate? (insecure: true skips verification)`);
    }
    expect(k.requests).toEqual([]);
  });

  test("a ca_file that holds no certificate, or is missing, is named", async () => {
    const k = kubelet();
    const token = tokenFile("token-1").path;
    expect((await runOnce(collector(k, token, { ca_file: token }))).degraded).toEqual([
      `/pods: ca_file ${token} holds no PEM certificate`,
      `/stats/summary: ca_file ${token} holds no PEM certificate`,
    ]);
    expect((await runOnce(collector(k, token, { ca_file: "/nonexistent/ca.crt" }))).degraded).toEqual([
      "/pods: ca_file: /nonexistent/ca.crt does not exist (is the host path mounted?)",
      "/stats/summary: ca_file: /nonexistent/ca.crt does not exist (is the host path mounted?)",
    ]);
  });

  test("insecure: true skips verification and warns once", async () => {
    const k = kubelet();
    const lines: Array<Record<string, unknown>> = [];
    const rec = recordingContext({ once: true });
    rec.ctx = { ...rec.ctx, log: pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
    await collector(k, tokenFile("token-1").path, { insecure: true, ca_file: "/nonexistent/ca.crt" }).run(rec.ctx);
    expect(rec.degraded).toEqual([]);
    expect(rec.events).toHaveLength(5);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([[40, "collector test: TLS verification of the kubelet is off (insecure: true); its identity is not checked"]]);
  });

  test("500, garbage and truncated answers: degraded, parse errors counted, and the next good poll works", async () => {
    const k = kubelet();
    const answers = [
      () => new Response("internal error: runtime not ready", { status: 500 }),
      () => new Response("<html>not json</html>"),
      () => new Response(PODS_JSON.slice(0, 5000)),
      () => new Response(""),
    ];
    let n = 0;
    k.answers.set("/pods", () => (answers[n++] ?? (() => new Response(PODS_JSON)))());
    const run = runInBackground(collector(k, tokenFile("token-1").path, { pods_interval: "20ms", stats_interval: "1h" }));
    await waitFor(() => run.rec.events.length >= 5, "the events of the first good poll");
    expect(run.rec.degraded).toEqual([
      "/pods: the kubelet answered /pods with HTTP 500: internal error: runtime not ready",
      "/pods: the kubelet's /pods is not JSON",
      "/pods: the kubelet's /pods is not JSON",
      "/pods: the kubelet's /pods is not JSON",
    ]);
    expect(run.rec.parseErrors.map((p) => p.source)).toEqual(["/pods", "/pods", "/pods"]);
    expect(run.rec.parseErrors[1]?.detail).toContain("5000 characters");
    expect(run.rec.parseErrors[2]?.detail).toContain("0 characters");
    await run.stop();
  });

  test("JSON of the wrong shape counts a parse error", async () => {
    const k = kubelet();
    k.answers.set("/stats/summary", '{"kind":"Status","status":"Failure"}');
    const rec = await runOnce(collector(k, tokenFile("token-1").path));
    expect(rec.parseErrors).toEqual([{ source: "/stats/summary", detail: "expected a stats summary object with a node" }]);
    expect(rec.degraded).toEqual(["/stats/summary: the kubelet's /stats/summary has an unexpected shape"]);
    expect(rec.events).toHaveLength(5);
  });

  test("one failing endpoint keeps the collector degraded while the other works", async () => {
    const k = kubelet();
    k.answers.set("/stats/summary", () => new Response("nope", { status: 503 }));
    const run = runInBackground(collector(k, tokenFile("token-1").path, { pods_interval: "20ms", stats_interval: "20ms" }));
    await waitFor(() => k.requests.filter((r) => r.path === "/pods").length >= 4, "several polls");
    const health = { calls: run.rec.healthyCalls, degraded: run.rec.degraded.length };
    expect(health.calls).toBe(0);
    expect(health.degraded).toBeGreaterThanOrEqual(2);
    k.answers.set("/stats/summary", () => new Response("{\"node\":{}}"));
    await waitFor(() => run.rec.healthyCalls > 0, "healthy once both work");
    await run.stop();
  });

  test("a wrong token: degraded, naming the token file", async () => {
    const k = kubelet("right");
    const token = tokenFile("wrong").path;
    const rec = await runOnce(collector(k, token));
    expect(rec.degraded).toEqual([
      `/pods: the kubelet answered /pods with HTTP 401: the token in ${token} was not accepted`,
      `/stats/summary: the kubelet answered /stats/summary with HTTP 401: the token in ${token} was not accepted`,
    ]);
  });

  test("a missing token file: degraded, no request sent", async () => {
    const k = kubelet();
    const rec = await runOnce(collector(k, "/nonexistent/token"));
    expect(rec.degraded).toEqual([
      "/pods: token_file: /nonexistent/token does not exist (is the host path mounted?)",
      "/stats/summary: token_file: /nonexistent/token does not exist (is the host path mounted?)",
    ]);
    expect(k.requests).toEqual([]);
  });

  test("no kubelet listening: degraded, and the collector keeps polling until stopped", async () => {
    const k = kubelet();
    const url = k.url;
    k.stop();
    const run = runInBackground(new KubeletCollector(v.parse(kubeletConfigSchema, { address: url, token_file: tokenFile("t").path, ca_file: pki.caFile, pods_interval: "20ms" })));
    await waitFor(() => run.rec.degraded.length >= 3, "three failed polls");
    expect(run.rec.degraded[0]).toBe(`/pods: cannot connect to the kubelet at ${url}: connection refused`);
    expect(await run.stop()).toBeLessThan(100);
  });

  test("a kubelet that does not answer in time", async () => {
    const k = kubelet();
    k.answers.set("/pods", () => new Response(new ReadableStream({ pull: () => Bun.sleep(10_000) })));
    const rec = await runOnce(collector(k, tokenFile("token-1").path, { timeout: "100ms" }));
    expect(rec.degraded).toEqual([`/pods: the kubelet at ${k.url} did not answer /pods within 0.1s`]);
  });
});

describe("kubelet config", () => {
  test("defaults", () => {
    const c = v.parse(kubeletFactory.configSchema, undefined);
    expect(JSON.parse(JSON.stringify(c))).toEqual({
      address: "https://127.0.0.1:10250",
      token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token",
      ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
      insecure: false,
      pods_interval: "10s",
      stats_interval: "30s",
      timeout: "10s",
      max_response_bytes: 64 * 1024 * 1024,
      crash_loop_restarts: 3,
      ignore_waiting_reasons: ["ContainerCreating", "PodInitializing"],
      not_ready_after: "30s",
      ephemeral_storage_percent: 90,
      node_memory_percent: 90,
      node_cpu_percent: 90,
      node_cpu_cores: 0,
    });
    expect(kubeletFactory.quietPeriodMs?.(c)).toBeUndefined();
  });

  test("bad values are refused with the kit's messages", () => {
    const result = v.safeParse(kubeletFactory.configSchema, { address: "127.0.0.1:10250", node_cpu_percent: 120, adress: "x" });
    expect(result.success).toBe(false);
    expect(result.issues?.map((i) => i.message)).toEqual([
      'expected an http(s) URL like https://127.0.0.1:10250, got "127.0.0.1:10250"',
      "expected a number from 0 to 100, got 120",
      'unknown key "adress" (did you mean "address"?)',
    ]);
  });
});

test("sources (for `check`): GET /pods with the collector's token and CA; a refused token fails naming the status", async () => {
  const k = kubelet("good-token");
  const sources = (token: string) => kubeletFactory.sources!(v.parse(kubeletConfigSchema, { address: k.url, token_file: tokenFile(token).path, ca_file: pki.caFile }));
  const [source] = sources("good-token");
  expect(source!.source).toBe(`${k.url}/pods`);
  await source!.probe(AbortSignal.timeout(5000));
  expect(k.requests.at(-1)).toEqual({ path: "/pods", authorization: "Bearer good-token" });
  const refused = await sources("bad-token")[0]!.probe(AbortSignal.timeout(5000)).then(() => undefined, (e: Error) => e);
  expect(refused?.message).toContain("401");
});
