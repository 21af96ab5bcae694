// A kubelet stand-in for the collector tests: HTTPS with the test PKI's
// server certificate, answers 401 unless the bearer token matches, serves
// /pods and /stats/summary from the recorded fixtures unless a test says
// otherwise, and records every request.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { testPki } from "../../helpers/tls.ts";

const TESTDATA = join(import.meta.dir, "testdata");
export const PODS_JSON = readFileSync(join(TESTDATA, "pods.json"), "utf8");
export const STATS_JSON = readFileSync(join(TESTDATA, "stats_summary.json"), "utf8");

export interface SeenRequest {
  readonly path: string;
  readonly authorization: string | null;
}

/** What a path answers: a body (status 200) or a full Response. */
export type Answer = string | (() => Response);

export interface FakeKubelet {
  readonly url: string;
  /** the tokens the server accepts (during a rotation, old and new) */
  readonly tokens: Set<string>;
  readonly requests: SeenRequest[];
  /** answers by path; /pods and /stats/summary start as the fixtures */
  readonly answers: Map<string, Answer>;
  stop(): void;
}

export function startFakeKubelet(token: string): FakeKubelet {
  const pki = testPki();
  const requests: SeenRequest[] = [];
  const answers = new Map<string, Answer>([
    ["/pods", PODS_JSON],
    ["/stats/summary", STATS_JSON],
  ]);
  const fake = {
    url: "",
    tokens: new Set([token]),
    requests,
    answers,
    stop: () => server.stop(true),
  };
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(pki.serverCert, "utf8"), key: readFileSync(pki.serverKey, "utf8") },
    fetch(req) {
      const path = new URL(req.url).pathname;
      const authorization = req.headers.get("authorization");
      requests.push({ path, authorization });
      if (!authorization?.startsWith("Bearer ") || !fake.tokens.has(authorization.slice(7))) return new Response("Unauthorized", { status: 401 });
      const answer = answers.get(path);
      if (answer === undefined) return new Response("404 page not found", { status: 404 });
      return typeof answer === "string" ? new Response(answer, { headers: { "content-type": "application/json" } }) : answer();
    },
  });
  fake.url = `https://127.0.0.1:${server.port}`;
  return fake;
}

/** A token file in a fresh directory, and a way to rotate it. */
export function tokenFile(token: string): { path: string; write(token: string): void } {
  const path = join(makeTempDir("kubelet-token"), "token");
  writeFileSync(path, `${token}\n`);
  return { path, write: (next) => writeFileSync(path, `${next}\n`) };
}

