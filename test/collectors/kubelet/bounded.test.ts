// A kubelet (or something in its place) that answers with a body without end:
// the collector reads no more than max_response_bytes, counts a parse error,
// and its memory stays bounded. Measured in a child process, by its peak RSS.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, removeTempDir } from "../../helpers/cleanup.ts";
import { testPki } from "../../helpers/tls.ts";
import { usageMeter } from "../../helpers/usage-meter.ts";
import { startFakeKubelet, tokenFile } from "./fake-kubelet.ts";

const MiB = 1024 * 1024;
const dir = makeTempDir("kubelet-bounded");
const k = startFakeKubelet("token-1");
afterAll(() => {
  k.stop();
  removeTempDir(dir);
});

/** `total` bytes of one JSON string, made as they are sent; with or without a Content-Length. */
function endlessBody(total: number, declareLength: boolean): Response {
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('"'));
      sent = 1;
    },
    pull(controller) {
      if (sent >= total) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
  return new Response(body, { headers: declareLength ? { "content-length": String(total + 63 * 1024) } : {} });
}

/** One round of the kubelet collector in a child process: what it recorded, and its peak RSS. */
async function roundInChild(config: Record<string, unknown>) {
  const script = join(dir, "round.ts");
  writeFileSync(
    script,
    `import * as v from "valibot";
     import { KubeletCollector } from ${JSON.stringify(join(import.meta.dir, "../../../src/collectors/kubelet/index.ts"))};
     import { kubeletConfigSchema } from ${JSON.stringify(join(import.meta.dir, "../../../src/collectors/kubelet/schema.ts"))};
     import { runOnce } from ${JSON.stringify(join(import.meta.dir, "../../helpers/collector-context.ts"))};
     const rec = await runOnce(new KubeletCollector(v.parse(kubeletConfigSchema, JSON.parse(process.argv[2]))));
     console.log(JSON.stringify({ parseErrors: rec.parseErrors, degraded: rec.degraded }));`,
  );
  const full = { address: k.url, token_file: tokenFile("token-1").path, ca_file: testPki().caFile, timeout: "60s", ...config };
  const started = performance.now();
  const meter = usageMeter();
  const proc = Bun.spawn([process.execPath, ...meter.preload, script, JSON.stringify(full)], { stdout: "pipe", stderr: "inherit", env: { ...process.env, ...meter.env } });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const { rssMiB } = meter.read();
  return { ...JSON.parse(out), seconds: (performance.now() - started) / 1000, rssMiB };
}

const tooLarge = (limit: number) => `the kubelet answered /pods with a body larger than max_response_bytes (${limit} bytes)`;

test("a 100 MB /pods streamed without a length, max_response_bytes 1MiB: one parse error, degraded, RSS far below the body", async () => {
  k.answers.set("/pods", () => endlessBody(100 * MiB, false));
  const round = await roundInChild({ max_response_bytes: "1MiB" });
  expect(round.parseErrors).toEqual([{ source: "/pods", detail: tooLarge(MiB) }]);
  expect(round.degraded).toEqual([`/pods: ${tooLarge(MiB)}`]);
  expect(round.rssMiB).toBeLessThan(120);
  expect(round.seconds).toBeLessThan(20);
}, 60_000);

test("a 100 MB /pods, default max_response_bytes (64 MiB): refused at 64 MiB, RSS below what the whole body took (277 MB)", async () => {
  k.answers.set("/pods", () => endlessBody(100 * MiB, false));
  const round = await roundInChild({});
  expect(round.parseErrors).toEqual([{ source: "/pods", detail: tooLarge(64 * MiB) }]);
  expect(round.rssMiB).toBeLessThan(230);
  expect(round.seconds).toBeLessThan(30);
}, 60_000);

test("a Content-Length over max_response_bytes is refused before the body is read", async () => {
  k.answers.set("/pods", () => endlessBody(100 * MiB, true));
  const round = await roundInChild({ max_response_bytes: "1MiB" });
  expect(round.parseErrors).toEqual([{ source: "/pods", detail: tooLarge(MiB) }]);
  expect(round.rssMiB).toBeLessThan(120);
}, 60_000);
