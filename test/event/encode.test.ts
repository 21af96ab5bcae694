import { describe, expect, test } from "bun:test";
import { EVENT_ID_OFFSET, EventEncoder, InvalidEventError, MAX_SUBJECT_SUFFIXES, rfc3339Nano } from "../../src/event/encode.ts";

const dec = new TextDecoder();
const enc = new EventEncoder("kubelet", "tapio.events.kubelet", 1024 * 1024);
const decode = (input: Parameters<EventEncoder["encode"]>[0]) => JSON.parse(dec.decode(enc.encode(input).bytes));

describe("EventEncoder", () => {
  test("a subject suffix routes the event to `<subject>.<suffix>` and is kept apart (for replays); without one, the collector's subject", () => {
    const router = new EventEncoder("ingest", "tapio.events.ingest", 1024);
    const input = { type: "a.b", severity: "info", event_data: {} } as const;
    expect(router.encode(input, "app.v1")).toMatchObject({ subject: "tapio.events.ingest.app.v1", subjectSuffix: "app.v1", collector: "ingest" });
    expect(router.encode(input)).toMatchObject({ subject: "tapio.events.ingest", subjectSuffix: undefined });
    for (const bad of ["", "a..b", ".a", "a.", "a b", "a.*", ">", "x".repeat(129)]) {
      expect(() => router.encode(input, bad)).toThrow(/is not NATS tokens/);
    }
  });

  test("the suffixes one encoder routes to are bounded: the queue keeps an entry per subject for good", () => {
    const router = new EventEncoder("ingest", "s.ingest", 1024);
    const input = { type: "a.b", severity: "info", event_data: {} } as const;
    for (let i = 0; i < MAX_SUBJECT_SUFFIXES; i++) router.encode(input, `s${i}`);
    expect(router.encode(input, "s0").subject).toBe("s.ingest.s0");
    expect(() => router.encode(input, "one-more")).toThrow(new InvalidEventError("invalid_event", `collector ingest already routes to ${MAX_SUBJECT_SUFFIXES} subject suffixes; "one-more" would be one more`));
  });

  test("the event id is at EVENT_ID_OFFSET, verbatim and followed by its closing quote (what the queue reads)", () => {
    for (const event_id of [undefined, "own-id-42"]) {
      const { id, bytes } = enc.encode({ type: "x", severity: "info", event_data: {}, event_id });
      const text = dec.decode(bytes);
      expect(text.slice(EVENT_ID_OFFSET, EVENT_ID_OFFSET + id.length + 1)).toBe(`${id}"`);
      expect(text.slice(0, EVENT_ID_OFFSET)).toBe('{"event_id":"');
    }
  });

  test("writes the CollectorEvent fields in order, omitting absent and null optional members", () => {
    const e = decode({ type: "k8s.pod", severity: "warning", event_data: { k8s_resource: { name: "a" } }, k8s_context: undefined, trace_context: null as never });
    expect(Object.keys(e)).toEqual(["event_id", "timestamp", "type", "source", "severity", "event_data", "metadata"]);
    expect(e).toMatchObject({ type: "k8s.pod", source: "kubelet", severity: "warning", event_data: { k8s_resource: { name: "a" } }, metadata: { attributes: { collector_name: "kubelet" } } });
  });

  test("keeps the collector's metadata and always sets attributes.collector_name", () => {
    const e = decode({ type: "x", severity: "info", event_data: {}, metadata: { pod_name: "p", attributes: { a: "1", collector_name: "spoofed" } }, k8s_context: { node: "n" } });
    expect(e.metadata).toEqual({ pod_name: "p", attributes: { a: "1", collector_name: "kubelet" } });
    expect(e.k8s_context).toEqual({ node: "n" });
  });

  test("escapes a collector's own id, timestamp and type", () => {
    const e = decode({ type: 'we"ird\ntype', severity: "info", event_data: {}, event_id: 'id "1"', timestamp: '2026-01-01T00:00:00.000000000Z"' });
    expect(e.event_id).toBe('id "1"');
    expect(e.type).toBe('we"ird\ntype');
    expect(enc.encode({ type: "x", severity: "info", event_data: {}, event_id: 'id "1"' }).id).toBe('id "1"');
  });

  test("refuses bad events with their drop reason", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as InvalidEventError).reason;
      }
    };
    expect(reason(() => enc.encode({ type: "", severity: "info", event_data: {} }))).toBe("invalid_event");
    expect(reason(() => enc.encode({ type: "x", severity: "loud" as never, event_data: {} }))).toBe("invalid_event");
    expect(reason(() => enc.encode({ type: "x", severity: "info", event_data: cyclic }))).toBe("unserializable");
    expect(reason(() => enc.encode({ type: "x", severity: "info", event_data: { n: 1n } }))).toBe("unserializable");
    expect(reason(() => new EventEncoder("c", "s", 100).encode({ type: "x", severity: "info", event_data: { pad: "y".repeat(200) } }))).toBe("too_large");
  });

  test("timestamps: RFC 3339 with nanoseconds, UTC, close to the wall clock, never going backwards within a second", () => {
    let last = "";
    for (let i = 0; i < 10_000; i++) {
      const ts = rfc3339Nano();
      expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      if (ts.slice(0, 19) === last.slice(0, 19)) expect(ts >= last).toBe(true);
      last = ts;
    }
    expect(Math.abs(Date.parse(last) - Date.now())).toBeLessThan(50);
  });
});
