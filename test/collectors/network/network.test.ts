import { afterEach, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join, resolve } from "node:path";
import * as v from "valibot";
import fc from "fast-check";
import { counterEvents, NetworkCollector, networkFactory, type Sample } from "../../../src/collectors/network/index.ts";
import { parseCounterPairs, parseNetDev, parseSockstat } from "../../../src/collectors/network/parse.ts";
import type { CollectorEvent } from "../../../src/event/event.ts";
import { recordingContext, type Recording } from "../../helpers/collector-context.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { listenWithoutAccepting } from "./listener.ts";

const FIXTURES = resolve(import.meta.dir, "testdata");
const fixture = (path: string) => readFileSync(join(FIXTURES, path), "utf8");

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeTempDir(dir);
});

/** A proc root holding this VM's recorded net/* and conntrack files, which the test then changes. */
function fakeProc() {
  const root = makeTempDir("netproc");
  dirs.push(root);
  cpSync(join(FIXTURES, "local/proc/net"), join(root, "net"), { recursive: true });
  cpSync(join(FIXTURES, "local/proc/sys/net/netfilter"), join(root, "sys/net/netfilter"), { recursive: true });
  const path = (file: string) => join(root, file);
  return {
    root,
    path,
    /** Adds to counters of a snmp/netstat section, found by header name as the kernel lays them out. */
    bump(file: "net/snmp" | "net/netstat", prefix: string, add: Record<string, number>) {
      const lines = readFileSync(path(file), "utf8").split("\n");
      const at = lines.findIndex((l) => l.startsWith(`${prefix}: `));
      const names = lines[at]!.split(" ");
      const values = lines[at + 1]!.split(" ");
      for (const [name, n] of Object.entries(add)) {
        const k = names.indexOf(name);
        expect(k).toBeGreaterThan(0);
        values[k] = String(Number(values[k]) + n);
      }
      lines[at + 1] = values.join(" ");
      writeFileSync(path(file), lines.join("\n"));
    },
    /** Adds to an interface's counters in net/dev ("rx_drop", "tx_errs", ...). */
    bumpDev(iface: string, add: Record<string, number>) {
      const columns = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"].map((c) => `rx_${c}`)
        .concat(["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"].map((c) => `tx_${c}`));
      const lines = readFileSync(path("net/dev"), "utf8").split("\n");
      const at = lines.findIndex((l) => l.trim().startsWith(`${iface}:`));
      const values = lines[at]!.split(":")[1]!.trim().split(/\s+/).map(Number);
      for (const [column, n] of Object.entries(add)) values[columns.indexOf(column)]! += n;
      lines[at] = `${iface}: ${values.join(" ")}`;
      writeFileSync(path("net/dev"), lines.join("\n"));
    },
    set(file: string, text: string) {
      writeFileSync(path(file), text);
    },
  };
}

function collector(config: Record<string, unknown>): NetworkCollector {
  return networkFactory.create(v.parse(networkFactory.configSchema, config)) as NetworkCollector;
}

async function round(c: NetworkCollector, rec: Recording): Promise<CollectorEvent[]> {
  const before = rec.events.length;
  await c.run(rec.ctx);
  return rec.events.slice(before);
}

const types = (events: CollectorEvent[]) => events.map((e) => e.type);

