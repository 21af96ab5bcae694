// PodTracker: which changes between two /pods responses become events.
import { describe, expect, test } from "bun:test";
import type { EventInput } from "../../../src/event/event.ts";
import { parseQuantity, PodTracker, type PodRules } from "../../../src/collectors/kubelet/pods.ts";
import { PODS_JSON } from "./fake-kubelet.ts";

const RULES: PodRules = { crashLoopRestarts: 3, ignoreWaitingReasons: new Set(["ContainerCreating", "PodInitializing"]), notReadyAfterMs: 30_000 };
const NOW = Date.parse("2026-11-25T12:00:00Z");

type Pod = Record<string, any>;

function fixture(): { items: Pod[] } {
  return JSON.parse(PODS_JSON);
}

function pod(list: { items: Pod[] }, name: string): Pod {
  const found = list.items.find((p) => p.metadata.name === name);
  if (!found) throw new Error(`no pod ${name} in the fixture`);
  return found;
}

function update(tracker: PodTracker, body: unknown, now = NOW): { events: EventInput[]; bad: string[] } {
  const events: EventInput[] = [];
  const bad: string[] = [];
  expect(tracker.update(body, now, events, (d) => bad.push(d))).toBe(true);
  return { events, bad };
}

/** type, pod/container, severity: enough to tell the events apart */
function summary(events: EventInput[]): string[] {
  return events.map((e) => {
    const k = e.event_data.kubelet as { pod_lifecycle: { pod: string; container?: string } };
    const where = k.pod_lifecycle.container ? `${k.pod_lifecycle.pod}/${k.pod_lifecycle.container}` : k.pod_lifecycle.pod;
    return `${e.type} ${where} ${e.severity}`;
  });
}

function lifecycle(e: EventInput | undefined): Record<string, unknown> {
  return (e?.event_data.kubelet as { pod_lifecycle: Record<string, unknown> }).pod_lifecycle;
}

