import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { parseCounterPairs, parseGauge, parseNetDev, parseSockstat } from "../../../src/collectors/network/parse.ts";

const FIXTURES = resolve(import.meta.dir, "testdata");
const fixture = (path: string) => readFileSync(join(FIXTURES, path), "utf8");

function parse<T>(run: (fail: (d: string) => void) => T): { value: T; errors: string[] } {
  const errors: string[] = [];
  const value = run((d) => errors.push(d));
  return { value, errors };
}

describe("parseCounterPairs: columns by header name", () => {
  test("snmp of a 6.18 kernel and of the procfs fixture's older one", () => {
    const local = parse((f) => parseCounterPairs(fixture("local/proc/net/snmp"), f));
    expect(local.errors).toEqual([]);
    expect(local.value.size).toBe(83);
    expect(local.value.get("Tcp.RetransSegs")).toBe(626);
    expect(local.value.get("Tcp.OutSegs")).toBe(1567506);
    expect(local.value.get("Tcp.MaxConn")).toBe(-1);
    expect(local.value.get("Ip.OutTransmits")).toBe(1459146);
    expect(local.value.get("Udp.MemErrors")).toBe(0);

    const old = parse((f) => parseCounterPairs(fixture("procfs/proc/26231/net/snmp"), f));
    expect(old.errors).toEqual([]);
    expect(old.value.get("Tcp.RetransSegs")).toBe(348);
    expect(old.value.get("Tcp.OutSegs")).toBe(594855);
    // Columns that kernel did not have are absent, not misread.
    expect(old.value.has("Ip.OutTransmits")).toBe(false);
    expect(old.value.has("Udp.MemErrors")).toBe(false);
    expect(old.value.get("IcmpMsg.OutType3")).toBe(50);
  });

  test("netstat: the same names at different positions", () => {
    const local = parse((f) => parseCounterPairs(fixture("local/proc/net/netstat"), f));
    const old = parse((f) => parseCounterPairs(fixture("procfs/proc/26231/net/netstat"), f));
    expect(local.errors).toEqual([]);
    expect(old.errors).toEqual([]);
    expect(local.value.size).toBe(229);
    expect(old.value.size).toBe(131);
    // local has BeyondWindow ... before DelayedACKLost and TCPRcvQDrop near the end; the old one does not.
    expect(local.value.get("TcpExt.DelayedACKLost")).toBe(594);
    expect(old.value.get("TcpExt.DelayedACKLost")).toBe(7460);
    expect(local.value.get("TcpExt.TCPRcvQDrop")).toBe(0);
    expect(old.value.get("TcpExt.TCPRcvQDrop")).toBe(92425);
    expect(local.value.get("TcpExt.ListenOverflows")).toBe(0);
    expect(local.value.get("TcpExt.TCPTimeouts")).toBe(2);
    expect(local.value.get("IpExt.InOctets")).toBe(22691157558);
    expect(local.value.has("MPTcpExt.WinProbe")).toBe(true);
  });

  test("a broken section is skipped and reported; the others are kept", () => {
    const text = [
      "Ip: Forwarding DefaultTTL",
      "Ip: 2 64",
      "Stray line",
      "Tcp: RetransSegs OutSegs",
      "Tcp: 5",
      "Udp: InDatagrams NoPorts",
      "Udp: 1 x",
      "IcmpMsg: InType3",
      "Tcp: 1",
      "UdpLite: InDatagrams",
      "UdpLite: 7",
      "",
    ].join("\n");
    const { value, errors } = parse((f) => parseCounterPairs(text, f));
    expect([...value]).toEqual([
      ["Ip.Forwarding", 2],
      ["Ip.DefaultTTL", 64],
      ["UdpLite.InDatagrams", 7],
    ]);
    expect(errors).toEqual([
      'expected a "Stray" line of names and one of values, got "Stray line"',
      "Tcp: 2 names but 1 values",
      'Udp: value "x" is not an integer',
      'expected a "IcmpMsg:" line of names and one of values, got "IcmpMsg: InType3"',
      'expected a "Tcp:" line of names and one of values, got "Tcp: 1"',
    ]);
  });

  test("empty and truncated input", () => {
    expect(parse((f) => parseCounterPairs("", f)).errors).toEqual(["empty"]);
    expect(parse((f) => parseCounterPairs("\n\n", f)).errors).toEqual(["empty"]);
    // Cut inside the last number: without the newline that value could be missing digits, so its section goes.
    const cut = parse((f) => parseCounterPairs("Ip: A B\nIp: 1 2\nTcp: C\nTcp: 12345", f));
    expect([...cut.value.keys()]).toEqual(["Ip.A", "Ip.B"]);
    expect(cut.errors).toEqual(['truncated: no newline after "Tcp: 12345"', 'expected a "Tcp:" line of names and one of values, got "Tcp: C"']);
  });
});

