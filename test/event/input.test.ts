// The schema of events that come from outside the agent (exec, ingest) is
// built from the Go field table: it must accept what the built-in collectors
// emit and refuse what Go's encoding/json would fail on.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseExternalEvent } from "../../src/event/input.ts";
import { GO_COLLECTOR_EVENT } from "../../src/event/go-domain.ts";
import { EMITS, PRODUCE, type CollectorName } from "./collector-events.ts";
import { checkGoKind } from "./go-json-check.ts";

const problems = (value: unknown) => {
  const result = parseExternalEvent(value);
  return result.ok ? [] : result.problems;
};

describe("outside event inputs", () => {
  test("a minimal input gets severity info and no event data", () => {
    expect(parseExternalEvent({ type: "node.check" })).toEqual({ ok: true, input: { type: "node.check", severity: "info", event_data: {} } });
  });

  for (const name of Object.keys(EMITS) as CollectorName[]) {
    test(`accepts what ${name} emits, less the fields the agent sets`, async () => {
      const events = (await PRODUCE[name]()) as unknown as Record<string, unknown>[];
      for (const { event_id, source, metadata, ...rest } of events) {
        const { collector_name, ...attributes } = ((metadata as { attributes?: Record<string, string> } | undefined)?.attributes ?? {});
        const input = { ...rest, metadata: { ...(metadata as object), attributes } };
        expect(problems(input)).toEqual([]);
      }
    }, 20_000);
  }

  test("refuses what Go refuses, naming the field", () => {
    expect(problems({ type: "node.check", metadata: { pid: "12" } })).toEqual(["metadata.pid: Invalid type: Expected number but received \"12\""]);
    expect(problems({ type: "node.check", metadata: { uid: 2 ** 31 } })).toEqual(["metadata.uid: above the range of int32"]);
    expect(problems({ type: "node.check", metadata: { priority: 3 } })).toHaveLength(1);
    expect(problems({ type: "node.check", event_data: { custom: { n: 1 } } })).toEqual(["event_data.custom.n: Invalid type: Expected string but received 1"]);
    expect(problems({ type: "node.check", event_data: { dns: { server_port: 70000 } } })).toEqual(["event_data.dns.server_port: above the range of uint16"]);
    expect(problems({ type: "node.check", timestamp: "2026-11-25 12:00:00" })).toEqual(["timestamp: expected an RFC 3339 time"]);
    expect(problems({ type: "node.check", trace_context: { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" } })).toHaveLength(1);
    expect(problems({ type: "node.check", severity: "fatal" })).toHaveLength(1);
    expect(problems({ type: "node.check", event_data: { storage_io: { latency_ms: "fast", slow_io: 1 } } })).toHaveLength(2);
    expect(problems({ type: "node.check", event_data: { raw_data: { data: "not base64!" } } })).toEqual(["event_data.raw_data.data: expected standard base64"]);
    expect(problems({ type: "node.check", metadata: { node_name: null } })).toHaveLength(1);
  });

  test("refuses fields Go would drop, at any depth", () => {
    expect(problems({ type: "node.check", extra: 1 })).toEqual(["extra: not a field Go's CollectorEvent has (it would be dropped)"]);
    expect(problems({ type: "node.check", event_data: { kernel: { level: 3 } } })).toEqual(["event_data.kernel.level: not a field Go's CollectorEvent has (it would be dropped)"]);
  });

  test("refuses the fields only the agent sets", () => {
    expect(problems({ type: "node.check", event_id: "x", source: "kubelet" })).toEqual([
      "event_id: set by the agent; an input may not carry it",
      "source: set by the agent; an input may not carry it",
    ]);
    expect(problems({ type: "node.check", metadata: { attributes: { collector_name: "kernel" } } })).toEqual([
      "metadata.attributes.collector_name: set by the agent; an input may not carry it",
    ]);
  });

  test("type is required and dotted", () => {
    expect(problems({})).toHaveLength(1);
    expect(problems({ type: "check" })).toEqual(['type: type is dotted words, e.g. "node.check_failed"']);
    expect(problems({ type: "a.".repeat(200) + "b" })).toHaveLength(1);
    for (const value of [null, [], "x", 1]) expect(problems(value)).toHaveLength(1);
  });

  test("names at most ten problems, then how many more", () => {
    const custom = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, i]));
    const found = problems({ type: "node.check", event_data: { custom } });
    expect(found).toHaveLength(11);
    expect(found[10]).toBe("and 15 more");
  });

  test("whatever it accepts decodes in Go (property)", () => {
    const leaf = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.constantFrom("pid", "custom", "kernel", "labels", "a", "dns", "server_port", "tags", "storage_io", "latency_ms"), tie("node"), { maxKeys: 3 })),
    })).node;
    const input = fc.record(
      { type: fc.constantFrom("node.check", "x"), severity: fc.constantFrom("info", "fatal"), event_data: value, metadata: value, k8s_context: value, correlation_hints: value },
      { requiredKeys: ["type"] },
    );
    fc.assert(
      fc.property(input, (candidate) => {
        const result = parseExternalEvent(candidate);
        if (!result.ok) return;
        const event = { event_id: "1", timestamp: "2026-11-25T12:00:00Z", source: "exec", ...result.input };
        const check = checkGoKind(event, { struct: GO_COLLECTOR_EVENT }, "e");
        expect(check).toEqual({ problems: [], dropped: [] });
      }),
      { numRuns: 2000 },
    );
  });
});
