// ByteArena: events encoded straight into write-once chunks, each followed
// by a newline, views that later writes never touch.
import { describe, expect, test } from "bun:test";
import { ByteArena, follows } from "../../src/event/arena.ts";
import { EventEncoder, InvalidEventError } from "../../src/event/encode.ts";

const dec = new TextDecoder();

function write(arena: ByteArena, ...pieces: string[]): Uint8Array {
  arena.start();
  for (const p of pieces) arena.put(p);
  return arena.end();
}

describe("ByteArena", () => {
  test("each event is its pieces as UTF-8, followed by a newline outside its view; adjacent events follow each other", () => {
    const arena = new ByteArena(1024);
    const a = write(arena, '{"a":', '"é€😀"', "}");
    const b = write(arena, '{"b":1}');
    expect(dec.decode(a)).toBe('{"a":"é€😀"}');
    expect(dec.decode(b)).toBe('{"b":1}');
    const chunk = new Uint8Array(a.buffer);
    expect(chunk[a.byteOffset + a.byteLength]).toBe(0x0a);
    expect(follows(chunk, a, b)).toBe(true);
    expect(follows(chunk, b, a)).toBe(false);
  });

  test("views stay valid however much is written after them; an event that does not fit moves whole to a new chunk", () => {
    const arena = new ByteArena(256);
    const texts = Array.from({ length: 200 }, (_, i) => `{"i":${i},"pad":"${"x".repeat(i % 70)}","u":"${"ü".repeat(i % 13)}"}`);
    const views = texts.map((t) => write(arena, t.slice(0, 7), t.slice(7, 40), t.slice(40)));
    expect(views.map((v) => dec.decode(v))).toEqual(texts);
    const buffers = new Set(views.map((v) => v.buffer));
    expect(buffers.size).toBeGreaterThan(10);
    for (let i = 1; i < views.length; i++) {
      const chunk = new Uint8Array(views[i - 1]!.buffer);
      expect(follows(chunk, views[i - 1]!, views[i]!)).toBe(views[i]!.buffer === views[i - 1]!.buffer);
    }
  });

  test("an event larger than a chunk gets a chunk of its own size, and later events go on after it", () => {
    const arena = new ByteArena(64);
    const big = "€".repeat(500); // 1500 bytes
    const small = write(arena, "s");
    const large = write(arena, '{"big":"', big, '"}');
    const after = write(arena, "t");
    expect(dec.decode(large)).toBe(`{"big":"${big}"}`);
    expect([dec.decode(small), dec.decode(after)]).toEqual(["s", "t"]);
    expect(follows(new Uint8Array(large.buffer), large, after)).toBe(true);
  });

  test("a throw between start and end leaves bytes that no later event is adjacent to", () => {
    const arena = new ByteArena(1024);
    const a = write(arena, "a");
    arena.start();
    arena.put("half-written");
    const b = write(arena, "b");
    expect(dec.decode(b)).toBe("b");
    expect(follows(new Uint8Array(a.buffer), a, b)).toBe(false);
  });
});

describe("EventEncoder and its arena", () => {
  const input = (data: unknown = {}) => ({ type: "t", severity: "info" as const, event_data: data as Record<string, unknown> });
  const adjacent = (a: Uint8Array, b: Uint8Array) => follows(new Uint8Array(a.buffer), a, b);

  test("an event dropped right after encoding is taken back: the next one takes its place", () => {
    const enc = new EventEncoder("c", "s.c", 1 << 20);
    const a = enc.encode(input());
    const dropped = enc.encode(input({ x: 1 }));
    enc.discard(dropped);
    const c = enc.encode(input({ y: 2 }));
    expect(c.bytes.byteOffset).toBe(dropped.bytes.byteOffset);
    expect(adjacent(a.bytes, c.bytes)).toBe(true);
    // Only the last event can be taken back.
    enc.discard(a);
    expect(adjacent(c.bytes, enc.encode(input()).bytes)).toBe(true);
    expect(JSON.parse(dec.decode(a.bytes)).event_data).toEqual({});
  });

  test("a too-large event is refused before it is written (no 3x buffer for it), or taken back when its bytes tell", () => {
    const enc = new EventEncoder("c", "s.c", 1000);
    const a = enc.encode(input());
    let error: unknown;
    try {
      enc.encode(input({ pad: "x".repeat(20_000_000) }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as InvalidEventError).message).toMatch(/is at least 200\d{5} bytes, over the 1000-byte limit/);
    // 400 three-byte characters: under the limit in UTF-16 units, over it in bytes.
    expect(() => enc.encode(input({ pad: "€".repeat(400) }))).toThrow(/is 1\d{3} bytes, over the 1000-byte limit/);
    const b = enc.encode(input());
    expect(adjacent(a.bytes, b.bytes)).toBe(true);
  });

  test("a collector's toJSON that emits on the same encoder cannot interleave with the event being written", () => {
    const enc = new EventEncoder("c", "s.c", 1 << 20);
    let inner: Uint8Array | undefined;
    const outer = enc.encode(input({ v: { toJSON: () => ((inner = enc.encode(input({ inner: true })).bytes), "outer") } }));
    expect(JSON.parse(dec.decode(outer.bytes)).event_data).toEqual({ v: "outer" });
    expect(JSON.parse(dec.decode(inner!)).event_data).toEqual({ inner: true });
  });
});
