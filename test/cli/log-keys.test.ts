// Every log line the agent writes is a JSON object with each key once
// (pino writes a child logger's bindings and a call's fields side by side,
// so a field passed again where it is already bound appears twice).
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { duplicateKeys } from "../helpers/json-keys.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { runAgent, writeConfig } from "../helpers/agent.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { testPki } from "../helpers/tls.ts";
import { OOM_6_18 } from "../collectors/kernel/helpers.ts";
import { startFakeKubelet, tokenFile } from "../collectors/kubelet/fake-kubelet.ts";
import { listOf, startFakeApiServer, watchObject } from "../collectors/kubeapi/fake-apiserver.ts";
import { startResponder } from "../collectors/dns/responder.ts";

afterAll(stopAllNatsServers);

test("the duplicate-key scanner finds a key twice at any depth, and only then", () => {
  expect(duplicateKeys('{"a":1,"b":{"c":[1,{"d":2,"d":3}],"e":"x\\"y"},"a":2}')).toEqual(["b.c[1].d", "a"]);
  expect(duplicateKeys('{"a":{"a":1},"b":[{"a":1},{"a":2}],"s":"{\\"a\\":1,\\"a\\":2}"}')).toEqual([]);
  expect(() => duplicateKeys('{"a":1')).toThrow(SyntaxError);
});

test("a --once run with every collector writes no log line with a key twice", async () => {
  const nats = await startNatsServer();
  const token = "log-keys-token";
  const kubelet = startFakeKubelet(token);
  const apiServer = startFakeApiServer({ token });
  apiServer.lists.pods.push(listOf("PodList", [0, 1].map(watchObject), "100"));
  apiServer.lists.events.push(500); // the events source degrades: a warning
  // One name answers, one never does (a warning), one is refused (NXDOMAIN).
  const dns = await startResponder("127.0.0.1", (q) => (q.name.startsWith("ok.") ? { addresses: ["10.0.0.1"] } : q.name.startsWith("gone.") ? { rcode: 3 } : { silent: true }));
  const tokens = tokenFile(token);
  // A recorded kernel log with a record that does not parse: a warning.
  const kmsg = join(makeTempDir("log-keys"), "kmsg");
  writeFileSync(kmsg, `${readFileSync(OOM_6_18, "utf8")}not a kmsg record\n`);
  const ca = testPki().caFile;
  try {
    const config = writeConfig(`
nats: { url: "${nats.url}", mode: jetstream }
orchestrator: { once_timeout: 20s }
collectors:
  synthetic: { enabled: true, config: { count: 5 } }
  kernel: { enabled: true, config: { kmsg_path: ${kmsg}, replay: true } }
  process: { enabled: true }
  network: { enabled: true }
  memory: { enabled: true }
  dns:
    enabled: true
    config: { names: [ok.test., silent.test., gone.test.], servers: ["127.0.0.1:${dns.port}"], timeout: 200ms }
  kubelet:
    enabled: true
    config: { address: "${kubelet.url}", token_file: ${tokens.path}, insecure: true } # insecure: a warning
  kubeapi:
    enabled: true
    config: { api_server: "${apiServer.url}", token_file: ${tokens.path}, ca_file: ${ca}, node_name: node-1 }
`);
    const run = await runAgent(["run", "--config", config, "--once", "--log-level", "debug"], { env: { NODE_NAME: "node-1" } });
    const lines = `${run.stdout}\n${run.stderr}`.split("\n").filter((l) => l.trim() !== "");
    const collectors = new Set<string>();
    const duplicates: string[] = [];
    for (const line of lines) {
      expect(line.startsWith("{")).toBe(true);
      for (const key of duplicateKeys(line)) duplicates.push(`${key} in ${line}`);
      const { collector } = JSON.parse(line) as { collector?: string };
      if (collector) collectors.add(collector);
    }
    expect(duplicates).toEqual([]);
    // The run went through: every collector started and finished its round, and lines of the
    // kinds that used to repeat a key were among those scanned.
    expect(run.code).toBe(0);
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.find((r) => Array.isArray(r.collectors))?.collectors).toEqual(["dns", "kernel", "kubeapi", "kubelet", "memory", "network", "process", "synthetic"]);
    expect(records.at(-1)?.failed_collectors).toEqual([]);
    for (const name of ["kernel", "kubeapi", "kubelet"]) expect([...collectors]).toContain(name);
    expect(records.some((r) => r.component === "publisher")).toBe(true);
  } finally {
    kubelet.stop();
    apiServer.stop();
    dns.close();
  }
});
