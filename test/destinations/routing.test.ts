// Routing rules end to end (issue 15): the agent as a real process, two real
// nats-servers with JetStream (`default` and `central`), four synthetic
// instances of different type and severity and the kernel collector on a
// recorded OOM kill. Each stream is read whole after the agent's SIGTERM: it
// holds exactly the events routed to it, on `<destination subject>.<instance>`,
// and none other; drops are counted by reason; each destination's accounts
// balance on the final log line, in /status and in the metrics.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { startNatsServer, stopAllNatsServers, type NatsServer } from "../helpers/nats-server.ts";
import { runAgent, writeConfig } from "../helpers/agent.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { endFaultTest, exitCode, expectAccounting, expectNoDuplicates, msgStartsWith, readStream, startAgent, statusUrl, streamCount } from "../fault/harness.ts";
import {
  KERNEL_EVENTS,
  countBySubject,
  expectDestinationAccounts,
  getMetrics,
  idsOn,
  kernelNode,
  metricValue,
  pickAccounts,
  seqsOn,
  tryStatus,
} from "./helpers.ts";

const servers: NatsServer[] = [];
afterEach(() => endFaultTest(servers));
afterAll(stopAllNatsServers);

async function twoServers(): Promise<{ def: NatsServer; cen: NatsServer }> {
  const [def, cen] = await Promise.all([startNatsServer(), startNatsServer()]);
  servers.push(def, cen);
  return { def, cen };
}

// What each instance emits: `a` is debug noise, `b` a problem, `c` the same
// type below warning, `d` a severe event of a type no problem rule names.
const A = 200;
const B = 300;
const C = 250;
const D = 150;

function config(def: NatsServer, cen: NatsServer, routes: string): string {
  return writeConfig(`
orchestrator: { shutdown_timeout: 20s }
nats: { url: ${def.url}, subject: rt.events, stream: { name: RT_DEFAULT } }
destinations:
  central:
    url: [${cen.url}]
    mode: jetstream
    subject: rt.central
    stream: { name: RT_CENTRAL }
    reconnect_wait: 250ms
${routes}
collectors:
  synthetic/a: { config: { count: ${A}, rate: 0, type: app.trace, severity: debug } }
  synthetic/b: { config: { count: ${B}, rate: 0, type: kubelet.container.crash_loop, severity: error } }
  synthetic/c: { config: { count: ${C}, rate: 0, type: kubelet.container.crash_loop, severity: medium } }
  synthetic/d: { config: { count: ${D}, rate: 0, type: app.event, severity: critical } }
  kernel: ${kernelNode().config}
`);
}

// The issue's rules; synthetic instances join the problem collectors by a glob.
const ISSUE_ROUTES = `
routes:
  - name: drop-debug
    match: { severity_below: info }
    drop: true
  - name: problems-everywhere
    match:
      collector: [kernel, kubelet, "synthetic/*"]
      type: ["container.oom", "kubelet.container.crash_loop", "kernel.*"]
      severity_at_least: warning
    to: [default, central]
  - name: rest
    to: [default]
`;

interface Expected {
  /** messages per subject in each stream, exactly */
  default: Record<string, number>;
  central: Record<string, number>;
  drops: { route_drop: number; unrouted: number };
}

const total = (bySubject: Record<string, number>) => Object.values(bySubject).reduce((n, c) => n + c, 0);

/**
 * Runs the agent until both destinations published what they must and the
 * drops are counted, checks /status and /metrics, stops it with SIGTERM and
 * reads both streams whole.
 */
async function routeAndRead(file: string, def: NatsServer, cen: NatsServer, expected: Expected) {
  const want = { default: total(expected.default), central: total(expected.central) };
  const agent = startAgent(["-c", file]);
  const base = (await statusUrl(agent)).replace(/\/status$/, "");
  await agent.waitForLog(msgStartsWith("orchestrator started"), '"orchestrator started"');

  const published = (doc: Record<string, any> | undefined, name: string): number | undefined => doc?.destinations?.[name]?.ledger?.published;
  let last: Record<string, any> | undefined;
  await waitFor(
    async () => {
      last = await tryStatus(base);
      return published(last, "default") === want.default && published(last, "central") === want.central;
    },
    `/status destinations.{default,central}.ledger.published to reach ${JSON.stringify(want)} (last: ${JSON.stringify(last?.destinations ?? "no destinations in /status")})`,
    30_000,
    50,
  );
  let metrics = "";
  await waitFor(
    async () => {
      metrics = await getMetrics(base);
      return metricValue(metrics, "orchestrator_events_dropped_total", { reason: "route_drop" }) >= expected.drops.route_drop;
    },
    `${expected.drops.route_drop} route_drop drops in /metrics`,
    10_000,
    50,
  );

  const status = last!;
  for (const name of ["default", "central"] as const) {
    const d = status.destinations[name];
    expect({ name, connected: d.nats?.connected }).toEqual({ name, connected: true });
    expect({ name, ledger: pickAccounts(d.ledger) }).toEqual({
      name,
      ledger: { accepted: want[name], inherited: 0, published: want[name], discarded: 0, in_spool: 0, lost: 0 },
    });
    expect(typeof d.queue?.length).toBe("number");
    expect(metricValue(metrics, "orchestrator_nats_connected", { destination: name })).toBe(1);
    for (const [outcome, n] of [["accepted", want[name]], ["published", want[name]], ["spooled", 0], ["discarded", 0], ["lost", 0]] as const) {
      expect({ name, outcome, n: metricValue(metrics, "orchestrator_destination_events_total", { destination: name, outcome }) }).toEqual({ name, outcome, n });
    }
  }
  expect(status.delivery).toBeDefined(); // still there: default's
  expect({
    route_drop: metricValue(metrics, "orchestrator_events_dropped_total", { reason: "route_drop" }),
    unrouted: metricValue(metrics, "orchestrator_events_dropped_total", { reason: "unrouted" }),
  }).toEqual(expected.drops);
  // the debug events were dropped by their rule, not for anything else
  expect(metricValue(metrics, "orchestrator_events_dropped_total", { collector: "synthetic/a" })).toBe(expected.drops.route_drop);

  agent.kill("SIGTERM");
  const code = await exitCode(agent, 30_000);
  expect({ code, stderr: agent.stderr() }).toEqual({ code: 0, stderr: "" });
  const final = agent.final();
  expectAccounting(final, { in_spool: 0, lost: 0 });
  expectDestinationAccounts(final, "default", { accepted: want.default, inherited: 0, published: want.default, discarded: 0, in_spool: 0, lost: 0 });
  expectDestinationAccounts(final, "central", { accepted: want.central, inherited: 0, published: want.central, discarded: 0, in_spool: 0, lost: 0 });

  // After the exit nothing more can arrive: the streams are final.
  const atDefault = want.default > 0 ? await readStream(def.url, "RT_DEFAULT") : [];
  const atCentral = want.central > 0 ? await readStream(cen.url, "RT_CENTRAL") : [];
  expect(countBySubject(atDefault)).toEqual(expected.default);
  expect(countBySubject(atCentral)).toEqual(expected.central);
  expectNoDuplicates(atDefault);
  expectNoDuplicates(atCentral);
  // each stream only on its own server
  expect(await streamCount(def.url, "RT_CENTRAL")).toBeUndefined();
  expect(await streamCount(cen.url, "RT_DEFAULT")).toBeUndefined();
  console.log(`[routing] default ${JSON.stringify(countBySubject(atDefault))}, central ${JSON.stringify(countBySubject(atCentral))}, final destinations ${JSON.stringify(final?.destinations)}`);
  return { atDefault, atCentral, final: final! };
}

