// ByteArena: events encoded straight into write-once chunks, each followed
// by a newline, views that later writes never touch.
import { describe, expect, test } from "bun:test";
import { ByteArena, follows } from "../../src/event/arena.ts";

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
