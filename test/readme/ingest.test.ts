// The README's "The ingest API": its config block is the collector's
// defaults, its curl examples run as written (with the socket and token file
// moved to a temp dir) and print what the comments say, its answer table
// lists the statuses the API gives, and the emit examples work.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { ingestConfigSchema } from "../../src/collectors/ingest/schema.ts";
import { REPO } from "../helpers/agent.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { readStream } from "../publish/fixtures.ts";
import { killAllAgents } from "../fault/harness.ts";
import { startIngestAgent } from "../collectors/ingest/helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

const readme = readFileSync(join(REPO, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("### The ingest API"), readme.indexOf("### Routing"));
const blocks = (lang: string) => [...section.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!);
const SOCKET = "/run/tapio-collectors/ingest.sock";
const TOKEN = "/etc/tapio/ingest-token";

describe("README: the ingest API", () => {
  test("the config block shows the collector's defaults (and a token_file)", () => {
    const shown = parse(blocks("yaml")[0]!).collectors.ingest.config;
    const { token_file, ...defaults } = v.parse(ingestConfigSchema, shown);
    expect(token_file).toBe(TOKEN);
    expect({ ...defaults, max_body: defaults.max_body, wait_timeout: String(defaults.wait_timeout) }).toEqual({
      ...v.parse(ingestConfigSchema, undefined),
      wait_timeout: String(v.parse(ingestConfigSchema, undefined).wait_timeout),
    });
  });

  test("the answer table lists every status the API answers", () => {
    const listed = [...section.matchAll(/^\| `(\d{3})[^|]*\|/gm)].map((m) => m[1]).concat([...section.matchAll(/^\| `404`, `405`/gm)].flatMap(() => ["404", "405"]));
    const source = readFileSync(join(REPO, "src/collectors/ingest/api.ts"), "utf8");
    const given = [...new Set([...source.matchAll(/status: (\d{3})/g)].map((m) => m[1]))];
    expect([...new Set(listed)].sort()).toEqual(given.sort());
  });

  test("the curl examples, run as written, print what their comments say; emit's examples send", async () => {
    const nats = await startNatsServer({ jetstream: true });
    const dir = makeTempDir("readme-ingest");
    const socket = join(dir, "ingest.sock");
    const token = join(dir, "ingest-token");
    writeFileSync(token, "readme-token\n");
    await startIngestAgent({ nats: nats.url, stream: "README_INGEST", ingest: `listen: "unix://${socket}", token_file: "${token}"` });
    const [curls, emits] = blocks("sh");
    const script = curls!.replaceAll(SOCKET, socket).replaceAll(TOKEN, token);
    // The first example has no token: give it the header the second one shows.
    const withToken = script.replace("http://localhost/v1/events \\\n", `http://localhost/v1/events -H "Authorization: Bearer $(cat ${token})" \\\n`);
    const run = Bun.spawnSync(["sh", "-c", withToken]);
    const expected = [...curls!.matchAll(/^# (.*)$/gm)].map((m) => m[1]!);
    expect(run.stdout.toString().split("\n").filter(Boolean)).toEqual(expected);

    // emit: the one-event line as written; the pipe with `some-program` standing for a program's output
    const cli = `${process.execPath} ${join(REPO, "src/main.ts")}`;
    const emitScript = emits!
      .replaceAll("tapio-collectors emit", `${cli} emit --socket ${socket} --token-file ${token}`)
      .replace(/^some-program \|/m, `printf '%s\\n' '{"type":"some.thing"}' |`)
      .replace(/\s+#.*$/gm, "");
    const emitted = Bun.spawnSync(["sh", "-ec", emitScript]);
    expect({ code: emitted.exitCode, stderr: emitted.stderr.toString() }).toEqual({ code: 0, stderr: "" });

    const got = await readStream(nats.url, "README_INGEST");
    expect(got.map((m) => m.subject)).toEqual(["node-check", "cni", "cni", "backup", "some-program"].map((s) => `tapio.events.ingest.${s}`));
  }, 30_000);
});