describe("counterEvents", () => {
  const config = v.parse(networkFactory.configSchema, { retransmit_rate: 5 });
  const ignore = () => {};
  const sample = (at: number, snmp = fixture("local/proc/net/snmp")): Sample => ({
    at,
    counters: new Map([...parseCounterPairs(snmp, ignore), ...parseCounterPairs(fixture("local/proc/net/netstat"), ignore)]),
    interfaces: parseNetDev(fixture("local/proc/net/dev"), ignore),
    sockets: parseSockstat(fixture("local/proc/net/sockstat"), ignore),
  });
  const withTcp = (s: Sample, retrans: number, out: number): Sample => {
    const counters = new Map(s.counters);
    counters.set("Tcp.RetransSegs", s.counters.get("Tcp.RetransSegs")! + retrans);
    counters.set("Tcp.OutSegs", s.counters.get("Tcp.OutSegs")! + out);
    return { ...s, counters };
  };

  test("no change, no events", () => {
    expect(counterEvents(sample(0), sample(10_000), config)).toEqual([]);
  });

  test("retransmits: by rate over the measured interval, by ratio above the segment floor", () => {
    const base = sample(0);
    // 60 retransmits of 100000 segments in 10 s: 0.06 % but 6/s, over the rate of 5/s.
    const [byRate] = counterEvents(base, withTcp({ ...base, at: 10_000 }, 60, 100_000), config);
    expect(byRate?.event_data).toEqual({
      network: { event_type: "tcp_retransmits", protocol: "tcp" },
      custom: {
        retrans_segs: "60", out_segs: "100000", ratio: "0.0006", rate_per_second: "6", tcp_timeouts: "0", interval_seconds: "10",
        tcp_inuse: "16", tcp_orphan: "0", tcp_tw: "37", tcp_alloc: "16", tcp_mem: "242",
      },
    });
    // 40 of 100000 in 10 s: 4/s, 0.04 %: neither.
    expect(counterEvents(base, withTcp({ ...base, at: 10_000 }, 40, 100_000), config)).toEqual([]);
    // 40 of 500 in 100 s: 8 % but below the 1000-segment floor, and 0.4/s.
    expect(counterEvents(base, withTcp({ ...base, at: 100_000 }, 40, 500), config)).toEqual([]);
    // 40 of 1000 in 100 s: 4 %, under 5 %. 60 of 1000: 6 %, a spike.
    expect(counterEvents(base, withTcp({ ...base, at: 100_000 }, 40, 1000), config)).toEqual([]);
    expect(counterEvents(base, withTcp({ ...base, at: 100_000 }, 60, 1000), config)[0]?.event_data.custom).toMatchObject({ ratio: "0.06", rate_per_second: "0.6" });
  });

  test("a counter that went backwards re-baselines instead of reporting a huge or negative delta", () => {
    const base = withTcp(sample(0), 1000, 0);
    expect(counterEvents(base, withTcp({ ...sample(10_000) }, 5, 5000), config)).toEqual([]);
  });
});

