import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import fc from "fast-check";
import { DnsCollector, dnsFactory, NO_RESPONSE } from "../../../src/collectors/dns/index.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { recordingContext, type Recording } from "../../helpers/collector-context.ts";
import { answer, parseQuery, startResponder, type Query, type Reply, type Responder } from "./responder.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const testdata = (name: string) => join(import.meta.dir, "testdata", name);

const responders: Responder[] = [];
afterEach(() => {
  for (const r of responders.splice(0)) r.close();
});

async function responder(reply: (q: Query) => Reply, host: "127.0.0.1" | "::1" = "127.0.0.1"): Promise<Responder> {
  const r = await startResponder(host, reply);
  responders.push(r);
  return r;
}

/** Short timings, with room for a loaded machine: over 150 ms is slow, over 500 ms very slow, nothing in 1 s a timeout. */
const TIMING = { timeout: "1s", latency_warning: "150ms", latency_high: "500ms" };

function collector(config: Record<string, unknown>): DnsCollector {
  return dnsFactory.create(v.parse(dnsFactory.configSchema, { ...TIMING, ...config })) as DnsCollector;
}

async function round(c: DnsCollector, rec: Recording): Promise<CollectorEvent[]> {
  const before = rec.events.length;
  await c.run(rec.ctx);
  return rec.events.slice(before);
}

interface Dns {
  query_type: string;
  query_name: string;
  response_code: number;
  answers?: string[];
  duration: number;
  server_ip: string;
  server_port: number;
  error: boolean;
  error_message?: string;
}
const dnsOf = (e: CollectorEvent) => e.event_data.dns as Dns;
const byName = (events: CollectorEvent[]) => Object.fromEntries(events.map((e) => [dnsOf(e).query_name, e]));

