// A SIGKILL loses nothing the spool reported as written: a child process
// appends as fast as it can and reports after each append; the test kills it
// mid-stream and reopens the file.
import { expect, test } from "bun:test";
import { openSpool, spawnScript, spoolPath, tempDir } from "./fixtures.ts";
import { collectLines } from "../helpers/lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

// Event i has id String(i) and a payload derived from i; writeSync, because
// console.log output could still sit in a buffer when the kill comes.
const WRITER = `
const spool = Spool.open({ path: process.argv[2], maxBytes: 1 << 30, whenFull: "block", log: silentLogger() });
let n = 0;
while (n < 2_000_000) {
  const batch = [];
  for (let i = 0; i < 50; i++, n++) batch.push({ subject: "tapio.events.s" + (n % 3), id: String(n), bytes: new Uint8Array(100).fill(n & 0xff), collector: "c" + (n % 3) });
  if (spool.append(batch).appended !== batch.length) throw new Error("spool full");
  writeSync(1, n + "\\n");
}
`;

test("after a SIGKILL mid-append, the spool holds every reported event, in order, once", async () => {
  const path = spoolPath();
  const writer = spawnScript(tempDir(), path, WRITER);
  const out = collectLines(writer.stdout);
  await waitFor(() => Number(out.lines.at(-1) ?? 0) >= 20_000, "the writer to report 20000 events", 10_000);
  writer.kill("SIGKILL");
  expect(await writer.exited).not.toBe(0);
  expect(writer.signalCode).toBe("SIGKILL");
  await out.ended;
  const reported = Number(out.lines.at(-1));

  const spool = openSpool(path);
  const depth = spool.stats().depth;
  expect(depth).toBeGreaterThanOrEqual(reported);
  // at most the batch committed but not yet reported; whole batches only
  expect(depth).toBeLessThanOrEqual(reported + 50);
  expect(depth % 50).toBe(0);
  const rows = spool.peek(depth + 1);
  expect(rows).toHaveLength(depth);
  rows.forEach((row, n) => {
    if (row.id !== String(n)) throw new Error(`row ${n} has id ${row.id}`);
    if (row.subject !== `tapio.events.s${n % 3}` || row.collector !== `c${n % 3}`) throw new Error(`row ${n}: ${row.subject} ${row.collector}`);
    if (row.bytes.length !== 100 || row.bytes.some((b) => b !== (n & 0xff))) throw new Error(`row ${n} has other bytes`);
  });
});
