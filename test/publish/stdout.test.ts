// --dry-run publisher: one NDJSON line per event, one write per batch.
import { expect, test } from "bun:test";
import { StdoutPublisher, type LineSink } from "../../src/publish/stdout.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { DELIVERED } from "../../src/publish/publisher.ts";
import { captureLog, delivered, makeEvents, natsConfig, never } from "./fixtures.ts";

function sink(fail?: Error): LineSink & { chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write(chunk, callback) {
      chunks.push(chunk);
      queueMicrotask(() => callback(fail ?? null));
      return true;
    },
  };
}

test("stdout: writes each batch as valid NDJSON in one write", async () => {
  const out = sink();
  const publisher = new StdoutPublisher(out);
  await publisher.start();
  const events = makeEvents(25);
  const first = events.slice(0, 20);
  const second = events.slice(20);
  expect(delivered(first, await publisher.publish(first, never()))).toBe(20);
  expect(await publisher.publish(second, never())).toBe(DELIVERED);
  expect(out.chunks.length).toBe(2);
  const text = out.chunks.map((c) => new TextDecoder().decode(c)).join("");
  expect(text.endsWith("\n")).toBe(true);
  const lines = text.split("\n").slice(0, -1);
  expect(lines.length).toBe(25);
  expect(lines.map((line) => (JSON.parse(line) as { event_id: string }).event_id)).toEqual(events.map((e) => e.id));
  expect(publisher.status()).toEqual({ mode: "stdout", connected: true, closed: false, reconnects: 0, lastError: undefined });
  await publisher.close();
});

test("stdout: an empty or aborted batch writes nothing; a failed write leaves the batch undelivered and shows in status", async () => {
  const out = sink();
  const publisher = new StdoutPublisher(out);
  const aborted = new AbortController();
  aborted.abort();
  expect(await publisher.publish([], never())).toBe(DELIVERED);
  const skipped = makeEvents(3);
  const abortedResult = await publisher.publish(skipped, aborted.signal);
  expect(delivered(skipped, abortedResult)).toBe(0);
  expect(abortedResult.undelivered).toEqual(skipped);
  expect(abortedResult.rejected).toEqual([]);
  expect(out.chunks.length).toBe(0);

  const broken = new StdoutPublisher(sink(new Error("EPIPE: broken pipe")));
  const lost = makeEvents(3);
  const brokenResult = await broken.publish(lost, never());
  expect(delivered(lost, brokenResult)).toBe(0);
  expect(brokenResult.undelivered).toEqual(lost);
  expect(brokenResult.rejected).toEqual([]);
  expect(broken.status().lastError).toBe("EPIPE: broken pipe");
});

test("stdout: defaults to process.stdout", async () => {
  const proc = Bun.spawn(
    ["node_modules/.bin/bun", "-e", `
      import { StdoutPublisher } from "./src/publish/stdout.ts";
      const p = new StdoutPublisher();
      const e = (id) => ({ subject: "tapio.events.x", id, collector: "x", bytes: new TextEncoder().encode(JSON.stringify({ event_id: id })) });
      await p.publish([e("a"), e("b")], new AbortController().signal);
    `],
    { cwd: `${import.meta.dir}/../..`, stdout: "pipe" },
  );
  expect(await new Response(proc.stdout).text()).toBe('{"event_id":"a"}\n{"event_id":"b"}\n');
  expect(await proc.exited).toBe(0);
});

test("createPublisher with dryRun builds the stdout publisher without touching NATS", () => {
  const publisher = createPublisher(natsConfig("nats://127.0.0.1:1"), { log: captureLog().log, dryRun: true });
  expect(publisher).toBeInstanceOf(StdoutPublisher);
  expect(publisher.status().mode).toBe("stdout");
});
