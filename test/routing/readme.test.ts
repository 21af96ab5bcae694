// The README's "Routing": its example is valid (routes against the
// destinations it declares) and routes as the section says; the figures it
// gives are the code's.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { SEVERITIES } from "../../src/event/event.ts";
import { fallbackMessage, strictObject } from "../../src/config/kit.ts";
import { MAX_CACHED_TYPES, RouteTable } from "../../src/routing/routes.ts";
import { routeDestinationsCheck, routesSchema } from "../../src/routing/schema.ts";
import { REPO } from "../helpers/agent.ts";

const readme = readFileSync(join(REPO, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("### Routing"), readme.indexOf("## Operating it"));
const example = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;

describe("README: Routing", () => {
  // `destinations` is not a key of the agent's config yet: its keys are what the check reads.
  const schema = v.pipe(strictObject({ nats: v.optional(v.unknown()), destinations: v.optional(v.unknown()), routes: routesSchema }), routeDestinationsCheck());

  test("the example's routes are valid against its destinations and route as the comments say", () => {
    const { routes } = v.parse(schema, { ...parse(example), nats: {} }, { message: fallbackMessage });
    const table = new RouteTable(routes, (name) => name);
    const where = (collector: string, type: string, severity: string) => {
      const d = table.forCollector(collector).decide(type, severity);
      return d.kind === "to" ? d.to.join(",") : d.kind;
    };
    expect(where("kernel", "container.oom", "debug")).toBe("drop");
    expect(where("kernel", "container.oom", "critical")).toBe("default,central");
    expect(where("kubelet", "kubelet.container.crash_loop", "warning")).toBe("default,central");
    expect(where("kernel", "kernel.problem", "medium")).toBe("default");
    expect(where("dns/a", "container.oom", "critical")).toBe("default");
  });

  test("the severity order is SEVERITIES; the cache bound is MAX_CACHED_TYPES; the unknown-destination error reads as quoted", () => {
    expect(section.replace(/\s+/g, " ")).toContain(SEVERITIES.map((s) => `\`${s}\``).join(", "));
    expect(section).toContain(`up to ${MAX_CACHED_TYPES} types`);
    const quoted = /`(routes\.1\.to\.1: unknown destination "centrl" \(did you mean "central"\?\))`/.exec(section)![1]!;
    const result = v.safeParse(schema, { destinations: { central: {} }, routes: [{ name: "a", to: "default" }, { name: "b", to: ["central", "centrl"] }] }, { abortEarly: false, message: fallbackMessage });
    expect(result.issues?.map((i) => `${i.path!.map((p) => p.key).join(".")}: ${i.message}`)).toEqual([quoted]);
  });

  test("no routes, routes: with nothing after it, or routes: [] load as no routing", () => {
    for (const text of ["nats: {}\n", "routes:\n", "routes: []\n"]) {
      const rules = v.parse(schema, parse(text) ?? {}, { message: fallbackMessage }).routes;
      expect(new RouteTable(rules, (name) => name).forCollector("x").decide("t", "info")).toEqual({ kind: "to", rule: "", to: ["default"] });
    }
  });
});
