// Configuration reference claims no other test holds: the nats.batch
// defaults once the section is present, the range of stream.replicas,
// health_interval: 0 turning the periodic summary off, and the example and
// rules of "Several instances of a type" (what instances do at run time is
// shown by test/orchestrator/instances.test.ts, test/e2e/instances.test.ts,
// test/reload/reload.test.ts and test/delivery/spool-replay.test.ts).
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { loadConfigText } from "../../src/config/load.ts";
import { collectorSubject } from "../../src/orchestrator/instance.ts";
import { issuesOf } from "../config/helpers.ts";
import { Duration } from "../../src/config/duration.ts";
import { Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { MemoryPublisher } from "../helpers/memory-publisher.ts";
import { configFrom } from "../helpers/config.ts";
import { errors } from "../config/helpers.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

describe("README configuration reference", () => {
  test("nats.batch is off unless present; present, it packs up to 100 events, 512KiB, lingering 5ms", () => {
    expect(configFrom("nats: {}").nats.batch).toBeUndefined();
    expect(configFrom("nats: { batch: {} }").nats.batch).toEqual({ max_events: 100, max_bytes: 512 * 1024, linger: new Duration(5) });
  });

  test("nats.stream.replicas is 1 to 5", () => {
    expect(configFrom("nats: { stream: { replicas: 5 } }").nats.stream.replicas).toBe(5);
    expect(errors("nats:\n  stream:\n    replicas: 6\n")).toEqual(["test.yaml:3:15 nats.stream.replicas: expected an integer from 1 to 5, got 6"]);
    expect(errors("nats:\n  stream:\n    replicas: 0\n")).toEqual(["test.yaml:3:15 nats.stream.replicas: expected an integer from 1 to 5, got 0"]);
  });

  test("health_interval: 0 turns the periodic health summary off", async () => {
    const summaries = (interval: string) => {
      const lines: string[] = [];
      const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s).msg) });
      const registry = builtinRegistry();
      const config = configFrom(`orchestrator: { health_interval: ${interval} }\nnats: { mode: core }\ncollectors:\n  synthetic: { config: { rate: 20 } }\n`, registry);
      const orch = new Orchestrator({ config, registry, publisher: new MemoryPublisher(), log });
      running.push(orch);
      orch.start();
      return () => lines.filter((msg) => msg.startsWith("health: "));
    };
    const off = summaries("0");
    const on = summaries("200ms");
    // The two agents check their health on the same clock: by the time the one
    // with an interval has logged two summaries, the other has checked too.
    await waitFor(() => on().length >= 2, "two summaries from the agent with health_interval 200ms", 10_000);
    expect(off()).toEqual([]);
  });

  test("Several instances of a type: the example loads, with the subjects and errors the section names", () => {
    const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("#### Several instances of a type"), readme.indexOf("| collector | emits | docs |"));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const load = (text: string) => loadConfigText(text, "test.yaml", builtinRegistry(), {});
    const config = load(yaml);
    const subjects = Object.keys(config.collectors).map((key) => collectorSubject(config.nats.subject, key));
    expect(subjects).toEqual(["tapio.events.dns.cluster", "tapio.events.dns.external", "tapio.events.synthetic"]);
    for (const subject of ["tapio.events.dns.external", "tapio.events.synthetic"]) expect(section).toContain(`\`${subject}\``);
    expect(section).toContain("`<nats.subject>.<type>.<name>`");

    const quoted = /\(`(unknown collector type [^`]+)`\)/.exec(section)![1]!;
    expect(issuesOf(() => load("collectors:\n  dnss/x: {}\n"))).toEqual([`test.yaml:2:3 collectors.dnss/x: ${quoted}`]);
    for (const key of ["dns/", "dns/a/b", "dns/Ext", "dns/a.b"]) expect(issuesOf(() => load(`collectors:\n  "${key}": {}\n`))[0]).toStartWith(`test.yaml:2:3 collectors.${key}: `);
    const path = /`(collectors\.dns\/external\.config\.servers\.1)`/.exec(section)![1]!;
    expect(issuesOf(() => load(yaml.replace("8.8.8.8", "not-an-ip")))).toEqual([
      expect.stringContaining(`${path}: expected an IP address with an optional port`),
    ]);
  });
});
