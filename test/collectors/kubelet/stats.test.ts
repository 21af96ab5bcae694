// StatsTracker: threshold crossings in /stats/summary, with hysteresis.
import { describe, expect, test } from "bun:test";
import type { EventInput } from "../../../src/event/event.ts";
import { StatsTracker, type StatsRules } from "../../../src/collectors/kubelet/stats.ts";
import { STATS_JSON } from "./fake-kubelet.ts";

// The fixture's node: 573081903 nanocores, working set 917110784 of 917110784 + 7299776512 bytes (11.16%).
const RULES: StatsRules = { nodeCpuPercent: 90, nodeMemoryPercent: 90, ephemeralStoragePercent: 90, nodeCpuCores: 4 };
const NOW = Date.parse("2026-11-25T12:00:00Z");
const SCRAPER_UID = "559f50c7-6133-4901-a283-262ff4358722"; // uses 13295616 bytes of ephemeral storage

type Summary = Record<string, any>;

function fixture(): Summary {
  return JSON.parse(STATS_JSON);
}

function update(tracker: StatsTracker, body: unknown, limits: Record<string, number> = {}): { events: EventInput[]; bad: string[] } {
  const events: EventInput[] = [];
  const bad: string[] = [];
  tracker.update(body, (uid) => limits[uid], NOW, events, (d) => bad.push(d));
  return { events, bad };
}

function states(events: EventInput[]): string[] {
  return events.map((e) => `${e.type} ${(e.event_data.custom as { state: string }).state} ${e.severity}`);
}

/** A summary whose node uses `percent` of 1 core and of its memory. */
function node(percent: number): Summary {
  const s = fixture();
  s.node.cpu.usageNanoCores = percent * 1e7;
  s.node.memory.workingSetBytes = percent * 1e6;
  s.node.memory.availableBytes = (100 - percent) * 1e6;
  return s;
}

describe("StatsTracker", () => {
  test("the fixture is below the default thresholds: no events", () => {
    const { events, bad } = update(new StatsTracker(RULES), fixture());
    expect(events).toEqual([]);
    expect(bad).toEqual([]);
  });

  test("node CPU and memory: reported when crossing above, resolved below 95% of the threshold", () => {
    const tracker = new StatsTracker({ ...RULES, nodeCpuCores: 1 });
    expect(states(update(tracker, node(91)).events)).toEqual(["kubelet.node.cpu above warning", "kubelet.node.memory above warning"]);
    expect(update(tracker, node(95)).events).toEqual([]);
    // between 85.5 and 90: still above (hysteresis)
    expect(update(tracker, node(86)).events).toEqual([]);
    expect(update(tracker, node(91)).events).toEqual([]);
    const resolved = update(tracker, node(80)).events;
    expect(states(resolved)).toEqual(["kubelet.node.cpu resolved info", "kubelet.node.memory resolved info"]);
    expect(resolved[0]?.event_data).toEqual({
      kubelet: {
        event_type: "node_cpu",
        node_metrics: {
          node_name: "datagen-1-35",
          cpu_usage_nano: 800000000,
          cpu_usage_milli: 800,
          memory_usage: 3080323072,
          memory_available: 20000000,
          memory_working_set: 80000000,
          timestamp: "2026-06-26T10:14:35Z",
        },
      },
      custom: { state: "resolved", usage_percent: "80", threshold_percent: "90" },
    });
    expect(resolved[0]?.metadata).toEqual({ node_name: "datagen-1-35" });
  });

  test("a threshold of 0 turns its check off", () => {
    const tracker = new StatsTracker({ ...RULES, nodeCpuCores: 1, nodeCpuPercent: 0, nodeMemoryPercent: 0 });
    expect(update(tracker, node(100)).events).toEqual([]);
  });

  test("ephemeral storage against the pod's limit, once per crossing, forgotten when the pod goes", () => {
    const tracker = new StatsTracker(RULES);
    const limits = { [SCRAPER_UID]: 14 * 2 ** 20 }; // 13295616 / 14680064 = 90.57%
    const { events } = update(tracker, fixture(), limits);
    expect(states(events)).toEqual(["kubelet.ephemeral.storage above warning"]);
    expect(events[0]?.event_data).toEqual({
      kubelet: {
        event_type: "ephemeral_storage",
        storage_event: {
          namespace: "scraper",
          pod: "e2e-scraper-5f97dc94d8-vkcjl",
          used_bytes: 13295616,
          available_bytes: 14680064 - 13295616,
          usage_percent: 90.57,
          timestamp: "2026-06-26T10:14:40Z",
        },
      },
      custom: { state: "above", threshold_percent: "90", limit_bytes: "14680064" },
    });
    expect(events[0]?.metadata).toEqual({ pod_name: "e2e-scraper-5f97dc94d8-vkcjl", pod_namespace: "scraper", pod_uid: SCRAPER_UID, node_name: "datagen-1-35" });
    expect(update(tracker, fixture(), limits).events).toEqual([]);
    expect(states(update(tracker, fixture(), { [SCRAPER_UID]: 20 * 2 ** 20 }).events)).toEqual(["kubelet.ephemeral.storage resolved info"]);
    update(tracker, fixture(), limits);
    const gone = fixture();
    gone.pods = gone.pods.filter((p: Summary) => p.podRef.uid !== SCRAPER_UID);
    expect(update(tracker, gone, limits).events).toEqual([]);
    // back: a new crossing
    expect(states(update(tracker, fixture(), limits).events)).toEqual(["kubelet.ephemeral.storage above warning"]);
  });

  test("without a limit, ephemeral storage counts against the space left on its filesystem", () => {
    const tracker = new StatsTracker(RULES);
    const s = fixture();
    const scraper = s.pods.find((p: Summary) => p.podRef.uid === SCRAPER_UID);
    scraper["ephemeral-storage"].availableBytes = 1_000_000; // 13295616 / 14295616 = 93%
    expect(states(update(tracker, s).events)).toEqual(["kubelet.ephemeral.storage above warning"]);
  });

  test("missing fields skip their check; a body without a node is refused", () => {
    const tracker = new StatsTracker({ ...RULES, nodeCpuCores: 1, nodeCpuPercent: 1, nodeMemoryPercent: 1 });
    const s = fixture();
    delete s.node.cpu;
    delete s.node.memory.availableBytes;
    for (const p of s.pods) delete p["ephemeral-storage"];
    s.pods.push({ podRef: { name: "no-uid" } });
    const { events, bad } = update(tracker, s);
    expect(events).toEqual([]);
    expect(bad).toEqual(["pod 17 of the summary has no podRef.uid"]);
    const refused: string[] = [];
    expect(tracker.update({ pods: [] }, () => undefined, NOW, [], (d) => refused.push(d))).toBe(false);
    expect(refused).toEqual(["expected a stats summary object with a node"]);
  });
});
