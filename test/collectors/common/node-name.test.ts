import { afterEach, expect, test } from "bun:test";
import { hostname } from "node:os";
import * as v from "valibot";
import { builtinRegistry } from "../../../src/collectors/index.ts";

const saved = process.env.NODE_NAME;
afterEach(() => {
  if (saved === undefined) delete process.env.NODE_NAME;
  else process.env.NODE_NAME = saved;
});

// Every collector with a node_name: kubeapi (the node whose pods it watches), kernel and memory (metadata.node_name).
const WITH_NODE_NAME = ["kubeapi", "kernel", "memory"];

function nodeName(collector: string, config: Record<string, unknown> = {}): unknown {
  // dns requires names: its output still has every default
  return (v.safeParse(builtinRegistry().get(collector)!.configSchema, config).output as { node_name?: unknown }).node_name;
}

test("node_name: as written, else $NODE_NAME, else the host name, for every collector alike", () => {
  const names = builtinRegistry().types().filter((type) => nodeName(type) !== undefined);
  expect(names.sort()).toEqual([...WITH_NODE_NAME].sort());
  for (const collector of WITH_NODE_NAME) {
    process.env.NODE_NAME = "node-from-env";
    expect([collector, nodeName(collector)]).toEqual([collector, "node-from-env"]);
    expect([collector, nodeName(collector, { node_name: "written" })]).toEqual([collector, "written"]);
    delete process.env.NODE_NAME;
    expect([collector, nodeName(collector)]).toEqual([collector, hostname()]);
    process.env.NODE_NAME = "";
    expect([collector, nodeName(collector)]).toEqual([collector, hostname()]);
  }
});
