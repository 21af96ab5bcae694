// Every event type of every collector holds to the field types of Tapio's Go
// domain.CollectorEvent, so Go consumers decoding with encoding/json get the
// whole event (one field of the wrong kind fails all of it).
import { describe, expect, test } from "bun:test";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { SEVERITIES, PRIORITIES } from "../../src/event/event.ts";
import { EMITS, PRODUCE, type CollectorName } from "./collector-events.ts";
import { GO_COLLECTOR_EVENT, GO_PRIORITIES, GO_SEVERITIES } from "../../src/event/go-domain.ts";
import { checkGoKind } from "./go-json-check.ts";

/**
 * Fields Go has no place for, which its decoding drops: each is sent on
 * purpose for consumers other than Go's struct. A new one fails the test
 * until it is added here (or moved to a field Go reads).
 */
const DROPPED_ON_PURPOSE = new Set<string>([]);

describe("events decode into Tapio's Go CollectorEvent", () => {
  test("every built-in collector has its event types listed", () => {
    expect(Object.keys(EMITS).sort()).toEqual(builtinRegistry().types().sort());
  });

  test("our severity and priority enums are Go's", () => {
    expect([...SEVERITIES]).toEqual([...GO_SEVERITIES]);
    expect([...PRIORITIES]).toEqual([...GO_PRIORITIES]);
  });

  for (const name of Object.keys(EMITS) as CollectorName[]) {
    test(`${name}: every type it emits, every field of the kind Go expects`, async () => {
      const events = await PRODUCE[name]();
      expect([...new Set(events.map((e) => e.type))].sort()).toEqual([...EMITS[name]].sort());
      const problems: string[] = [];
      const dropped = new Set<string>();
      for (const event of events) {
        const check = checkGoKind(event, { struct: GO_COLLECTOR_EVENT }, event.type);
        problems.push(...check.problems);
        for (const path of check.dropped) dropped.add(path);
      }
      expect(problems).toEqual([]);
      expect([...dropped].filter((path) => !DROPPED_ON_PURPOSE.has(path))).toEqual([]);
    }, 20_000);
  }
});

describe("the Go kind checker", () => {
  const check = (event: unknown) => checkGoKind(event, { struct: GO_COLLECTOR_EVENT }, "e");
  const good = { event_id: "1", timestamp: "2026-11-25T12:00:00.123456789Z", type: "container.oom", source: "kernel", severity: "error", event_data: {}, metadata: {} };

  test("a good event passes", () => {
    expect(check(good)).toEqual({ problems: [], dropped: [] });
  });

  test("refuses what encoding/json refuses", () => {
    expect(check({ ...good, metadata: { priority: 3 } }).problems).toEqual(["e.metadata.priority: expected one of low|normal|high|critical, got 3"]);
    expect(check({ ...good, metadata: { pid: "12" } }).problems).toEqual(['e.metadata.pid: expected an integer for int32, got "12"']);
    expect(check({ ...good, metadata: { pid: 1.5 } }).problems).toEqual(["e.metadata.pid: expected an integer for int32, got 1.5"]);
    expect(check({ ...good, metadata: { uid: 2 ** 31 } }).problems).toEqual(["e.metadata.uid: expected an integer for int32, got 2147483648"]);
    expect(check({ ...good, event_data: { dns: { server_port: 70000 } } }).problems).toEqual(["e.event_data.dns.server_port: expected an integer for uint16, got 70000"]);
    expect(check({ ...good, event_data: { kubelet: { node_metrics: { cpu_usage_nano: -1 } } } }).problems).toHaveLength(1);
    expect(check({ ...good, timestamp: "2026-11-25 12:00:00" }).problems).toEqual(['e.timestamp: expected an RFC 3339 time, got "2026-11-25 12:00:00"']);
    expect(check({ ...good, timestamp: 1764072000 }).problems).toHaveLength(1);
    expect(check({ ...good, event_data: { custom: { n: 1 } } }).problems).toEqual(["e.event_data.custom.n: expected string, got 1"]);
    expect(check({ ...good, event_data: { dns: { duration: 1.5e6 + 0.5 } } }).problems).toHaveLength(1);
    expect(check({ ...good, event_data: { process: { arguments: "a b" } } }).problems).toHaveLength(1);
    expect(check({ ...good, event_data: { k8s_event: { involved_object: "Pod/x" } } }).problems).toHaveLength(1);
    expect(check({ ...good, event_data: { raw_data: { data: "not base64!" } } }).problems).toHaveLength(1);
    expect(check({ ...good, trace_context: { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" } }).problems).toHaveLength(1);
    expect(check({ ...good, severity: "fatal" }).problems).toHaveLength(1);
    expect(check({ ...good, metadata: { node_name: null } }).problems).toHaveLength(1);
    expect(check({ ...good, Event_ID: "x" }).problems).toEqual(['e.Event_ID: matches Go\'s "event_id" only without case']);
  });

  test("names what Go drops: fields its struct has no place for", () => {
    expect(check({ ...good, extra: 1, event_data: { kernel: { level: 3 }, nonsense: {} } }).dropped).toEqual(["e.event_data.kernel.level", "e.event_data.nonsense", "e.extra"]);
  });
});
