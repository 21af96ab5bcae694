// Cutting a program's output into lines at the byte level: any chunking gives
// the same lines, and a line over the limit is reported, never kept whole.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { EXCERPT_BYTES, readLines, type ByteReader, type Line } from "../../../src/collectors/exec/lines.ts";

/** A reader handing out `chunks` one per read, counting the reads. */
function chunked(chunks: Uint8Array[]): ByteReader & { reads: number } {
  let at = 0;
  return {
    reads: 0,
    async read() {
      this.reads++;
      return at < chunks.length ? { done: false, value: chunks[at++]! } : { done: true };
    },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function collect(chunks: Uint8Array[], max: number): Promise<Array<string | { tooLong: number; head: string }>> {
  const out: Array<string | { tooLong: number; head: string }> = [];
  for await (const line of readLines(chunked(chunks), max)) out.push(show(line));
  return out;
}

function show(line: Line): string | { tooLong: number; head: string } {
  return line.tooLong ? { tooLong: line.tooLong.bytes, head: dec.decode(line.tooLong.head) } : dec.decode(line.bytes);
}

/** `text` cut at `cuts` (byte offsets). */
function cut(text: string, cuts: number[]): Uint8Array[] {
  const bytes = enc.encode(text);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.slice(from, p));
    from = Math.max(from, p);
  }
  return chunks;
}

describe("readLines", () => {
  test("lines across chunks, the last one without a newline, blank lines kept and numbered", async () => {
    const lines: Line[] = [];
    for await (const line of readLines(chunked([enc.encode('{"a":'), enc.encode('1}\n\n{"b"'), enc.encode(":2}\r\ntail")]), 100)) lines.push(line);
    expect(lines.map((l) => [l.number, show(l)])).toEqual([
      [1, '{"a":1}'],
      [2, ""],
      [3, '{"b":2}\r'],
      [4, "tail"],
    ]);
  });

  test("a line over the limit: its length and first bytes, then the next line as usual", async () => {
    const long = "x".repeat(1000);
    expect(await collect(cut(`ok\n${long}\nnext\n`, [5, 300, 700]), 100)).toEqual(["ok", { tooLong: 1000, head: "x".repeat(EXCERPT_BYTES) }, "next"]);
    // exactly at the limit is still a line; the last piece can take it over
    expect(await collect([enc.encode(`${"y".repeat(100)}\n${"z".repeat(60)}`), enc.encode(`${"z".repeat(41)}\n`)], 100)).toEqual(["y".repeat(100), { tooLong: 101, head: "z".repeat(101) }]);
    // one that never ends is reported at the end of output
    expect(await collect([enc.encode(long)], 100)).toEqual([{ tooLong: 1000, head: "x".repeat(EXCERPT_BYTES) }]);
  });

  test("a huge line is read through, not kept: 64 MiB past a 1 KiB limit", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x78);
    const chunks = [...Array.from({ length: 1024 }, () => chunk), enc.encode("\nafter\n")];
    const before = process.memoryUsage().rss;
    const lines = await collect(chunks, 1024);
    expect(lines).toEqual([{ tooLong: 64 * 1024 * 1024, head: "x".repeat(EXCERPT_BYTES) }, "after"]);
    // kept whole it would add 64 MiB (and more while concatenating)
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
  });

  test("reads only as lines are taken: a caller that stops asking stops the reading", async () => {
    const reader = chunked([enc.encode("a\nb\n"), enc.encode("c\n"), enc.encode("d\n")]);
    const lines = readLines(reader, 100);
    await lines.next();
    await lines.next();
    expect(reader.reads).toBe(1);
    await lines.next();
    expect(reader.reads).toBe(2);
  });

  test("property: any chunking of any text gives the lines of split('\\n'), those over the limit reported", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.constant("\n"), fc.constant("é€😀")), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 1, max: 40 }), async (parts, cuts, max) => {
        const text = parts.join("");
        const expected = text.split("\n");
        if (expected.at(-1) === "") expected.pop();
        const want = expected.map((l) => {
          const bytes = enc.encode(l);
          return bytes.length > max ? { tooLong: bytes.length, head: dec.decode(bytes.subarray(0, EXCERPT_BYTES)) } : l;
        });
        expect(await collect(cut(text, cuts), max)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
