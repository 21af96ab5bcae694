// src/collectors/exec/README.md against the code: its config example loads,
// its defaults are the schema's, its line example becomes its event example.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { ExecCollector } from "../../../src/collectors/exec/index.ts";
import { execConfigSchema } from "../../../src/collectors/exec/schema.ts";
import { configFrom } from "../../helpers/config.ts";
import { runOnce } from "../../helpers/collector-context.ts";
import { execConfig, program } from "./helpers.ts";

const readme = readFileSync(join(import.meta.dir, "../../../src/collectors/exec/README.md"), "utf8");
const mainReadme = readFileSync(join(import.meta.dir, "../../../README.md"), "utf8");
const blocksOf = (text: string, lang: string) => [...text.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!);
const blocks = (lang: string) => blocksOf(readme, lang);
/** The main README's exec section. */
const mainSection = mainReadme.slice(mainReadme.indexOf("#### `exec`"), mainReadme.indexOf("Example configs:"));

describe("exec README", () => {
  test("the config example loads", () => {
    const config = configFrom(blocks("yaml")[0]!).collectors.exec!.config;
    expect(config).toMatchObject({ command: ["/usr/local/bin/nodecheck", "--json"], mode: "interval", env: { NODECHECK_LEVEL: "2" }, max_line_bytes: 256 * 1024 });
  });

  test("the config table's defaults are the schema's", () => {
    const rows = readme.slice(readme.indexOf("| key | default |"), readme.indexOf("## Line format")).split("\n").filter((l) => l.startsWith("| `"));
    const table = Object.fromEntries(rows.map((r) => r.split("|").map((c) => c.trim())).map(([, key, def]) => [key!.slice(1, -1), def!]));
    const defaults = v.parse(execConfigSchema, { command: ["x"] }) as Record<string, unknown>;
    expect(Object.keys(table).sort()).toEqual(Object.keys(defaults).sort());
    const shown: Record<string, string> = { mode: "`interval`", interval: "`30s`", timeout: "`10s`", env: "`{}`", working_dir: "`/`", max_line_bytes: "`256KiB`" };
    for (const [key, text] of Object.entries(shown)) expect(table[key]).toBe(text);
    expect(defaults).toMatchObject({ mode: "interval", env: {}, working_dir: "/", max_line_bytes: 256 * 1024 });
    expect(String(defaults.interval)).toBe("30s");
    expect(String(defaults.timeout)).toBe("10s");
  });

  test("the line example becomes the event example", async () => {
    const [input, output] = blocks("json");
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("print", input!.trim()) })), "exec");
    const { event_id, timestamp, ...rest } = rec.events[0]!;
    const { event_id: _id, timestamp: _t, ...expected } = JSON.parse(output!);
    expect(rest).toEqual(expected);
    // the same order of members as the example
    expect(Object.keys(rec.events[0]!)).toEqual(Object.keys(JSON.parse(output!)));
  });

  test("the main README's section: its config loads, its line is an event", async () => {
    expect(configFrom(blocksOf(mainSection, "yaml")[0]!).collectors.exec!.config).toMatchObject({ mode: "interval", timeout: expect.anything(), env: { NODECHECK_LEVEL: "2" } });
    const line = blocksOf(mainSection, "json")[0]!.trim();
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("print", line) })), "exec");
    expect(rec.parseErrors).toEqual([]);
    expect(rec.events[0]).toMatchObject({ type: "node.check_failed", source: "exec", severity: "warning", metadata: { node_name: "worker-1", attributes: { collector_name: "exec" } } });
  });
});