describe("network collector on recorded /proc files", () => {
  test("baseline, then each kind of event once its delta crosses a threshold", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    expect(await round(c, rec)).toEqual([]);
    expect(rec.degraded).toEqual([]);

    proc.bump("net/snmp", "Tcp", { RetransSegs: 100, OutSegs: 1000 });
    proc.bump("net/netstat", "TcpExt", { ListenOverflows: 7, ListenDrops: 7 });
    proc.bumpDev("eth0", { rx_errs: 2, tx_carrier: 1 });
    proc.bumpDev("lo", { rx_drop: 150 });
    proc.bumpDev("ifb0", { rx_drop: 5 });
    const events = await round(c, rec);
    expect(types(events)).toEqual(["network.tcp.retransmits", "network.listen_overflow", "network.interface.errors", "network.interface.errors"]);
    const [retrans, listen, lo, eth0] = events as [CollectorEvent, CollectorEvent, CollectorEvent, CollectorEvent];
    expect(retrans.severity).toBe("warning");
    expect(retrans.event_data.custom).toMatchObject({ retrans_segs: "100", out_segs: "1000", ratio: "0.1" });
    expect(listen).toMatchObject({
      severity: "warning",
      event_data: {
        network: { event_type: "listen_overflow", protocol: "tcp", direction: "inbound" },
        custom: { listen_overflows: "7", listen_drops: "7", tcp_inuse: "16" },
      },
    });
    expect(lo).toMatchObject({
      severity: "low",
      event_data: { network: { event_type: "interface_drops", protocol: "link" }, custom: { interface: "lo", rx_drop: "150", drops: "150", errors: "0" } },
    });
    expect(eth0).toMatchObject({
      severity: "warning",
      event_data: { network: { event_type: "interface_errors", protocol: "link" }, custom: { interface: "eth0", rx_errs: "2", tx_carrier: "1", errors: "2", drops: "0" } },
    });
    for (const e of events) for (const value of Object.values(e.event_data.custom as object)) expect(typeof value).toBe("string");

    // Nothing new: nothing emitted.
    expect(await round(c, rec)).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
  });

  test("interfaces that appear start from a baseline; counter resets re-baseline", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root, interface_drops_min: 1 });
    const rec = recordingContext();
    await round(c, rec);
    proc.set("net/dev", `${fixture("local/proc/net/dev")}vethab12: ${"9 ".repeat(16)}\n`);
    expect(await round(c, rec)).toEqual([]);
    // veth re-created with the same name: its counters start again from 0.
    proc.set("net/dev", `${fixture("local/proc/net/dev")}vethab12: ${"0 ".repeat(16)}\n`);
    expect(await round(c, rec)).toEqual([]);
    proc.set("net/dev", `${fixture("local/proc/net/dev")}vethab12: 0 0 0 3 ${"0 ".repeat(12)}\n`);
    expect(types(await round(c, rec))).toEqual(["network.interface.errors"]);


    // Retransmits went backwards (a reset): no event; the next growth is measured from the new value.
    proc.bump("net/snmp", "Tcp", { RetransSegs: -600, OutSegs: 1000 });
    expect(await round(c, rec)).toEqual([]);
    proc.bump("net/snmp", "Tcp", { RetransSegs: 100, OutSegs: 1000 });
    expect(types(await round(c, rec))).toEqual(["network.tcp.retransmits"]);
  });

  test("conntrack: near the limit, full, back below (with hysteresis); judged from the first poll", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    const at = async (count: number) => {
      proc.set("sys/net/netfilter/nf_conntrack_count", `${count}\n`);
      return round(c, rec);
    };
    const near = await at(210_000);
    expect(near).toHaveLength(1);
    expect(near[0]).toMatchObject({
      type: "network.conntrack.near_limit",
      severity: "warning",
      event_data: { network: { event_type: "conntrack_near_limit", protocol: "ip" }, custom: { count: "210000", max: "262144", ratio: "0.8011", threshold: "0.8" } },
    });
    expect(await at(220_000)).toEqual([]);
    expect(await at(262_144)).toMatchObject([{ type: "network.conntrack.near_limit", severity: "critical", event_data: { network: { event_type: "conntrack_full" } } }]);
    expect(await at(250_000)).toEqual([]);
    expect(await at(200_000)).toEqual([]); // 76 %: within the hysteresis
    expect(await at(100_000)).toMatchObject([{ type: "network.conntrack.recovered", severity: "info", event_data: { custom: { count: "100000" } } }]);
    expect(await at(100_000)).toEqual([]);
  });

  test("missing sources: degraded, naming them, while the others still report; conntrack: false skips it", async () => {
    const proc = fakeProc();
    rmSync(proc.path("net/sockstat"));
    rmSync(proc.path("sys/net/netfilter"), { recursive: true });
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    await round(c, rec);
    expect(rec.degraded).toHaveLength(1);
    expect(rec.degraded[0]).toContain("net/sockstat does not exist");
    expect(rec.degraded[0]).toContain("nf_conntrack_count does not exist");
    expect(rec.degraded[0]).toContain("nf_conntrack_max does not exist");
    proc.bump("net/netstat", "TcpExt", { ListenOverflows: 1 });
    expect(types(await round(c, rec))).toEqual(["network.listen_overflow"]);
    expect(rec.healthyCalls).toBe(0);

    const without = collector({ proc_root: proc.root, conntrack: false });
    const rec2 = recordingContext();
    cpSync(join(FIXTURES, "local/proc/net/sockstat"), proc.path("net/sockstat"));
    await round(without, rec2);
    expect(rec2.degraded).toEqual([]);
    expect(rec2.healthyCalls).toBe(1);
  });

  test("the procfs fixture's per-pid net directory, read through net_dir", async () => {
    const c = collector({ proc_root: join(FIXTURES, "procfs/proc"), net_dir: "26231/net" });
    const rec = recordingContext();
    await round(c, rec);
    await round(c, rec);
    expect(rec.events).toEqual([]);
    expect(rec.parseErrors).toEqual([]);
    // That snapshot has no sockstat under 26231/net and no conntrack files.
    expect(rec.degraded[0]).toMatch(/26231\/net\/sockstat does not exist.*nf_conntrack_count.*nf_conntrack_max/);
  });

  test("a missing /proc keeps it degraded and retrying until the files appear", async () => {
    const root = join(makeTempDir("netproc-missing"), "proc");
    dirs.push(root);
    const c = collector({ proc_root: root, interval: "20ms", conntrack: false });
    const rec = recordingContext({ once: false });
    const running = c.run(rec.ctx);
    while (rec.degraded.length < 3) await Bun.sleep(10);
    cpSync(join(FIXTURES, "local/proc/net"), join(root, "net"), { recursive: true });
    while (rec.healthyCalls === 0) await Bun.sleep(10);
    rec.stop();
    await running;
    expect(rec.degraded[0]).toContain("does not exist");
  });

  test("property: garbage in any file is counted, never thrown; good files after it work again", async () => {
    const proc = fakeProc();
    const c = collector({ proc_root: proc.root });
    const rec = recordingContext();
    await round(c, rec);
    const files = ["net/snmp", "net/netstat", "net/dev", "net/sockstat", "sys/net/netfilter/nf_conntrack_count", "sys/net/netfilter/nf_conntrack_max"];
    // One number on a line is a valid gauge, not garbage.
    const garbageText = fc.string({ unit: "binary", maxLength: 400 }).filter((s) => !/^\s*\d+\s*\n\s*$/.test(s));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...files), garbageText, async (file, garbage) => {
        const good = readFileSync(proc.path(file), "utf8");
        const errorsBefore = rec.parseErrors.length;
        proc.set(file, garbage);
        await round(c, rec);
        expect(rec.parseErrors.length).toBeGreaterThan(errorsBefore);
        proc.set(file, good);
        await round(c, rec);
        // With the baseline back, a new overflow is seen at once.
        proc.bump("net/netstat", "TcpExt", { ListenOverflows: 1 });
        expect(types(await round(c, rec))).toContain("network.listen_overflow");
      }),
      { numRuns: 60 },
    );
    expect(rec.degraded).toEqual([]);
  });
});

