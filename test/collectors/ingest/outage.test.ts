// ?wait=published across a NATS outage: senders keep posting while the
// nats-server is SIGKILLed and restarted on the same store; every request is
// answered 202 (published, or spooled and replayed later), and every event
// is in the stream exactly once.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { startNatsServer, stopAllNatsServers } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { exitCode, expectAccounting, expectNoDuplicates, expectSeqs, killAllAgents, readStatus, readStream, statusUrl, streamCount } from "../../fault/harness.ts";
import { input, startIngestAgent, type IngestAgent } from "./helpers.ts";

afterEach(killAllAgents);
afterAll(stopAllNatsServers);

const SENDERS = 4;
const BATCH = 20;

/** Senders posting batches of BATCH events (?wait=published) until `stop`; each answer's status is kept with the batch's seqs. */
function send(api: IngestAgent, stop: () => boolean) {
  let next = 0;
  const answers: Array<{ status: number; seqs: number[]; body: unknown }> = [];
  const loops = Array.from({ length: SENDERS }, async (_, sender) => {
    while (!stop()) {
      const seqs = Array.from({ length: BATCH }, () => next++);
      const answer = await api.post(seqs.map((seq) => input(`sender-${sender}`, seq)), { ndjson: true, wait: true });
      answers.push({ status: answer.status, seqs, body: answer.body });
    }
  });
  return { answers, done: Promise.all(loops), sent: () => next };
}

describe("ingest ?wait=published across a NATS outage", () => {
  for (const buffer of ["memory", "disk"] as const) {
    test(`${buffer} mode: the server SIGKILLed and restarted while senders post: every request 202, every event in the stream once`, async () => {
      const nats = await startNatsServer({ jetstream: true });
      const stream = `OUTAGE_${buffer.toUpperCase()}`;
      const api = await startIngestAgent({ nats: nats.url, stream, orchestrator: `buffer: { type: ${buffer} }` });
      let stopping = false;
      const senders = send(api, () => stopping);
      await waitFor(() => senders.answers.length >= 20, "20 batches answered before the outage", 15_000);
      await nats.kill("SIGKILL");
      const during = senders.answers.length;
      // past spool.spill_after (2 s): batches sent now are spooled, and answered 202 once spooled
      await waitFor(() => senders.answers.length >= during + 20, "20 batches answered during the outage", 20_000);
      await nats.restart();
      const after = senders.answers.length;
      await waitFor(() => senders.answers.length >= after + 20, "20 batches answered after the restart", 20_000);
      stopping = true;
      await senders.done;

      const total = senders.sent();
      expect(senders.answers.filter((a) => a.status !== 202).slice(0, 3)).toEqual([]);
      expect(senders.answers.reduce((n, a) => n + a.seqs.length, 0)).toBe(total);
      await waitFor(async () => ((await streamCount(nats.url, stream)) ?? 0) >= total, `all ${total} events in the stream`, 30_000, 100);
      const messages = await readStream(nats.url, stream);
      expectNoDuplicates(messages);
      expectSeqs(messages, total);
      expect(messages.length).toBe(total);
      // some went through the spool while the server was away
      // some went through the spool while the server was away (in disk mode, all)
      const status = await readStatus(await statusUrl(api.agent));
      expect(status!.spooled).toBeGreaterThan(0);
      if (buffer === "disk") expect(status!.spooled).toBe(total);

      api.agent.kill("SIGTERM");
      expect(await exitCode(api.agent, 40_000)).toBe(0);
      expectAccounting(api.agent.final(), { accepted: total, published: total, in_spool: 0, lost: 0, discarded: 0 });
    }, 120_000);
  }
});
