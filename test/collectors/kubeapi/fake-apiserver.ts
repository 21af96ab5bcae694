// An API server stand-in for the kubeapi collector tests: HTTP or HTTPS,
// checks the bearer token, answers lists and watches from per-resource
// scripts, writes watch streams in irregular chunks (lines cut anywhere),
// and records every request.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import { testPki } from "../../helpers/tls.ts";

const TESTDATA = join(import.meta.dir, "testdata");
/** The 23 lines of the recorded watch stream, without their newlines. */
export const WATCH_LINES = readFileSync(join(TESTDATA, "pods-node-watch.ndjson"), "utf8").trimEnd().split("\n");

export type Json = Record<string, any>;

/** One watch request's answer: lines streamed then closed (or held open), a live feed, or a plain HTTP status. */
export type WatchScript =
  | { readonly lines: readonly string[]; readonly then: "close" | "hold" }
  /** each line the feed yields (for the watch's query) is written whole as it comes; the watch ends when the feed does */
  | { readonly follow: (query: URLSearchParams, signal: AbortSignal) => AsyncIterable<string> }
  | { readonly status: number; readonly body?: string };

export interface SeenRequest {
  readonly resource: "pods" | "events";
  readonly watch: boolean;
  readonly query: URLSearchParams;
  readonly authorization: string | null;
}

export interface FakeApiServer {
  readonly url: string;
  readonly requests: SeenRequest[];
  /** the answers to successive lists of a resource (the last repeats); a number is an HTTP status */
  readonly lists: Record<"pods" | "events", Array<Json | number>>;
  /** the answers to successive watches (the last repeats) */
  readonly watches: Record<"pods" | "events", WatchScript[]>;
  /** the sizes of the chunks written so far, for tests to check the cutting */
  readonly chunks: number[];
  watchesOf(resource: "pods" | "events"): SeenRequest[];
  stop(): void;
}

/** A seeded PRNG (mulberry32), so a failing chunking can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `bytes` cut into pieces of 1 to `max` bytes. */
export function cut(bytes: Uint8Array, random: () => number, max = 3000): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + Math.floor(random() * Math.min(max, bytes.length - at));
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

export function startFakeApiServer(opts: { token: string; tls?: boolean; seed?: number }): FakeApiServer {
  const random = prng(opts.seed ?? 1);
  const requests: SeenRequest[] = [];
  const counts = { list: { pods: 0, events: 0 }, watch: { pods: 0, events: 0 } };
  const chunks: number[] = [];
  const pki = opts.tls ? testPki() : undefined;
  const utf8 = new TextEncoder();

  const fake: FakeApiServer = {
    url: "",
    requests,
    lists: { pods: [], events: [] },
    watches: { pods: [], events: [] },
    chunks,
    watchesOf: (resource) => requests.filter((r) => r.resource === resource && r.watch),
    stop: () => server.stop(true),
  };

  function stream(lines: readonly string[], then: "close" | "hold", signal: AbortSignal): Response {
    const text = lines.map((l) => `${l}\n`).join("");
    const pieces = cut(utf8.encode(text), random);
    let i = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          const piece = pieces[i++];
          if (piece) {
            chunks.push(piece.byteLength);
            controller.enqueue(piece);
            // a pause makes each piece its own write on the socket
            await Bun.sleep(1);
            return;
          }
          if (then === "close") return controller.close();
          // held open, as a live watch is, until the client goes away
          await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
          controller.close();
        },
      }),
      { headers: { "content-type": "application/json" } },
    );
  }

  function follow(feed: AsyncIterable<string>): Response {
    const lines = feed[Symbol.asyncIterator]();
    return new Response(
      new ReadableStream({
        async pull(controller) {
          const next = await lines.next();
          if (next.done) return controller.close();
          controller.enqueue(utf8.encode(`${next.value}\n`));
        },
        async cancel() {
          await lines.return?.();
        },
      }),
      { headers: { "content-type": "application/json" } },
    );
  }

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    ...(pki ? { tls: { cert: readFileSync(pki.serverCert, "utf8"), key: readFileSync(pki.serverKey, "utf8") } } : {}),
    fetch(req) {
      const url = new URL(req.url);
      const resource = url.pathname === "/api/v1/pods" ? "pods" : url.pathname === "/api/v1/events" ? "events" : undefined;
      const watch = url.searchParams.get("watch") === "1";
      const authorization = req.headers.get("authorization");
      if (!resource) return new Response("404 page not found", { status: 404 });
      requests.push({ resource, watch, query: url.searchParams, authorization });
      if (authorization !== `Bearer ${opts.token}`) return status(401, "Unauthorized");
      if (!watch) {
        const answers = fake.lists[resource];
        const answer = answers[Math.min(counts.list[resource]++, answers.length - 1)];
        if (answer === undefined) return status(500, "no list scripted");
        return typeof answer === "number" ? status(answer, "scripted failure") : Response.json(answer);
      }
      const scripts = fake.watches[resource];
      const script = scripts[Math.min(counts.watch[resource]++, scripts.length - 1)];
      if (script === undefined) return status(500, "no watch scripted");
      if ("status" in script) return new Response(script.body ?? "", { status: script.status });
      if ("follow" in script) return follow(script.follow(url.searchParams, req.signal));
      return stream(script.lines, script.then, req.signal);
    },
  });
  (fake as { url: string }).url = `${pki ? "https" : "http"}://127.0.0.1:${server.port}`;
  return fake;
}

function status(code: number, message: string): Response {
  return Response.json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, code }, { status: code });
}

/** A PodList / EventList as the API server sends it. */
export function listOf(kind: "PodList" | "EventList", items: Json[], resourceVersion: string): Json {
  return { kind, apiVersion: "v1", metadata: { resourceVersion }, items };
}

/** The object of line `i` of the recorded watch stream. */
export function watchObject(i: number): Json {
  return JSON.parse(WATCH_LINES[i]!).object;
}