test("live: a listener that never accepts overflows on loopback, and the collector reports it", async () => {
  const c = collector({ interval: "100ms", conntrack: false });
  const rec = recordingContext({ once: false });
  const running = c.run(rec.ctx);
  while (rec.healthyCalls === 0 && rec.degraded.length === 0) await Bun.sleep(10);

  // backlog 1: the accept queue holds two connections; the rest of the handshakes overflow it.
  const listener = listenWithoutAccepting("127.0.0.1", 1);
  const clients: net.Socket[] = [];
  try {
    for (let k = 0; k < 8; k++) {
      const socket = net.connect({ host: "127.0.0.1", port: listener.port });
      socket.on("error", () => {});
      clients.push(socket);
    }
    const overflow = () => rec.events.find((e) => e.type === "network.listen_overflow");
    const deadline = Date.now() + 10_000;
    while (!overflow() && Date.now() < deadline) await Bun.sleep(20);
    expect(overflow()).toMatchObject({ severity: "warning", event_data: { network: { event_type: "listen_overflow", protocol: "tcp" } } });
    expect(Number((overflow()!.event_data.custom as Record<string, string>).listen_overflows)).toBeGreaterThan(0);
  } finally {
    for (const socket of clients) socket.destroy();
    listener.close();
    rec.stop();
    await running;
  }
  expect(rec.parseErrors).toEqual([]);
});

describe("config", () => {
  test("defaults", () => {
    expect(v.parse(networkFactory.configSchema, {})).toMatchObject({
      proc_root: "/proc",
      net_dir: "net",
      retransmit_ratio: 0.05,
      retransmit_min_segments: 1000,
      retransmit_rate: 0,
      interface_errors_min: 1,
      interface_drops_min: 100,
      conntrack: true,
      conntrack_ratio: 0.8,
    });
    expect(networkFactory.quietPeriodMs!(v.parse(networkFactory.configSchema, {}))).toBeUndefined();
    expect(v.safeParse(networkFactory.configSchema, { conntrack_ratio: 2 }).issues?.[0]?.message).toBe("expected a number from 0 to 1, got 2");
  });
});