describe("parseNetDev", () => {
  test("this VM's and the procfs fixture's, including a name that runs into its first value", () => {
    const local = parse((f) => parseNetDev(fixture("local/proc/net/dev"), f));
    expect(local.errors).toEqual([]);
    expect([...local.value.keys()]).toEqual(["lo", "ifb0", "ifb1", "eth0"]);
    expect(Object.fromEntries(local.value.get("eth0")!)).toEqual({
      rx_bytes: 121192084, rx_packets: 3295, rx_errs: 0, rx_drop: 0, rx_fifo: 0, rx_frame: 0, rx_compressed: 0, rx_multicast: 0,
      tx_bytes: 309977, tx_packets: 2547, tx_errs: 0, tx_drop: 0, tx_fifo: 0, tx_colls: 0, tx_carrier: 0, tx_compressed: 0,
    });
    const old = parse((f) => parseNetDev(fixture("procfs/proc/net/dev"), f));
    expect(old.errors).toEqual([]);
    expect([...old.value.keys()]).toEqual(["vethf345468", "lo", "docker0", "eth0"]);
    expect(old.value.get("vethf345468")!.get("rx_bytes")).toBe(648);
    expect(old.value.get("vethf345468")!.get("tx_bytes")).toBe(438);
  });

  test("columns come from the header", () => {
    const text = "Inter-|   Receive |  Transmit\n face |errs drop bytes|drop errs\n  eth1: 3 4 999 5 6\n";
    expect(Object.fromEntries(parse((f) => parseNetDev(text, f)).value.get("eth1")!)).toEqual({ rx_errs: 3, rx_drop: 4, rx_bytes: 999, tx_drop: 5, tx_errs: 6 });
  });

  test("bad lines are skipped and reported", () => {
    const head = fixture("local/proc/net/dev").split("\n").slice(0, 2).join("\n");
    const { value, errors } = parse((f) => parseNetDev(`${head}\n  eth0: 1 2 3\nno colon here\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  lo: ${"1 ".repeat(16)}\n`, f));
    expect([...value.keys()]).toEqual(["lo"]);
    expect(errors.length).toBe(3);
    expect(parse((f) => parseNetDev("", f)).errors).toEqual(["empty"]);
    expect(parse((f) => parseNetDev("just one line\n", f)).errors).toEqual(["no `face |receive|transmit` header line"]);
  });
});

test("parseSockstat", () => {
  const { value, errors } = parse((f) => parseSockstat(fixture("local/proc/net/sockstat"), f));
  expect(errors).toEqual([]);
  expect(Object.fromEntries(value)).toMatchObject({ "sockets.used": 38, "TCP.inuse": 16, "TCP.orphan": 0, "TCP.tw": 37, "TCP.alloc": 16, "TCP.mem": 242, "FRAG.memory": 0 });
  expect(parse((f) => parseSockstat(fixture("procfs/proc/net/sockstat"), f)).value.get("TCP.alloc")).toBe(59);
  const bad = parse((f) => parseSockstat("TCP: inuse\nUDP: inuse x\nRAW inuse 1\n", f));
  expect(bad.value.size).toBe(0);
  expect(bad.errors.length).toBe(3);
});