/** Answers by the first label of the name asked. */
const zone = (q: Query): Reply => {
  const label = q.name.split(".")[0];
  switch (label) {
    case "ok": return q.qtype === 28 ? { addresses: ["fd00:0:0:0:0:0:0:a"] } : { addresses: ["10.96.0.1", "10.96.0.2"] };
    case "nodata": return { addresses: [] };
    case "nx": return { rcode: 3 };
    case "servfail": return { rcode: 2 };
    case "refused": return { rcode: 5 };
    case "silent": return { silent: true };
    case "slow": return { delayMs: 250, then: { addresses: ["10.96.0.3"] } };
    case "veryslow": return { delayMs: 650, then: { addresses: ["10.96.0.4"] } };
    // Another id: a forged or stray packet. The probe waits on, and nothing else comes.
    case "badid": return { raw: (query) => answer({ ...parseQuery(query), id: parseQuery(query).id ^ 1 }, 0, ["10.6.6.6"]) };
    case "garbage": return { raw: () => new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n") };
    // Garbage first, the real answer after it: the probe must not give up at the garbage.
    case "garbage-then-ok": return { sequence: [{ raw: () => new Uint8Array([1, 2, 3]) }, { delayMs: 20, then: { addresses: ["10.96.0.5"] } }] };
    default: return { rcode: 3 };
  }
};
describe("dns collector against a loopback responder", () => {
  test("each kind of answer maps to its event; healthy answers are not emitted", async () => {
    const r = await responder(zone);
    const names = ["ok", "nodata", "nx", "servfail", "refused", "silent", "slow", "veryslow", "badid", "garbage", "garbage-then-ok"].map((n) => `${n}.probe.test`);
    const c = collector({ names, servers: [`127.0.0.1:${r.port}`] });
    const rec = recordingContext();
    const started = performance.now();
    const events = byName(await round(c, rec));
    // Probes run at once: the round takes about one timeout, not one per name.
    expect(performance.now() - started).toBeLessThan(2500);

    // garbage-then-ok is answered after 20 ms: healthy, unless a busy machine delays it past latency_warning;
    // either way the probe did not give up at the garbage.
    const afterGarbage = events["garbage-then-ok.probe.test"];
    if (afterGarbage) expect(afterGarbage).toMatchObject({ type: "dns.query", event_data: { dns: { error: false, answers: ["10.96.0.5"] } } });
    delete events["garbage-then-ok.probe.test"];
    expect(Object.keys(events).sort()).toEqual(["badid", "garbage", "nodata", "nx", "refused", "servfail", "silent", "slow", "veryslow"].map((n) => `${n}.probe.test`));
    const common = { query_type: "A", server_ip: "127.0.0.1", server_port: r.port };
    expect(events["nx.probe.test"]).toMatchObject({ type: "dns.query", severity: "error", event_data: { dns: { ...common, query_name: "nx.probe.test", response_code: 3, error: true, error_message: "NXDOMAIN" } } });
    expect(events["servfail.probe.test"]).toMatchObject({ type: "dns.query", severity: "error", event_data: { dns: { response_code: 2, error: true, error_message: "SERVFAIL" } } });
    expect(events["refused.probe.test"]).toMatchObject({ type: "dns.query", severity: "error", event_data: { dns: { response_code: 5, error: true, error_message: "REFUSED" } } });
    expect(events["nodata.probe.test"]).toMatchObject({ type: "dns.query", severity: "warning", event_data: { dns: { response_code: 0, error: true, error_message: "NOERROR without A records" } } });
    expect(events["silent.probe.test"]).toMatchObject({ type: "dns.timeout", severity: "error", event_data: { dns: { ...common, response_code: NO_RESPONSE, error: true, error_message: "no answer within 1s" } } });
    expect(events["slow.probe.test"]).toMatchObject({ type: "dns.query", severity: "warning", event_data: { dns: { response_code: 0, error: false, answers: ["10.96.0.3"] } } });
    expect(events["veryslow.probe.test"]).toMatchObject({ type: "dns.query", severity: "high", event_data: { dns: { response_code: 0, error: false, answers: ["10.96.0.4"] } } });
    expect(events["badid.probe.test"]).toMatchObject({ type: "dns.timeout", event_data: { dns: { error_message: expect.stringMatching(/^no answer within 1s; ignored 1 invalid reply \(id \d+, expected \d+\)$/) } } });
    expect(events["garbage.probe.test"]).toMatchObject({ type: "dns.timeout", event_data: { dns: { error_message: expect.stringContaining("ignored 1 invalid reply") } } });

    // Durations are integer nanoseconds and measured: the slow answers took their delay.
    for (const e of Object.values(events)) expect(Number.isInteger(dnsOf(e).duration)).toBe(true);
    expect(dnsOf(events["slow.probe.test"]!).duration).toBeGreaterThanOrEqual(240e6);
    expect(dnsOf(events["silent.probe.test"]!).duration).toBeGreaterThanOrEqual(990e6);
    // Invalid replies are parse errors: badid, garbage, and the garbage before a good answer.
    expect(rec.parseErrors.map((e) => e.source)).toEqual(["dns response", "dns response", "dns response"]);
    // Every query was a standard recursive one for the configured name, with its own id.
    expect(r.queries.map((q) => q.flags)).toEqual(names.map(() => 0x0100));
    expect(new Set(r.queries.map((q) => q.name))).toEqual(new Set(names));
    expect(rec.degraded).toEqual([]);
  });

  test("state changes: a recovery is emitted once; emit_ok emits every healthy answer", async () => {
    let broken = true;
    const r = await responder((q) => (broken ? { rcode: 2 } : zone(q)));
    const c = collector({ names: "ok.flaky.test.", servers: `127.0.0.1:${r.port}` });
    const rec = recordingContext();
    expect((await round(c, rec)).map((e) => dnsOf(e).error_message)).toEqual(["SERVFAIL"]);
    expect((await round(c, rec)).map((e) => dnsOf(e).error_message)).toEqual(["SERVFAIL"]);
    broken = false;
    const [recovered, ...rest] = await round(c, rec);
    expect(rest).toEqual([]);
    expect(recovered).toMatchObject({ type: "dns.query", severity: "info", event_data: { dns: { query_name: "ok.flaky.test", response_code: 0, error: false, answers: ["10.96.0.1", "10.96.0.2"] } } });
    expect(dnsOf(recovered!).error_message).toBeUndefined();
    expect(await round(c, rec)).toEqual([]);

    const chatty = collector({ names: "ok.flaky.test", servers: `127.0.0.1:${r.port}`, emit_ok: true });
    expect(await round(chatty, rec)).toHaveLength(1);
    expect(await round(chatty, rec)).toHaveLength(1);
  });

  test("A and AAAA, over IPv6 loopback too", async () => {
    const r4 = await responder(zone);
    const r6 = await responder(zone, "::1");
    const c = collector({ names: ["ok.both.test"], query_types: ["A", "AAAA"], servers: [`127.0.0.1:${r4.port}`, `[::1]:${r6.port}`], emit_ok: true });
    const rec = recordingContext();
    const events = await round(c, rec);
    expect(events.map((e) => [dnsOf(e).server_ip, dnsOf(e).query_type, dnsOf(e).answers])).toEqual([
      ["127.0.0.1", "A", ["10.96.0.1", "10.96.0.2"]],
      ["127.0.0.1", "AAAA", ["fd00::a"]],
      ["::1", "A", ["10.96.0.1", "10.96.0.2"]],
      ["::1", "AAAA", ["fd00::a"]],
    ]);
    expect(r6.queries.map((q) => q.qtype)).toEqual([1, 28]);
  });

  test("nothing listening: the port-unreachable error is a dns.query with no response code", async () => {
    const r = await responder(zone);
    const port = r.port;
    r.close();
    responders.pop();
    const c = collector({ names: ["ok.gone.test"], servers: [`127.0.0.1:${port}`] });
    const [event] = await round(c, recordingContext());
    // Linux reports ICMP port unreachable to a connected UDP socket at once; without it this would time out.
    expect(event).toMatchObject({ type: "dns.query", severity: "error", event_data: { dns: { response_code: NO_RESPONSE, error: true } } });
    expect(dnsOf(event!).duration).toBeLessThan(400e6);
  });

  test("property: any reply bytes are counted as a parse error or used; the probe never throws", async () => {
    let reply: (query: Uint8Array) => Uint8Array = () => new Uint8Array();
    const r = await responder(() => ({ raw: (q) => reply(q) }));
    const c = collector({ names: ["ok.fuzz.test"], servers: [`127.0.0.1:${r.port}`], timeout: "100ms" });
    const rec = recordingContext();
    const good = (q: Uint8Array) => answer(parseQuery(q), 0, ["10.96.0.1"]);
    // Corruptions that keep the id (bytes 0-1), so they reach the decoder's later checks.
    const corrupt = fc.array(fc.tuple(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => () => b), corrupt.map((edits) => (q: Uint8Array) => {
        const bytes = good(q);
        for (const [at, byte] of edits) if (at < bytes.length) bytes[at] = byte;
        return bytes;
      })), async (make) => {
        reply = make;
        const errorsBefore = rec.parseErrors.length;
        const events = await round(c, rec);
        const failed = rec.parseErrors.length > errorsBefore;
        // Rejected: a timeout that says so. Accepted: whatever it says, as a dns.query or nothing (healthy);
        // or, on a machine too loaded to deliver it in 100 ms, a plain timeout.
        if (failed) expect(events.map((e) => [e.type, dnsOf(e).error_message?.includes("ignored 1 invalid reply")])).toEqual([["dns.timeout", true]]);
        else expect(events.every((e) => e.type === "dns.query" || !dnsOf(e).error_message?.includes("ignored"))).toBe(true);
      }),
      { numRuns: 40 },
    );
    expect(rec.degraded).toEqual([]);
  });
});

