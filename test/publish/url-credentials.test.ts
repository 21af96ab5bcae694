// Credentials in nats.url reach the server: the agent, run with
// nats://user:password@host (percent-encoded) or nats://token@host,
// authenticates as that user, which the server's own connection list shows.
import { afterAll, expect, test } from "bun:test";
import { logLines, runAgent, writeConfig } from "../helpers/agent.ts";
import { freePort, startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";

afterAll(stopAllNatsServers);

const PASSWORD = "p@ss:w/rd%-not-to-leak";
const TOKEN = "t0ken/with@odd:chars";

/** The users of the server's closed client connections named `name` (monitoring /connz). */
async function closedConnectionUsers(monitor: string, name: string): Promise<string[]> {
  const doc = (await (await fetch(`${monitor}/connz?state=closed&auth=true`)).json()) as { connections: Array<{ name?: string; authorized_user?: string }> };
  return doc.connections.filter((c) => c.name === name).map((c) => c.authorized_user ?? "");
}

async function runOnce(url: string): Promise<ReturnType<typeof logLines>> {
  const file = writeConfig(`
nats: { url: "${url}", name: url-credentials-test, stream: { name: URLCREDS } }
collectors:
  synthetic: { config: { count: 5 } }
`);
  const r = await runAgent(["--once", "-c", file]);
  expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  expect(r.stdout + r.stderr).not.toContain(TOKEN);
  expect(r.stdout + r.stderr).not.toContain(encodeURIComponent(PASSWORD));
  expect(r.code).toBe(0);
  return logLines(r.stdout);
}

test("nats://user:password@host: the server sees the user; the password is percent-decoded", async () => {
  const monitorPort = await freePort();
  const server = await startNatsServer({
    config: `http: "127.0.0.1:${monitorPort}"\nauthorization { users: [ { user: tapio, password: "${PASSWORD}" }, { user: other, password: other } ] }`,
  });
  const lines = await runOnce(`nats://tapio:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}`);
  expect(lines.find((l) => l.msg.startsWith("shutdown complete"))).toMatchObject({ published: 5 });
  expect(await closedConnectionUsers(`http://127.0.0.1:${monitorPort}`, "url-credentials-test")).toEqual(["tapio"]);
});

test("nats://token@host: the token, percent-decoded, is what the server checks", async () => {
  const server = await startNatsServer({ config: `authorization { token: "${TOKEN}" }` });
  const lines = await runOnce(`nats://${encodeURIComponent(TOKEN)}@127.0.0.1:${server.port}`);
  expect(lines.find((l) => l.msg.startsWith("shutdown complete"))).toMatchObject({ published: 5 });
});
