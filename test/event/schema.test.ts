// The published event schema (schema/collector-event.schema.json): generated
// from the agent's valibot schemas, never edited by hand; every event of
// every collector holds to it under a real validator (ajv, draft 2020-12);
// and what it says is what the valibot schema it came from says.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { collectorEventSchemaText } from "../../src/cli/schema.ts";
import { declareEvents, struct } from "../../src/event/declare.ts";
import { collectorEventWireSchema, wireSchema } from "../../src/event/wire.ts";
import type { CollectorEvent } from "../../src/event/event.ts";
import { runAgent } from "../helpers/agent.ts";
import { compileEventSchema, PUBLISHED_SCHEMA_PATH } from "../helpers/event-schema.ts";
import { EMITS, PRODUCE, type CollectorName } from "./collector-events.ts";

const REGENERATE = "bun src/main.ts schema > schema/collector-event.schema.json";
const wire = collectorEventWireSchema(builtinRegistry());
const validate = compileEventSchema(JSON.parse(readFileSync(PUBLISHED_SCHEMA_PATH, "utf8")));
const ajvAccepts = (event: unknown) => validate(event);
const valibotAccepts = (event: unknown) => v.safeParse(wire.schema, event).success;

describe("schema/collector-event.schema.json", () => {
  test("is what the agent's schemas generate now", () => {
    const committed = readFileSync(PUBLISHED_SCHEMA_PATH, "utf8");
    if (committed !== collectorEventSchemaText()) {
      throw new Error(`schema/collector-event.schema.json is stale: regenerate it with \`${REGENERATE}\` and commit it`);
    }
  });

  test("`tapio-collectors schema` prints it", async () => {
    const r = await runAgent(["schema"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(PUBLISHED_SCHEMA_PATH, "utf8"));
  });

  test("lists every declared type with what it carries", () => {
    const schema = JSON.parse(readFileSync(PUBLISHED_SCHEMA_PATH, "utf8"));
    const crashLoop = schema.$defs["kubelet.container.crash_loop"];
    expect(crashLoop["x-collector"]).toBe("kubelet");
    expect(crashLoop.properties.event_data.required).toEqual(["kubelet"]);
    expect(crashLoop.properties.event_data.properties.kubelet.properties.event_type).toEqual({ const: "crash_loop" });
    for (const type of builtinRegistry().types()) {
      expect(schema["x-collectors"][type].types).toEqual(Object.keys(builtinRegistry().get(type)!.events!.types));
      for (const declared of schema["x-collectors"][type].types) expect(schema.$defs[declared]).toBeDefined();
    }
  });
});

describe("every collector's events hold to the published schema", () => {
  const produced = new Map<CollectorName, CollectorEvent[]>();
  beforeAll(async () => {
    for (const name of Object.keys(EMITS) as CollectorName[]) produced.set(name, await PRODUCE[name]());
  }, 60_000);

  for (const name of Object.keys(EMITS) as CollectorName[]) {
    test(`${name}: ajv and the valibot schema accept each event`, () => {
      const events = produced.get(name)!;
      expect([...new Set(events.map((e) => e.type))].sort()).toEqual([...EMITS[name]].sort());
      for (const event of events) {
        expect({ type: event.type, ajv: ajvAccepts(event) ? [] : validate.errors }).toEqual({ type: event.type, ajv: [] });
        expect(valibotAccepts(event)).toBe(true);
      }
    });
  }

  test("what the schema refuses, ajv and valibot both refuse", () => {
    const crashLoop = produced.get("kubelet")!.find((e) => e.type === "kubelet.container.crash_loop")!;
    const change = (edit: (e: any) => void) => {
      const copy = structuredClone(crashLoop) as any;
      edit(copy);
      return copy;
    };
    const accepted = [
      crashLoop,
      // exec and ingest take their types from programs and senders: theirs are held to Go's fields only
      change((e) => ((e.source = "exec/nodecheck"), (e.event_data.kubelet.event_type = "mine"), (e.severity = "info"))),
      // so does synthetic, by its config
      change((e) => ((e.source = "synthetic/load"), (e.event_data = { custom: { seq: "0" } }))),
      // an undeclared type: Go's fields
      change((e) => ((e.type = "node.check_failed"), (e.event_data = { custom: { check: "disk" }, network: { src_port: 1 } }))),
    ];
    const refused = [
      change((e) => (e.event_data.kubelet.pod_lifecycle.restarts = 4)), // a field Go lacks
      change((e) => (e.event_data.custom = { state: "above" })), // a member the type does not declare
      change((e) => delete e.event_data.kubelet.pod_lifecycle.restart_count), // a declared field missing
      change((e) => (e.event_data.kubelet.event_type = "crashloop")), // not its declared value
      change((e) => (e.severity = "info")), // not one of its severities
      change((e) => (e.event_data.kubelet.pod_lifecycle.exit_code = 2 ** 31)), // past Go's int32
      change((e) => (e.timestamp = "2026-11-25 12:00:00")), // not RFC 3339
      change((e) => delete e.metadata.attributes.collector_name), // the encoder always sets it
      change((e) => (e.metadata.priority = 3)), // Go's EventPriority is a string
      change((e) => (e.trace_context = { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" })), // Go cannot decode it
      change((e) => (e.causality_context = {})), // Go has it; the agent never sends it
      change((e) => (e.source = "Kubelet")), // not a collector key
    ];
    expect(accepted.map((e) => [ajvAccepts(e), valibotAccepts(e)])).toEqual(accepted.map(() => [true, true]));
    expect(refused.map((e) => [ajvAccepts(e), valibotAccepts(e)])).toEqual(refused.map(() => [false, false]));
  });
});

describe("event declarations", () => {
  test("each collector's README names every type it declares", () => {
    for (const type of builtinRegistry().types()) {
      const readme = readFileSync(join(import.meta.dir, `../../src/collectors/${type}/README.md`), "utf8");
      const missing = Object.keys(builtinRegistry().get(type)!.events!.types).filter((t) => !readme.includes(`\`${t}\``));
      expect({ type, missing }).toEqual({ type, missing: [] });
    }
  });

  test("name only fields Go's struct has", () => {
    expect(() => declareEvents("x", { "x.y": { description: "", severities: ["info"], event_data: { kubelet: struct("restarts") } } })).toThrow(
      "x.y: event_data.kubelet.restarts: Go's struct has no such field",
    );
  });

  test("give each type one collector", () => {
    const a = declareEvents("a", { "t.x": { description: "", severities: ["info"], event_data: {} } });
    const b = declareEvents("b", { "t.x": { description: "", severities: ["info"], event_data: {} } });
    expect(() => wireSchema([a, b])).toThrow("event type t.x is declared by both a and b");
  });
});
