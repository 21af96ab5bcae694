import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { parseResolvConf, parseServer } from "../../../src/collectors/dns/resolv.ts";

const testdata = (name: string) => readFileSync(join(import.meta.dir, "testdata", name), "utf8");

function parse(text: string) {
  const errors: string[] = [];
  const servers = parseResolvConf(text, (d) => errors.push(d));
  return { servers, errors };
}

test("resolv.conf: nameservers in order, at most three, other keywords ignored, bad lines reported", () => {
  expect(parse(testdata("resolv.conf"))).toEqual({
    servers: [
      { ip: "127.0.0.77", port: 53 },
      { ip: "::1", port: 53 },
      { ip: "127.0.0.78", port: 53 },
    ],
    errors: ['unusable nameserver line: "nameserver not-an-address"'],
  });
  expect(parse(testdata("resolv-none.conf"))).toEqual({ servers: [], errors: [] });
  expect(parse("")).toEqual({ servers: [], errors: [] });
  // A link-local server carries its zone; a bare keyword or a zone on IPv4 is unusable.
  expect(parse("nameserver fe80::1%eth0\nnameserver\nnameserver 10.0.0.1%eth0\n\tnameserver\t10.96.0.10").servers).toEqual([
    { ip: "fe80::1%eth0", port: 53 },
    { ip: "10.96.0.10", port: 53 },
  ]);
  expect(parse("nameserver\nnameserver 10.0.0.1%eth0").errors).toHaveLength(2);
});

test("configured servers: ip, ip:port, [v6]:port", () => {
  expect(parseServer("10.96.0.10")).toEqual({ ip: "10.96.0.10", port: 53 });
  expect(parseServer("127.0.0.1:5353")).toEqual({ ip: "127.0.0.1", port: 5353 });
  expect(parseServer("::1")).toEqual({ ip: "::1", port: 53 });
  expect(parseServer("[fd00::a]:54")).toEqual({ ip: "fd00::a", port: 54 });
  expect(parseServer("[::1]")).toEqual({ ip: "::1", port: 53 });
  for (const bad of ["", "dns.local", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:", "fd00::a:53:x", "[10.0.0.1]x", "1.2.3", "[]:53"]) {
    expect(parseServer(bad)).toBeUndefined();
  }
});

test("property: any text gives at most three valid servers, never throws", () => {
  const lines = fc.array(
    fc.oneof(
      fc.string({ unit: "binary", maxLength: 60 }),
      fc.tuple(fc.constantFrom("nameserver", "nameserver ", "search", "options"), fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 }))).map(([k, a]) => `${k} ${a}`),
    ),
    { maxLength: 12 },
  );
  fc.assert(
    fc.property(lines, (ls) => {
      const { servers } = parse(ls.join("\n"));
      expect(servers.length).toBeLessThanOrEqual(3);
      for (const s of servers) expect(parseServer(s.ip.includes(":") ? `[${s.ip}]` : s.ip)).toEqual(s);
    }),
    { numRuns: 2000 },
  );
});