describe("servers from resolv.conf", () => {
  test("the first three nameservers, port 53; a bad line is a parse error", async () => {
    // Loopback addresses only (127.0.0.77, ::1, 127.0.0.78): whatever answers, nothing leaves the machine.
    const c = collector({ names: ["tapio-probe.invalid"], resolv_conf: testdata("resolv.conf"), emit_ok: true, timeout: "200ms" });
    const rec = recordingContext();
    const events = await round(c, rec);
    expect(events.map((e) => [dnsOf(e).server_ip, dnsOf(e).server_port])).toEqual([
      ["127.0.0.77", 53],
      ["::1", 53],
      ["127.0.0.78", 53],
    ]);
    expect(rec.parseErrors).toEqual([{ source: "resolv.conf", detail: 'unusable nameserver line: "nameserver not-an-address"' }]);
    expect(rec.degraded).toEqual([]);
  });

  test("a missing file or one without nameservers: degraded, retried, no probes", async () => {
    for (const [path, reason] of [
      [testdata("missing.conf"), "missing.conf does not exist"],
      [testdata("resolv-none.conf"), "lists no usable nameserver; set servers to probe"],
    ]) {
      const c = collector({ names: ["ok.test"], resolv_conf: path, interval: "20ms" });
      const rec = recordingContext({ once: false });
      const running = c.run(rec.ctx);
      await waitFor(() => rec.degraded.length >= 3, "three failed rounds");
      rec.stop();
      await running;
      expect(rec.degraded[0]).toContain(reason!);
      expect(rec.events).toEqual([]);
    }
  });
});

describe("config", () => {
  test("names are required and checked; servers and types validated", () => {
    const messages = (config: unknown) => v.safeParse(dnsFactory.configSchema, config).issues?.map((i) => i.message);
    expect(messages({})).toEqual(['missing required key "names"']);
    expect(messages({ names: [] })).toEqual(["expected at least one name to probe"]);
    expect(messages({ names: ["a..b"], servers: ["dns:53"], query_types: ["MX"] })).toEqual([
      'expected a fully-qualified domain name like kubernetes.default.svc.cluster.local, got "a..b"',
      'expected one of A, AAAA, got "MX"',
      'expected an IP address with an optional port, like 10.96.0.10, 10.96.0.10:53 or [fd00::a]:53, got "dns:53"',
    ]);
    const config = v.parse(dnsFactory.configSchema, { names: "kubernetes.default.svc.cluster.local" });
    expect(config).toMatchObject({ names: ["kubernetes.default.svc.cluster.local"], query_types: ["A"], servers: [], resolv_conf: "/etc/resolv.conf", emit_ok: false });
    expect(dnsFactory.quietPeriodMs!(config)).toBeUndefined();
    expect(dnsFactory.quietPeriodMs!({ ...config, emit_ok: true })).toBe(62_000);
  });
});