describe("PodTracker", () => {
  test("first sight reports present conditions only, and a second identical poll reports nothing", () => {
    const tracker = new PodTracker(RULES);
    const first = update(tracker, fixture());
    expect(first.bad).toEqual([]);
    expect(summary(first.events)).toEqual([
      "kubelet.container.terminated e2e-failjob-64h4g/main warning",
      "kubelet.container.terminated e2e-failjob-4kj9v/main warning",
      "kubelet.container.terminated e2e-failjob-28dqq/main warning",
      "kubelet.pod.not_ready e2e-container-creating warning",
      "kubelet.container.terminated e2e-failjob-p2w8g/main warning",
    ]);
    // restartCount 2 with an exit-0 lastState is a baseline, not an event
    expect(update(tracker, fixture()).events).toEqual([]);
  });

  test("a restart after a clean exit is container_restarted, with the last exit", () => {
    const tracker = new PodTracker(RULES);
    update(tracker, fixture());
    const next = fixture();
    const cs = pod(next, "e2e-container-creating").status.containerStatuses[0];
    cs.lastState = { terminated: { ...cs.state.terminated, containerID: "containerd://run3" } };
    cs.state = { running: { startedAt: "2026-06-26T10:15:00Z" } };
    cs.restartCount = 3;
    const { events } = update(tracker, next);
    expect(summary(events)).toEqual(["kubelet.container.restarted e2e-container-creating/alpine low"]);
    expect(lifecycle(events[0])).toMatchObject({ status: "running", restart_count: 3, last_exit_code: 0, last_reason: "Completed" });
  });

  test("an OOM kill seen through lastState is a high terminated event, reported once", () => {
    const tracker = new PodTracker(RULES);
    update(tracker, fixture());
    const next = fixture();
    const cs = pod(next, "e2e-hpa-6cd8d99884-tggnr").status.containerStatuses[0];
    cs.restartCount = 1;
    cs.lastState = { terminated: { exitCode: 137, reason: "OOMKilled", startedAt: "2026-06-26T10:13:00Z", finishedAt: "2026-06-26T10:20:00Z", containerID: "containerd://oomed" } };
    const { events } = update(tracker, next);
    expect(summary(events)).toEqual(["kubelet.container.terminated e2e-hpa-6cd8d99884-tggnr/php-apache high"]);
    expect(lifecycle(events[0])).toMatchObject({ status: "terminated", reason: "OOMKilled", exit_code: 137, restart_count: 1, timestamp: "2026-06-26T10:20:00Z" });
    expect(events[0]?.metadata).toMatchObject({ container_id: "oomed", container_name: "php-apache", pod_namespace: "scraper" });
    expect(update(tracker, next).events).toEqual([]);
  });

  test("a termination seen in state is not reported again when it moves to lastState", () => {
    const tracker = new PodTracker(RULES);
    const dying = fixture();
    const cs = pod(dying, "e2e-hpa-6cd8d99884-tggnr").status.containerStatuses[0];
    // an id without the runtime prefix is kept whole
    const run = { exitCode: 1, reason: "Error", startedAt: "2026-06-26T10:13:00Z", finishedAt: "2026-06-26T10:20:00Z", containerID: "run0" };
    update(tracker, fixture());
    cs.state = { terminated: run };
    const died = update(tracker, dying).events;
    expect(summary(died)).toEqual(["kubelet.container.terminated e2e-hpa-6cd8d99884-tggnr/php-apache warning"]);
    expect(died[0]?.metadata?.container_id).toBe("run0");
    cs.state = { running: { startedAt: "2026-06-26T10:20:05Z" } };
    cs.lastState = { terminated: run };
    cs.restartCount = 1;
    // the restart is news; the exit it reveals was already reported
    expect(summary(update(tracker, dying).events)).toEqual(["kubelet.container.restarted e2e-hpa-6cd8d99884-tggnr/php-apache low"]);
  });

  test("a crash loop is reported when first seen above crash_loop_restarts and whenever it grows", () => {
    const tracker = new PodTracker(RULES);
    const looping = fixture();
    const cs = pod(looping, "e2e-container-creating").status.containerStatuses[0];
    cs.lastState = { terminated: { exitCode: 1, reason: "Error", containerID: "containerd://a" } };
    cs.state = { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" } };
    cs.restartCount = 4;
    // first sight above the threshold: reported, and CrashLoopBackOff is left to crash_loop
    const first = update(tracker, looping).events.filter((e) => e.type !== "kubelet.pod.not_ready" && e.type !== "kubelet.container.terminated");
    expect(summary(first)).toEqual(["kubelet.container.crash_loop e2e-container-creating/alpine error"]);
    expect(lifecycle(first[0])).toMatchObject({ status: "waiting", reason: "CrashLoopBackOff", restart_count: 4, last_exit_code: 1, last_reason: "Error" });
    expect(update(tracker, looping).events).toEqual([]);
    cs.restartCount = 5;
    cs.lastState = { terminated: { exitCode: 1, reason: "Error", containerID: "containerd://b" } };
    expect(summary(update(tracker, looping).events)).toEqual(["kubelet.container.crash_loop e2e-container-creating/alpine error"]);
  });

  test("crossing crash_loop_restarts turns restarts into a crash loop", () => {
    const tracker = new PodTracker({ ...RULES, crashLoopRestarts: 2 });
    update(tracker, fixture());
    const next = fixture();
    pod(next, "e2e-container-creating").status.containerStatuses[0].restartCount = 3;
    expect(summary(update(tracker, next).events)).toEqual(["kubelet.container.crash_loop e2e-container-creating/alpine error"]);
  });

  test("a waiting reason is reported on change; start-up reasons are ignored", () => {
    const tracker = new PodTracker(RULES);
    update(tracker, fixture());
    const next = fixture();
    const cs = pod(next, "e2e-statefulset-1").status.containerStatuses[0];
    cs.state = { waiting: { reason: "ContainerCreating" } };
    expect(update(tracker, next).events).toEqual([]);
    cs.state = { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image \"nope:1\"" } };
    const { events } = update(tracker, next);
    expect(summary(events)).toEqual(["kubelet.container.waiting e2e-statefulset-1/compute-pi-digits warning"]);
    expect(lifecycle(events[0])).toMatchObject({ status: "waiting", reason: "ImagePullBackOff", message: "Back-off pulling image \"nope:1\"" });
    expect(update(tracker, next).events).toEqual([]);
    cs.state = { waiting: { reason: "ErrImagePull" } };
    expect(summary(update(tracker, next).events)).toEqual(["kubelet.container.waiting e2e-statefulset-1/compute-pi-digits warning"]);
  });

  test("a pod not ready is reported after not_ready_after, once, and again after it was ready", () => {
    const tracker = new PodTracker(RULES);
    const list = fixture();
    const ready = pod(list, "e2e-deployment-79967c5968-zjslc").status.conditions.find((c: Pod) => c.type === "Ready");
    const since = NOW - 10_000;
    Object.assign(ready, { status: "False", reason: "ContainersNotReady", lastTransitionTime: new Date(since).toISOString() });
    const notReady = (now: number) => summary(update(tracker, list, now).events).filter((s) => s.includes("zjslc"));
    expect(notReady(NOW)).toEqual([]);
    expect(notReady(since + 30_000)).toEqual(["kubelet.pod.not_ready e2e-deployment-79967c5968-zjslc warning"]);
    expect(notReady(since + 60_000)).toEqual([]);
    ready.status = "True";
    expect(notReady(since + 70_000)).toEqual([]);
    ready.status = "False";
    expect(notReady(since + 80_000)).toEqual(["kubelet.pod.not_ready e2e-deployment-79967c5968-zjslc warning"]);
  });

  test("pods that ended or are being deleted are not reported as not ready", () => {
    const tracker = new PodTracker(RULES);
    const list = fixture();
    const p = pod(list, "e2e-container-creating");
    p.metadata.deletionTimestamp = "2026-06-26T10:15:00Z";
    expect(summary(update(tracker, list).events).filter((s) => s.includes("not_ready"))).toEqual([]);
  });

  test("a pod that disappears is forgotten", () => {
    const tracker = new PodTracker(RULES);
    update(tracker, fixture());
    const without = fixture();
    without.items = without.items.filter((p) => p.metadata.name !== "e2e-failjob-64h4g");
    expect(update(tracker, without).events).toEqual([]);
    // back (same uid): first sight again, so its present failure is reported again
    expect(summary(update(tracker, fixture()).events)).toEqual(["kubelet.container.terminated e2e-failjob-64h4g/main warning"]);
  });

  test("ephemeral-storage limits are summed over a pod's containers", () => {
    const tracker = new PodTracker(RULES);
    const list = fixture();
    const p = pod(list, "e2e-scraper-5f97dc94d8-vkcjl");
    p.spec.containers[0].resources = { limits: { "ephemeral-storage": "10Mi" } };
    p.spec.containers.push({ name: "side", resources: { limits: { "ephemeral-storage": "4Mi" } } });
    update(tracker, list);
    expect(tracker.storageLimit(p.metadata.uid)).toBe(14 * 2 ** 20);
    expect(tracker.storageLimit(pod(list, "e2e-statefulset-0").metadata.uid)).toBeUndefined();
  });

  test("parts it cannot read are reported and skipped; a body that is not a PodList is refused", () => {
    const tracker = new PodTracker(RULES);
    const bad: string[] = [];
    const events: EventInput[] = [];
    expect(tracker.update({ items: [42, { metadata: {} }, { metadata: { uid: "u" }, status: { containerStatuses: [{}] } }] }, NOW, events, (d) => bad.push(d))).toBe(true);
    expect(bad).toEqual(["item 0 is not a pod with metadata.uid", "item 1 is not a pod with metadata.uid", "pod / has a container status without a name"]);
    expect(tracker.update([], NOW, events, (d) => bad.push(d))).toBe(false);
    expect(tracker.update({ kind: "PodList", items: null }, NOW, events, (d) => bad.push(d))).toBe(true);
    expect(events).toEqual([]);
  });
});

test("a pod's ephemeral-storage limit is whole bytes, rounded up as Kubernetes rounds quantities", () => {
  const tracker = new PodTracker(RULES);
  const pods = fixture();
  const hpa = pod(pods, "e2e-hpa-6cd8d99884-tggnr");
  hpa.spec.containers[0].resources.limits["ephemeral-storage"] = "1500m";
  update(tracker, pods);
  expect(tracker.storageLimit(hpa.metadata.uid)).toBe(2);
});

test("parseQuantity reads Kubernetes quantities", () => {
  expect(parseQuantity("1Gi")).toBe(2 ** 30);
  expect(parseQuantity("500M")).toBe(5e8);
  expect(parseQuantity("1e3")).toBe(1000);
  expect(parseQuantity("1E")).toBe(1e18);
  expect(parseQuantity("1.5Ki")).toBe(1536);
  expect(parseQuantity("12")).toBe(12);
  expect(parseQuantity("")).toBeUndefined();
  expect(parseQuantity("1 Gi")).toBeUndefined();
  expect(parseQuantity("Gi")).toBeUndefined();
});