describe("routing rules across two nats-servers", () => {
  test("the issue's rules: debug dropped, problems (synthetic/b, the OOM kill) at both, the rest at default only", async () => {
    const { def, cen } = await twoServers();
    const file = config(def, cen, ISSUE_ROUTES);
    const { atDefault, atCentral } = await routeAndRead(file, def, cen, {
      default: { "rt.events.synthetic.b": B, "rt.events.synthetic.c": C, "rt.events.synthetic.d": D, "rt.events.kernel": KERNEL_EVENTS },
      central: { "rt.central.synthetic.b": B, "rt.central.kernel": KERNEL_EVENTS },
      drops: { route_drop: A, unrouted: 0 },
    });
    // the same events at both, by event_id, each instance's sequence whole
    expect(idsOn(atCentral, "rt.central.synthetic.b")).toEqual(idsOn(atDefault, "rt.events.synthetic.b"));
    expect(idsOn(atCentral, "rt.central.kernel")).toEqual(idsOn(atDefault, "rt.events.kernel"));
    const all = (n: number) => [...Array(n).keys()];
    expect(seqsOn(atCentral, "rt.central.synthetic.b")).toEqual(all(B));
    expect(seqsOn(atDefault, "rt.events.synthetic.b")).toEqual(all(B));
    expect(seqsOn(atDefault, "rt.events.synthetic.c")).toEqual(all(C));
    expect(seqsOn(atDefault, "rt.events.synthetic.d")).toEqual(all(D));
  }, 90_000);

  test("a last rule with a match: `validate` warns, and what matches no rule goes nowhere, counted as unrouted", async () => {
    const { def, cen } = await twoServers();
    const file = config(
      def,
      cen,
      `
routes:
  - name: drop-debug
    match: { severity_below: info }
    drop: true
  - name: crashes-to-central
    match: { collector: [kubelet, "synthetic/b"], type: ["kubelet.*"], severity_at_least: warning }
    to: [central]
`,
    );
    const validate = await runAgent(["validate", "-c", file]);
    expect(validate.code).toBe(0);
    // the warning names the rule that lets events through unrouted (the "valid" line names collectors only)
    expect(validate.stdout + validate.stderr).toContain("crashes-to-central");

    const { atCentral } = await routeAndRead(file, def, cen, {
      default: {},
      central: { "rt.central.synthetic.b": B },
      // c: below warning; d: not a listed collector; kernel: neither
      drops: { route_drop: A, unrouted: C + D + KERNEL_EVENTS },
    });
    expect(seqsOn(atCentral, "rt.central.synthetic.b")).toEqual([...Array(B).keys()]);
    // default got nothing: its stream holds no message (if the agent created it at all)
    expect((await streamCount(def.url, "RT_DEFAULT")) ?? 0).toBe(0);
  }, 90_000);

  test("destinations but no routes: everything to default as before, nothing at central", async () => {
    const { def, cen } = await twoServers();
    const file = config(def, cen, "");
    const { atDefault } = await routeAndRead(file, def, cen, {
      default: {
        "rt.events.synthetic.a": A,
        "rt.events.synthetic.b": B,
        "rt.events.synthetic.c": C,
        "rt.events.synthetic.d": D,
        "rt.events.kernel": KERNEL_EVENTS,
      },
      central: {},
      drops: { route_drop: 0, unrouted: 0 },
    });
    expect(seqsOn(atDefault, "rt.events.synthetic.a")).toEqual([...Array(A).keys()]);
    expect((await streamCount(cen.url, "RT_CENTRAL")) ?? 0).toBe(0);
  }, 90_000);
});
