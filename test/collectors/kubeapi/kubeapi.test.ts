// The kubeapi collector against a local API server that serves the recorded
// Pod watch stream in irregular chunks.
import { afterAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { KubeapiCollector, kubeapiFactory } from "../../../src/collectors/kubeapi/index.ts";
import { defaultApiServer, kubeapiConfigSchema } from "../../../src/collectors/kubeapi/schema.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { runInBackground, runOnce } from "../../helpers/collector-context.ts";
import { testPki } from "../../helpers/tls.ts";
import { tokenFile } from "../kubelet/fake-kubelet.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { listOf, startFakeApiServer, WATCH_LINES, watchObject, type FakeApiServer, type Json } from "./fake-apiserver.ts";

const NODE = "datagen-1-35";
const TOKEN = tokenFile("api-token").path;
const servers: FakeApiServer[] = [];
afterAll(() => {
  for (const s of servers) s.stop();
});

function apiServer(opts: { tls?: boolean; seed?: number } = {}): FakeApiServer {
  const s = startFakeApiServer({ token: "api-token", ...opts });
  servers.push(s);
  return s;
}

function collector(s: FakeApiServer, config: Record<string, unknown> = {}): KubeapiCollector {
  return new KubeapiCollector(
    v.parse(kubeapiConfigSchema, {
      api_server: s.url,
      token_file: TOKEN,
      ca_file: testPki().caFile,
      node_name: NODE,
      reconnect_backoff: { initial: "10ms", max: "50ms" },
      ...config,
    }),
  );
}

/** "ADDED kube-system/kindnet-zkpn8 348": what a k8s.pod event says, in short */
function podChange(e: CollectorEvent): string {
  const r = e.event_data.k8s_resource as { operation: string; namespace: string; name: string; resource_version: string };
  return `${r.operation} ${r.namespace}/${r.name} ${r.resource_version}`;
}

function lineChange(i: number): string {
  const { type, object } = JSON.parse(WATCH_LINES[i]!);
  return `${type} ${object.metadata.namespace}/${object.metadata.name} ${object.metadata.resourceVersion}`;
}

const ADDED_LINES = [...Array(20).keys()]; // lines 0..19 are ADDED, 20 BOOKMARK 861, 21 DELETED 863, 22 ERROR 410

describe("kubeapi collector: pods", () => {
  test("list, watch in chunks, bookmark, reconnect, 410 in-stream and as HTTP: re-list with DELETED for vanished pods", async () => {
    const s = apiServer({ seed: 7 });
    // first list: the four pods older than resourceVersion 400
    s.lists.pods.push(listOf("PodList", [0, 1, 2, 3].map(watchObject), "400"));
    const afterGone = ADDED_LINES.map(watchObject).filter(
      (p) => !["e2e-failjob-64h4g", "e2e-failjob-4kj9v", "e2e-cronjob-29707813-dhlr2"].includes(p.metadata.name),
    );
    const moved = afterGone.find((p) => p.metadata.name === "e2e-statefulset-1")!;
    moved.metadata.resourceVersion = "890";
    s.lists.pods.push(listOf("PodList", afterGone, "900"), listOf("PodList", afterGone, "950"));
    s.watches.pods.push(
      { lines: WATCH_LINES.slice(4, 21), then: "close" }, // ADDED 429..854, then BOOKMARK 861
      { lines: WATCH_LINES.slice(21, 22), then: "close" }, // DELETED 863
      { lines: WATCH_LINES.slice(22), then: "hold" }, // ERROR 410 Expired
      { status: 410, body: '{"kind":"Status","code":410,"reason":"Expired"}' },
      { lines: [], then: "hold" },
    );
    const run = runInBackground(collector(s, { events: false }));
    await waitFor(() => s.watchesOf("pods").length >= 5, "the fifth watch");

    expect(run.rec.events.map(podChange)).toEqual([
      ...ADDED_LINES.map(lineChange),
      lineChange(21),
      "MODIFIED scraper/e2e-statefulset-1 890",
      "DELETED scraper/e2e-failjob-4kj9v 597",
      "DELETED scraper/e2e-cronjob-29707813-dhlr2 632",
    ]);
    // the reconnect after the bookmark resumes from it; after a 410 a new list's version is used
    expect(s.watchesOf("pods").map((r) => r.query.get("resourceVersion"))).toEqual(["400", "861", "863", "900", "950"]);
    for (const r of s.requests) {
      expect(r.query.get("fieldSelector")).toBe(`spec.nodeName=${NODE}`);
      expect(r.authorization).toBe("Bearer api-token");
    }
    for (const r of s.watchesOf("pods")) expect(r.query.get("allowWatchBookmarks")).toBe("true");
    expect(s.requests.filter((r) => !r.watch).map((r) => r.query.get("limit"))).toEqual(["500", "500", "500"]);
    // the stream really came in pieces, lines cut across them
    expect(s.chunks.length).toBeGreaterThan(30);
    expect(run.rec.parseErrors).toEqual([]);
    expect(run.rec.degraded).toEqual([]);
    expect(await run.stop()).toBeLessThan(100);
  });

  test("the events carry k8s_resource, metadata and a stable id", async () => {
    const s = apiServer();
    s.lists.pods.push(listOf("PodList", [watchObject(5), watchObject(13)], "600"));
    const rec = await runOnce(collector(s, { events: false }));
    const [creating, failed] = rec.events;
    expect(creating).toMatchObject({
      type: "k8s.pod",
      severity: "info",
      event_id: "pod:567cc614-001a-402b-99fd-3d1f8db83f30:517:ADDED",
      source: "test",
      event_data: {
        k8s_resource: {
          api_version: "v1",
          kind: "Pod",
          name: "e2e-container-creating",
          namespace: "scraper",
          uid: "567cc614-001a-402b-99fd-3d1f8db83f30",
          operation: "ADDED",
          resource_version: "517",
          phase: "Running",
          conditions: ["PodReadyToStartContainers=True", "Initialized=True", "Ready=False", "ContainersReady=False", "PodScheduled=True"],
        },
      },
      metadata: { pod_name: "e2e-container-creating", pod_namespace: "scraper", pod_uid: "567cc614-001a-402b-99fd-3d1f8db83f30", node_name: NODE },
    });
    expect(failed).toMatchObject({
      severity: "warning",
      event_data: { k8s_resource: { name: "e2e-failjob-64h4g", phase: "Failed", owner_kind: "Job", owner_name: "e2e-failjob", labels: { "batch.kubernetes.io/job-name": "e2e-failjob" } } },
    });
    expect(s.watchesOf("pods")).toEqual([]);
  });

  test("malformed lines count parse errors and the watch goes on", async () => {
    const s = apiServer({ seed: 3 });
    s.lists.pods.push(listOf("PodList", [], "100"));
    s.watches.pods.push(
      {
        lines: [
          WATCH_LINES[0]!,
          "{not json",
          WATCH_LINES[1]!.slice(0, 500),
          '{"type":"ADDED"}',
          '{"type":"SOMETHING","object":{}}',
          "[]",
          WATCH_LINES[2]!,
          '{"type":"ADDED","object":{"metadata":{"name":"no-uid"}}}',
          WATCH_LINES[3]!,
        ],
        then: "hold",
      },
    );
    const run = runInBackground(collector(s, { events: false }));
    await waitFor(() => run.rec.events.length >= 3, "the three good lines");
    expect(run.rec.events.map(podChange)).toEqual([lineChange(0), lineChange(2), lineChange(3)]);
    expect(run.rec.parseErrors.map((p) => p.source)).toEqual(Array(6).fill("pods watch"));
    expect(run.rec.parseErrors.map((p) => p.detail.split(":")[0])).toEqual([
      "not JSON",
      "not JSON",
      "ADDED watch event without an object",
      "not a watch event",
      "not a watch event",
      "ADDED pod without metadata.uid",
    ]);
    await run.stop();
  });

  test("a watch that keeps failing: degraded, reconnecting with backoff from the same resourceVersion", async () => {
    const s = apiServer();
    s.lists.pods.push(listOf("PodList", [watchObject(0)], "348"));
    s.watches.pods.push({ status: 500, body: "etcdserver: leader changed" }, { status: 500 }, { lines: [WATCH_LINES[1]!], then: "hold" });
    const run = runInBackground(collector(s, { events: false }));
    await waitFor(() => run.rec.events.length >= 2, "the event after the failures");
    expect(run.rec.degraded).toEqual([
      "pods: the API server answered /api/v1/pods with HTTP 500: etcdserver: leader changed",
      "pods: the API server answered /api/v1/pods with HTTP 500",
    ]);
    expect(s.watchesOf("pods").map((r) => r.query.get("resourceVersion"))).toEqual(["348", "348", "348"]);
    expect(s.requests.filter((r) => !r.watch)).toHaveLength(1);
    expect(run.rec.healthyCalls).toBeGreaterThanOrEqual(2); // after the list, and once the watch is accepted
    await run.stop();
  });

  test("an in-stream error other than 410 reconnects without a re-list", async () => {
    const s = apiServer();
    s.lists.pods.push(listOf("PodList", [], "100"));
    const tooMany = JSON.stringify({ type: "ERROR", object: { kind: "Status", status: "Failure", message: "too many requests", reason: "TooManyRequests", code: 429 } });
    s.watches.pods.push({ lines: [WATCH_LINES[0]!, tooMany], then: "hold" }, { lines: [], then: "hold" });
    const run = runInBackground(collector(s, { events: false }));
    await waitFor(() => s.watchesOf("pods").length >= 2, "the second watch");
    expect(run.rec.degraded).toEqual(["pods: the API server ended the pods watch with an error: 429 TooManyRequests too many requests"]);
    expect(s.watchesOf("pods").map((r) => r.query.get("resourceVersion"))).toEqual(["100", "348"]);
    await run.stop();
  });

  test("a watch the server does not end by timeoutSeconds is dropped a grace later, and resumed", async () => {
    const s = apiServer();
    s.lists.pods.push(listOf("PodList", [], "1"));
    s.watches.pods.push({ lines: [WATCH_LINES[0]!], then: "hold" }, { lines: [], then: "hold" });
    // timeoutSeconds=1 asked; this server ignores it: dropped after 200ms + min(30s, 200ms)
    const run = runInBackground(collector(s, { events: false, watch_timeout: "200ms" }));
    const t0 = performance.now();
    await waitFor(() => s.watchesOf("pods").length >= 2, "the second watch");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    expect(s.watchesOf("pods").map((r) => [r.query.get("timeoutSeconds"), r.query.get("resourceVersion")])).toEqual([
      ["1", "1"],
      ["1", "348"],
    ]);
    expect(run.rec.degraded).toEqual([]);
    expect(await run.stop()).toBeLessThan(100);
  });
});

describe("kubeapi collector: events", () => {
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
  function event(name: string, rv: string, fields: Json): Json {
    return {
      metadata: { name, namespace: "scraper", uid: `uid-${name}`, resourceVersion: rv, creationTimestamp: "2026-06-26T10:14:30Z" },
      reason: "BackOff",
      message: "Back-off restarting failed container alpine",
      type: "Warning",
      count: 1,
      firstTimestamp: "2026-06-26T10:14:30Z",
      lastTimestamp: now(),
      source: { component: "kubelet", host: NODE },
      ...fields,
    };
  }
  const creatingPod = { kind: "Pod", namespace: "scraper", name: "e2e-container-creating", uid: "567cc614-001a-402b-99fd-3d1f8db83f30", fieldPath: "spec.containers{alpine}" };

  function scenario(s: FakeApiServer) {
    s.lists.pods.push(listOf("PodList", [watchObject(5)], "500"));
    const backoff = event("backoff", "201", { involvedObject: creatingPod });
    const old = event("old", "150", { involvedObject: { kind: "Pod", namespace: "kube-system", name: "kindnet-zkpn8", uid: "ebb73de1" }, lastTimestamp: "2026-06-26T10:12:20Z", reason: "Pulled", type: "Normal" });
    const elsewhere = event("elsewhere", "202", { involvedObject: { kind: "Pod", namespace: "scraper", name: "other", uid: "other-uid" }, source: { component: "kubelet", host: "other-node" } });
    const nodeEvent = event("node", "203", { involvedObject: { kind: "Node", name: NODE, uid: NODE }, reason: "NodeHasDiskPressure", type: "Normal", source: { component: "kubelet", host: NODE } });
    const byKubelet = event("gone-pod", "204", { involvedObject: { kind: "Pod", namespace: "scraper", name: "gone", uid: "gone-uid" }, reason: "Killing", type: "Normal" });
    s.lists.events.push(listOf("EventList", [backoff, old, elsewhere, nodeEvent, byKubelet], "210"));
    s.watches.pods.push({ lines: [], then: "hold" });
    s.watches.events.push({
      lines: [
        JSON.stringify({ type: "MODIFIED", object: { ...backoff, count: 2, metadata: { ...backoff.metadata, resourceVersion: "211" } } }),
        JSON.stringify({ type: "MODIFIED", object: { ...backoff, count: 2, metadata: { ...backoff.metadata, resourceVersion: "211" } } }),
        JSON.stringify({ type: "MODIFIED", object: { ...elsewhere, metadata: { ...elsewhere.metadata, resourceVersion: "212" } } }),
        JSON.stringify({ type: "DELETED", object: nodeEvent }),
        JSON.stringify({ type: "BOOKMARK", object: { kind: "Event", metadata: { resourceVersion: "213" } } }),
        JSON.stringify({ type: "MODIFIED", object: { ...old, count: 4, lastTimestamp: now(), metadata: { ...old.metadata, resourceVersion: "214" } } }),
      ],
      then: "hold",
    });
  }

  function summary(e: CollectorEvent): string {
    const k = e.event_data.k8s_event as { action: string; reason: string; count: number; involved_object: { kind: string; name: string } };
    return `${k.action} ${k.involved_object.kind}/${k.involved_object.name} ${k.reason} x${k.count} ${e.severity}`;
  }

  test("Events about this node and its pods, newer than the agent's start, each version once", async () => {
    const s = apiServer({ seed: 11 });
    scenario(s);
    const run = runInBackground(collector(s));
    await waitFor(() => run.rec.events.filter((e) => e.type === "k8s.event").length >= 5, "five k8s.event events");
    await Bun.sleep(50);
    const events = run.rec.events.filter((e) => e.type === "k8s.event");
    expect(events.map(summary)).toEqual([
      "ADDED Pod/e2e-container-creating BackOff x1 warning",
      "ADDED Node/datagen-1-35 NodeHasDiskPressure x1 info",
      "ADDED Pod/gone Killing x1 info",
      "MODIFIED Pod/e2e-container-creating BackOff x2 warning",
      "MODIFIED Pod/kindnet-zkpn8 Pulled x4 info",
    ]);
    const backoff = events[0]!;
    expect(backoff.event_id).toBe("event:uid-backoff:201");
    expect(backoff.event_data).toEqual({
      k8s_event: {
        action: "ADDED",
        reason: "BackOff",
        message: "Back-off restarting failed container alpine",
        type: "Warning",
        count: 1,
        first_time: "2026-06-26T10:14:30Z",
        last_time: (backoff.event_data.k8s_event as { last_time: string }).last_time,
        involved_object: { kind: "Pod", name: "e2e-container-creating", namespace: "scraper", uid: "567cc614-001a-402b-99fd-3d1f8db83f30" },
        source: { component: "kubelet", host: NODE },
      },
    });
    expect(backoff.metadata).toMatchObject({ pod_name: "e2e-container-creating", pod_namespace: "scraper", pod_uid: "567cc614-001a-402b-99fd-3d1f8db83f30", container_name: "alpine", node_name: NODE });
    // events are listed without a selector, and watched from their list's version
    const eventRequests = s.requests.filter((r) => r.resource === "events");
    expect(eventRequests.map((r) => [r.watch, r.query.get("fieldSelector"), r.query.get("resourceVersion")])).toEqual([
      [false, null, null],
      [true, null, "210"],
    ]);
    // the event list came after the pod list (to know this node's pods)
    expect(s.requests.findIndex((r) => r.resource === "events")).toBeGreaterThan(s.requests.findIndex((r) => r.resource === "pods" && !r.watch));
    await run.stop();
  });

  test("--once over HTTPS: the current pods as ADDED and the recent Events, no watch", async () => {
    const s = apiServer({ tls: true });
    scenario(s);
    const rec = await runOnce(collector(s));
    expect(rec.events.map((e) => (e.type === "k8s.pod" ? `k8s.pod ${podChange(e)}` : summary(e)))).toEqual([
      "k8s.pod ADDED scraper/e2e-container-creating 517",
      "ADDED Pod/e2e-container-creating BackOff x1 warning",
      "ADDED Node/datagen-1-35 NodeHasDiskPressure x1 info",
      "ADDED Pod/gone Killing x1 info",
    ]);
    expect(s.requests.filter((r) => r.watch)).toEqual([]);
    expect(rec.degraded).toEqual([]);
    expect(rec.healthyCalls).toBe(1);
  });

  test("Events the service account may not list: degraded, while pods go on", async () => {
    const s = apiServer();
    s.lists.pods.push(listOf("PodList", [watchObject(0)], "348"));
    s.lists.events.push(403);
    s.watches.pods.push({ lines: [WATCH_LINES[1]!], then: "hold" });
    const run = runInBackground(collector(s));
    await waitFor(() => run.rec.events.length >= 2 && run.rec.degraded.length >= 2, "pods events and events failures");
    expect(run.rec.degraded[0]).toBe("events: the API server answered /api/v1/events with HTTP 403: the service account may not read it (check its RBAC rules)");
    expect(run.rec.healthyCalls).toBe(0);
    await run.stop();
  });
});

describe("kubeapi collector: setup", () => {
  test("pages of a list are followed with continue", async () => {
    const s = apiServer();
    s.lists.pods.push(
      { kind: "PodList", metadata: { resourceVersion: "700", continue: "page-2" }, items: [watchObject(0)] },
      { kind: "PodList", metadata: { resourceVersion: "700" }, items: [watchObject(1)] },
    );
    const rec = await runOnce(collector(s, { events: false, page_size: 1 }));
    expect(rec.events.map(podChange)).toEqual([lineChange(0), lineChange(1)]);
    expect(s.requests.map((r) => [r.query.get("limit"), r.query.get("continue")])).toEqual([
      ["1", null],
      ["1", "page-2"],
    ]);
  });

  test("a list that is not JSON: parse error, degraded", async () => {
    const s = apiServer();
    s.lists.pods.push({ kind: "Status" });
    const rec = await runOnce(collector(s, { events: false }));
    expect(rec.parseErrors).toEqual([{ source: "pods list", detail: "expected a pods list object with items" }]);
    expect(rec.degraded).toEqual(["pods: the API server's list of pods is not a list"]);
  });

  test("a list page larger than max_response_bytes: parse error, degraded, not read past the limit", async () => {
    const s = apiServer();
    const big = { ...watchObject(0), metadata: { ...watchObject(0).metadata, annotations: { filler: "x".repeat(2 * 1024 * 1024) } } };
    s.lists.pods.push(listOf("PodList", [big], "100"));
    const rec = await runOnce(collector(s, { events: false, max_response_bytes: "1MiB" }));
    const message = "the API server answered /api/v1/pods with a body larger than max_response_bytes (1048576 bytes)";
    expect(rec.parseErrors).toEqual([{ source: "pods list", detail: message }]);
    expect(rec.degraded).toEqual([`pods: ${message}`]);
    expect(rec.events).toEqual([]);
  });

  test("a watch line longer than max_response_bytes is skipped as a parse error and the watch goes on", async () => {
    const s = apiServer({ seed: 5 });
    s.lists.pods.push(listOf("PodList", [], "100"));
    const long = JSON.stringify({ type: "ADDED", object: { ...watchObject(1), metadata: { ...watchObject(1).metadata, annotations: { filler: "x".repeat(2 * 1024 * 1024) } } } });
    s.watches.pods.push({ lines: [WATCH_LINES[0]!, long, WATCH_LINES[2]!], then: "hold" });
    const run = runInBackground(collector(s, { events: false, max_response_bytes: "1MiB" }));
    await waitFor(() => run.rec.events.length >= 2, "the two good lines");
    expect(run.rec.events.map(podChange)).toEqual([lineChange(0), lineChange(2)]);
    expect(run.rec.parseErrors.map((p) => p.source)).toEqual(["pods watch"]);
    expect(run.rec.parseErrors[0]!.detail).toMatch(/^a line of more than \d+ characters, skipped$/);
    await run.stop();
  });

  test("a failing list shows the API server's own message", async () => {
    const s = apiServer();
    s.lists.pods.push(500);
    const rec = await runOnce(collector(s, { events: false }));
    expect(rec.degraded).toEqual(["pods: the API server answered /api/v1/pods with HTTP 500: scripted failure"]);
  });

  test("an API server whose certificate is not signed by ca_file", async () => {
    const s = apiServer({ tls: true });
    const rec = await runOnce(collector(s, { events: false, ca_file: testPki().clientCert }));
    expect(rec.degraded[0]).toStartWith(`pods: TLS verification of the API server at ${s.url} failed (`);
    expect(rec.degraded[0]).toEndWith(`is ca_file (${testPki().clientCert}) the cluster's CA?`);
  });

  test("config defaults, and the API server from KUBERNETES_SERVICE_HOST/PORT", () => {
    const saved = { ...process.env };
    try {
      process.env.KUBERNETES_SERVICE_HOST = "10.96.0.1";
      process.env.KUBERNETES_SERVICE_PORT = "6443";
      process.env.NODE_NAME = "node-7";
      const c = v.parse(kubeapiFactory.configSchema, undefined);
      expect(JSON.parse(JSON.stringify(c))).toEqual({
        api_server: "https://10.96.0.1:6443",
        token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        node_name: "node-7",
        events: true,
        page_size: 500,
        timeout: "30s",
        max_response_bytes: 64 * 1024 * 1024,
        watch_timeout: "5m",
        reconnect_backoff: { initial: "500ms", max: "30s" },
      });
      expect(kubeapiFactory.quietPeriodMs?.(c)).toBeUndefined();
    } finally {
      process.env = saved;
    }
    expect(defaultApiServer({})).toBe("https://kubernetes.default.svc");
    expect(defaultApiServer({ KUBERNETES_SERVICE_HOST: "fd00::1" })).toBe("https://[fd00::1]:443");
  });

  test("bad config values are refused", () => {
    const result = v.safeParse(kubeapiFactory.configSchema, { api_server: "kubernetes", reconnect_backoff: { initial: "1m", max: "1s" } });
    expect(result.issues?.map((i) => i.message)).toEqual(['expected an http(s) URL like https://kubernetes.default.svc, got "kubernetes"']);
    const backoff = v.safeParse(kubeapiFactory.configSchema, { reconnect_backoff: { initial: "1m", max: "1s" } });
    expect(backoff.issues?.map((i) => i.message)).toEqual(["reconnect_backoff.initial must not be longer than reconnect_backoff.max"]);
  });
});

test("sources (for `check`): one pod listed with the collector's token and CA; a refused token fails naming the status", async () => {
  const s = apiServer();
  const sources = (token: string) =>
    kubeapiFactory.sources!(v.parse(kubeapiConfigSchema, { api_server: s.url, token_file: token, ca_file: testPki().caFile, node_name: NODE }));
  s.lists.pods.push(listOf("PodList", [watchObject(0)], "100"), listOf("PodList", [watchObject(0)], "100"));
  const [source] = sources(TOKEN);
  expect(source!.source).toBe(`${s.url}/api/v1/pods?limit=1`);
  await source!.probe(AbortSignal.timeout(5000));
  expect(s.requests.at(-1)).toMatchObject({ resource: "pods", watch: false, authorization: "Bearer api-token" });
  const refused = await sources(tokenFile("wrong").path)[0]!.probe(AbortSignal.timeout(5000)).then(() => undefined, (e: Error) => e);
  expect(refused?.message).toContain("401");
});
