import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { canonicalName, decodeResponse, encodeQuery, isProbeName, rcodeName } from "../../../src/collectors/dns/message.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

function decode(bytes: Uint8Array, expect = { id: 0xbeef, name: "example.com", type: "A" as "A" | "AAAA" }) {
  const errors: string[] = [];
  const value = decodeResponse(bytes, expect, (d) => errors.push(d));
  return { value, errors };
}

// example.com A, id 0xbeef, as any stub resolver sends it (RD set).
const QUERY = "beef 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001";
// Its answer: QR RD RA, two A records named by a pointer to the question (c00c), TTL 300.
const RESPONSE = `beef 8180 0001 0002 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001
  c00c 0001 0001 0000012c 0004 5db8d822
  c00c 0001 0001 0000012c 0004 5db8d823`;

describe("encodeQuery", () => {
  test("byte for byte", () => {
    expect(hex(encodeQuery(0xbeef, "example.com", "A"))).toBe(QUERY.replace(/\s+/g, ""));
    // A trailing dot names the same root; case is kept off the wire (0x20 bit is not used).
    expect(hex(encodeQuery(0xbeef, "Example.COM.", "A"))).toBe(QUERY.replace(/\s+/g, ""));
    expect(hex(encodeQuery(1, "a.b", "AAAA"))).toBe("000101000001000000000000016101620000" + "1c0001");
  });
});

describe("decodeResponse", () => {
  test("addresses of A answers, following compression pointers", () => {
    expect(decode(fromHex(RESPONSE))).toEqual({ value: { rcode: 0, truncated: false, answers: ["93.184.216.34", "93.184.216.35"] }, errors: [] });
  });

  test("AAAA answers in RFC 5952 form; a CNAME on the way is skipped", () => {
    const aaaa = fromHex(`0001 8180 0001 0003 0000 0000 0377777705 6b75626573 00 001c 0001
      c00c 0005 0001 0000003c 0006 03667a7a c00c
      c00c 001c 0001 0000003c 0010 fd000000000000000000000000000001
      c00c 001c 0001 0000003c 0010 20010db8000000010000000000000001`);
    expect(decode(aaaa, { id: 1, name: "www.kubes", type: "AAAA" }).value?.answers).toEqual(["fd00::1", "2001:db8:0:1::1"]);
  });

  test("rcode, truncation and an error answer without a question", () => {
    expect(decode(fromHex("beef 8183 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001")).value).toEqual({ rcode: 3, truncated: false, answers: [] });
    expect(decode(fromHex("beef 8385 0000 0000 0000 0000")).value).toEqual({ rcode: 5, truncated: true, answers: [] });
    expect([0, 1, 2, 3, 4, 5, 9].map(rcodeName)).toEqual(["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "RCODE9"]);
  });

  test("what is not this query's answer is reported and not used", () => {
    const response = fromHex(RESPONSE);
    const cases: Array<[Uint8Array, string]> = [
      [new Uint8Array(0), "0 bytes, shorter than a DNS header"],
      [fromHex(QUERY), "a query, not a response (QR=0)"],
      [Uint8Array.from(response, (b, k) => (k === 1 ? 0xee : b)), `id ${0xbeee}, expected ${0xbeef}`],
      [fromHex(RESPONSE.replace("07 6578616d706c65", "07 6578616d706c66")), "answers another question (examplf.com type 1)"],
      [fromHex(RESPONSE.replace("00 0001 0001\n", "00 001c 0001\n")), "answers another question (example.com type 28)"],
      [fromHex("beef 8180 0002 0000 0000 0000"), "2 questions"],
      // A pointer to itself, and one forwards: loops a careless decoder would follow for ever.
      [fromHex("beef 8180 0001 0000 0000 0000 c00c 0001 0001"), "compression pointer does not point backwards"],
      [fromHex("beef 8180 0001 0000 0000 0000 c020 0001 0001"), "compression pointer does not point backwards"],
      [fromHex("beef 8180 0001 0000 0000 0000 4001 0001 0001"), "label type 0x40 is not supported"],
      [fromHex(RESPONSE.replace("0004 5db8d823", "0003 5db8d8")), "address record of 3 bytes"],
    ];
    for (const [bytes, error] of cases) expect(decode(bytes)).toEqual({ value: undefined, errors: [error] });
  });

  test("every truncation of a good answer is reported", () => {
    const response = fromHex(RESPONSE);
    for (let cut = 0; cut < response.length; cut++) {
      const { value, errors } = decode(response.subarray(0, cut));
      expect(value).toBeUndefined();
      expect(errors).toHaveLength(1);
    }
  });

  test("property: any bytes, and any corruption of a good answer, decode or are reported; never throw", () => {
    const response = fromHex(RESPONSE);
    const corrupted = fc
      .array(fc.tuple(fc.nat({ max: response.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
      .map((edits) => {
        const copy = Uint8Array.from(response);
        for (const [at, byte] of edits) copy[at] = byte;
        return copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), corrupted), (bytes) => {
        const { value, errors } = decode(bytes);
        expect(value === undefined ? errors.length : errors.length + 1).toBe(1);
        for (const address of value?.answers ?? []) expect(address).toMatch(/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+)$/);
      }),
      { numRuns: 5000 },
    );
  });
});

test("names", () => {
  expect(canonicalName("Kubernetes.Default.SVC.cluster.local.")).toBe("kubernetes.default.svc.cluster.local");
  for (const good of ["kubernetes.default.svc.cluster.local", "example.com.", "_dns._udp.example.com", "localhost", "a".repeat(63) + ".b"]) expect(isProbeName(good)).toBe(true);
  for (const bad of ["", ".", "a..b", "a b.c", "a".repeat(64) + ".b", `${"a.".repeat(127)}ab`, "ä.example"]) expect(isProbeName(bad)).toBe(false);
});