test("parseGauge", () => {
  expect(parse((f) => parseGauge(fixture("local/proc/sys/net/netfilter/nf_conntrack_max"), f)).value).toBe(262144);
  expect(parse((f) => parseGauge(fixture("local/proc/sys/net/netfilter/nf_conntrack_count"), f)).value).toBe(0);
  for (const [text, error] of [["", "empty"], ["26214", 'truncated: no newline after "26214"'], ["-1\n", 'not one integer: "-1"'], ["1\n2\n", 'not one integer: "1\\n2"']] as const) {
    expect(parse((f) => parseGauge(text, f))).toEqual({ value: undefined, errors: [error] });
  }
});

describe("properties", () => {
  const sources = [
    ["local/proc/net/snmp", parseCounterPairs],
    ["local/proc/net/netstat", parseCounterPairs],
    ["procfs/proc/26231/net/netstat", parseCounterPairs],
    ["local/proc/net/dev", (t: string, f: (d: string) => void) => new Map([...parseNetDev(t, f)].flatMap(([i, m]) => [...m].map(([k, n]) => [`${i}.${k}`, n] as const)))],
    ["local/proc/net/sockstat", parseSockstat],
  ] as const;

  test("a file cut anywhere yields a subset of the whole file's values, never a wrong one", () => {
    for (const [path, parser] of sources) {
      const text = fixture(path);
      const whole = parser(text, () => {
        throw new Error("the fixture parses cleanly");
      });
      fc.assert(
        fc.property(fc.nat({ max: text.length }), (cut) => {
          const errors: string[] = [];
          const part = parser(text.slice(0, cut), (d) => errors.push(d));
          for (const [key, value] of part) expect(whole.get(key)).toBe(value);
          // A cut right after a newline looks like a shorter file; anywhere else it is reported.
          if (cut > 0 && text[cut - 1] !== "\n") expect(errors.length).toBeGreaterThan(0);
        }),
        { numRuns: 300 },
      );
    }
  });

  test("any text: no throw, only integers come out", () => {
    const anyText = fc.oneof(
      fc.string({ unit: "binary", maxLength: 500 }),
      fc.array(fc.constantFrom("Tcp:", "TcpExt:", "ListenOverflows", "1", "-2", "x", " ", "\n", "|", ":", "eth0:", "99999999999999999999"), { maxLength: 80 }).map((a) => a.join(" ")),
    );
    fc.assert(
      fc.property(anyText, (text) => {
        const ignore = () => {};
        for (const value of parseCounterPairs(text, ignore).values()) expect(Number.isInteger(value)).toBe(true);
        for (const m of parseNetDev(text, ignore).values()) for (const value of m.values()) expect(Number.isInteger(value)).toBe(true);
        for (const value of parseSockstat(text, ignore).values()) expect(Number.isInteger(value)).toBe(true);
        const gauge = parseGauge(text, ignore);
        if (gauge !== undefined) expect(Number.isInteger(gauge)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("values scanned in place agree with the general path", () => {
  // The parsers as they were before the in-place scan (split and a regular expression per value):
  // the reference for every line shape, usual or not.
  const INT = /^-?\d+$/;
  const lines = (text: string, fail: (d: string) => void) => {
    const all = text.split("\n");
    const last = all.pop()!;
    const complete = all.filter((l) => l.trim() !== "");
    if (last !== "") fail(`truncated: no newline after ${clip(last)}`);
    else if (complete.length === 0) fail("empty");
    return complete;
  };
  const clip = (line: string) => JSON.stringify(line.length > 48 ? `${line.slice(0, 48)}...` : line);
  function counterPairs(text: string, fail: (d: string) => void): Map<string, number> {
    const counters = new Map<string, number>();
    const ls = lines(text, fail);
    for (let i = 0; i < ls.length; i += 2) {
      const names = ls[i]!.trim().split(/\s+/);
      const values = ls[i + 1]?.trim().split(/\s+/);
      const prefix = /^(\w+):$/.exec(names[0] ?? "")?.[1];
      if (prefix === undefined || values === undefined || values[0] !== names[0]) {
        fail(`expected a "${names[0]}" line of names and one of values, got ${clip(ls[i]!)}`);
        i -= 1;
        continue;
      }
      if (names.length !== values.length) {
        fail(`${prefix}: ${names.length - 1} names but ${values.length - 1} values`);
        continue;
      }
      const bad = values.slice(1).find((x) => !INT.test(x));
      if (bad !== undefined) {
        fail(`${prefix}: value ${clip(bad)} is not an integer`);
        continue;
      }
      for (let k = 1; k < names.length; k++) counters.set(`${prefix}.${names[k]}`, Number(values[k]));
    }
    return counters;
  }
  function netDev(text: string, fail: (d: string) => void): Map<string, Map<string, number>> {
    const interfaces = new Map<string, Map<string, number>>();
    const ls = lines(text, fail);
    const sections = ls[1]?.split("|");
    if (sections?.length !== 3) {
      if (ls.length > 0) fail("no `face |receive|transmit` header line");
      return interfaces;
    }
    const columns = [...sections[1]!.trim().split(/\s+/).map((c) => `rx_${c}`), ...sections[2]!.trim().split(/\s+/).map((c) => `tx_${c}`)];
    for (const line of ls.slice(2)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim();
      const values = line.slice(colon + 1).trim().split(/\s+/);
      if (colon < 0 || name === "" || values.length !== columns.length || !values.every((x) => INT.test(x))) {
        fail(`not an interface line of ${columns.length} counters: ${clip(line)}`);
        continue;
      }
      interfaces.set(name, new Map(columns.map((c, k) => [c, Number(values[k])])));
    }
    return interfaces;
  }
  const nested = (m: Map<string, Map<string, number>>) => [...m].map(([k, v]) => [k, [...v]]);

  /** A recorded file with some of its characters replaced by ones that matter to the scan, or those put at the end of a line. */
  const mutated = (path: string) => {
    const text = fixture(path);
    const by = fc.constantFrom(" ", "  ", "\t", "-", "--", "x", "", "\n", "1", ":", "|", " \n", "\u00a0", "99999999999999999999");
    return fc.array(fc.tuple(fc.nat({ max: text.length - 1 }), by, fc.boolean()), { maxLength: 4 }).map((edits) => {
      let out = text;
      for (const [at, with_, atLineEnd] of edits) {
        const end = out.indexOf("\n", at);
        out = atLineEnd && end >= 0 ? out.slice(0, end) + with_ + out.slice(end) : out.slice(0, at) + with_ + out.slice(at + 1);
      }
      return out;
    });
  };

  for (const path of ["local/proc/net/snmp", "local/proc/net/netstat", "procfs/proc/26231/net/netstat"]) {
    test(`parseCounterPairs, ${path} and variants of it`, () => {
      fc.assert(
        fc.property(mutated(path), (text) => {
          const scanned = parse((f) => parseCounterPairs(text, f));
          const general = parse((f) => counterPairs(text, f));
          expect([...scanned.value]).toEqual([...general.value]);
          expect(scanned.errors).toEqual(general.errors);
        }),
        { numRuns: 500 },
      );
    });
  }

  for (const path of ["local/proc/net/dev", "procfs/proc/net/dev"]) {
    test(`parseNetDev, ${path} and variants of it`, () => {
      fc.assert(
        fc.property(mutated(path), (text) => {
          const scanned = parse((f) => parseNetDev(text, f));
          const general = parse((f) => netDev(text, f));
          expect(nested(scanned.value)).toEqual(nested(general.value));
          expect(scanned.errors).toEqual(general.errors);
        }),
        { numRuns: 500 },
      );
    });
  }
});
