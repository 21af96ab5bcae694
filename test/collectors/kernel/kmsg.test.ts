import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { LineSplitter, MAX_RECORD_BYTES, openKmsg, parseKmsgLine, type KmsgSource } from "../../../src/collectors/kernel/kmsg.ts";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { OOM_6_18 } from "./helpers.ts";

const dir = makeTempDir("kmsg");
afterAll(() => removeTempDir(dir));

/** Everything a source has now, as text. */
function drain(source: KmsgSource): string {
  let text = "";
  for (let read = source.read(); read.kind !== "idle"; read = source.read()) if (read.kind === "data") text += read.text;
  return text;
}

describe("kmsg records", () => {
  test("the 6.18 OOM recording parses record by record: levels, sequence numbers, µs, messages as written", () => {
    const records = readFileSync(OOM_6_18, "utf8").trimEnd().split("\n").map(parseKmsgLine);
    expect(records.length).toBe(79);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 79 }, (_, i) => 337 + i));
    expect(records[0]).toEqual({ level: 4, facility: 0, seq: 337, usec: 266225924, message: "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0" });
    // Leading blanks are part of the message (the call trace is indented).
    expect(records[3]!.message).toBe(" <TASK>");
    expect(records.at(-1)!.level).toBe(3);
  });

  test("facility, extra header fields and semicolons in the message", () => {
    expect(parseKmsgLine("30,5,100,-,caller=T1;systemd[1]: a;b")).toEqual({ level: 6, facility: 3, seq: 5, usec: 100, message: "systemd[1]: a;b" });
    expect(parseKmsgLine("6,1,0,c;")).toEqual({ level: 6, facility: 0, seq: 1, usec: 0, message: "" });
  });

  test.each(["", "garbage", "6,1;no usec", "x,1,2,-;msg", " SUBSYSTEM=pci", "6,1,2,-", "2000,1,2,-;prio too large", "6,99999999999999999999,2,-;huge seq"])("%p is not a record", (line) => {
    expect(() => parseKmsgLine(line)).toThrow(Error);
  });

  test("property: any line is a record or an Error, never anything else", () => {
    const headerish = fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.string(), fc.string()).map(([p, s, u, f, m]) => `${p},${s},${u},${f};${m}`);
    fc.assert(
      fc.property(fc.oneof(fc.string(), headerish), (line) => {
        try {
          const record = parseKmsgLine(line);
          expect(line.endsWith(record.message)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("property: lines cut anywhere into chunks come out whole", () => {
    const text = readFileSync(OOM_6_18, "utf8");
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 20 }), (cuts) => {
        const splitter = new LineSplitter();
        const points = [0, ...cuts.sort((a, b) => a - b), text.length];
        const lines: string[] = [];
        for (let i = 1; i < points.length; i++) lines.push(...splitter.push(text.slice(points[i - 1], points[i])));
        lines.push(...splitter.flush());
        expect(lines).toEqual(text.trimEnd().split("\n"));
      }),
    );
  });

  test("a line without end is not kept growing: past MAX_RECORD_BYTES it is handed on once (and will not parse), the rest of it skipped", () => {
    const splitter = new LineSplitter();
    expect(splitter.push("x".repeat(MAX_RECORD_BYTES))).toEqual([]);
    const [line] = splitter.push("xx");
    expect(line!.length).toBe(MAX_RECORD_BYTES + 2);
    expect(() => parseKmsgLine(`4,1,1,-;${line}`)).toThrow(`a record longer than the kernel's ${MAX_RECORD_BYTES} bytes`);
    expect(splitter.push("x".repeat(MAX_RECORD_BYTES * 4))).toEqual([]);
    expect(splitter.push("xxx\n4,1,1,-;next\n")).toEqual(["4,1,1,-;next"]);
  });

  test("a record of the kernel's size parses; one byte more does not, also when the bytes are multi-byte characters", () => {
    const head = "4,1,1,-;";
    expect(parseKmsgLine(head + "x".repeat(MAX_RECORD_BYTES - head.length)).message).toHaveLength(MAX_RECORD_BYTES - head.length);
    expect(() => parseKmsgLine(head + "x".repeat(MAX_RECORD_BYTES - head.length + 1))).toThrow("longer than the kernel's");
    expect(() => parseKmsgLine(head + "é".repeat(MAX_RECORD_BYTES / 2))).toThrow("longer than the kernel's");
  });

  test("a last line without newline is held back until flushed", () => {
    const splitter = new LineSplitter();
    expect(splitter.push("4,1,1,-;a\n4,2,2,-;b")).toEqual(["4,1,1,-;a"]);
    expect(splitter.flush()).toEqual(["4,2,2,-;b"]);
    expect(splitter.flush()).toEqual([]);
  });
});

describe("a regular file as the kernel log", () => {
  test("from the start, or from the end (history skipped), then appended lines", () => {
    const path = join(dir, "tail.kmsg");
    writeFileSync(path, "6,1,1,-;old\n");
    const fromStart = openKmsg(path, false);
    const fromEnd = openKmsg(path, true);
    expect(fromStart.device).toBe(false);
    expect(drain(fromStart)).toBe("6,1,1,-;old\n");
    expect(drain(fromEnd)).toBe("");
    appendFileSync(path, "6,2,2,-;new\n");
    expect(drain(fromStart)).toBe("6,2,2,-;new\n");
    expect(drain(fromEnd)).toBe("6,2,2,-;new\n");
    fromStart.close();
    fromEnd.close();
  });

  test("a truncated file is read again from its start; a rotated one is followed", () => {
    const path = join(dir, "rotate.kmsg");
    writeFileSync(path, "6,1,1,-;first\n");
    const source = openKmsg(path, true);
    truncateSync(path, 0);
    // Noticed at the next read (as with tail -F, a file truncated and grown past the read position in between is not).
    expect(drain(source)).toBe("");
    appendFileSync(path, "6,2,2,-;after truncation\n");
    expect(drain(source)).toBe("6,2,2,-;after truncation\n");
    renameSync(path, `${path}.1`);
    writeFileSync(path, "6,3,3,-;new file\n");
    appendFileSync(`${path}.1`, "6,4,4,-;late line of the old file\n");
    // The old file is read to its end before the new one is followed.
    expect(drain(source)).toBe("6,4,4,-;late line of the old file\n6,3,3,-;new file\n");
    source.close();
  });

  test("a UTF-8 character cut between two writes arrives whole", () => {
    const path = join(dir, "utf8.kmsg");
    writeFileSync(path, "");
    const source = openKmsg(path, true);
    const bytes = Buffer.from("6,1,1,-;µ\n");
    appendFileSync(path, bytes.subarray(0, 9));
    const first = drain(source);
    appendFileSync(path, bytes.subarray(9));
    expect(first + drain(source)).toBe("6,1,1,-;µ\n");
    source.close();
  });

  test("a missing path or a directory cannot be opened", () => {
    expect(() => openKmsg(join(dir, "missing"), true)).toThrow("ENOENT");
    mkdirSync(join(dir, "a-dir"));
    expect(() => openKmsg(join(dir, "a-dir"), true)).toThrow("neither a character device nor a regular file");
  });
});
