// One run of the compiled agent for bench:detect: core NATS (latency needs no
// acks), no spool (nothing to resume between runs), HTTP on a free loopback
// port; ready once NATS is connected and every collector runs; and how each
// collector says it reads its sources (/status collectors[].sources).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, type LiveAgent } from "../lib/procs.ts";

export type SourceModes = Record<string, { mode: "event" | "poll"; reason?: string }>;

export interface CollectorStatus {
  name: string;
  state: string;
  healthy: boolean;
  last_error?: string;
  sources?: SourceModes;
}

export interface AgentRun {
  readonly agent: LiveAgent;
  readonly http: string;
  /** the subject prefix this run publishes under */
  readonly subject: string;
  status(): Promise<CollectorStatus[]>;
}

export function agentConfig(natsUrl: string, subject: string, collectors: string): string {
  return (
    `nats: { url: "${natsUrl}", mode: core, subject: ${subject} }\n` +
    `spool: { enabled: false }\n` +
    `http: { enabled: true, listen: "127.0.0.1:0" }\n` +
    `collectors:${collectors.trim() === "" ? " {}" : `\n${collectors}`}\n`
  );
}

async function statusOf(http: string): Promise<CollectorStatus[]> {
  const doc = (await (await fetch(`${http}/status`)).json()) as { collectors: CollectorStatus[] };
  return doc.collectors;
}

/** Polls `check` every 20 ms until it returns true; throws `what` after `timeoutMs`. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Starts the agent and waits until it is connected and its collectors run. */
export async function startDetectAgent(binary: string, work: string, name: string, natsUrl: string, subject: string, collectors: string): Promise<AgentRun> {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, agentConfig(natsUrl, subject, collectors));
  const agent = startAgent(binary, file);
  try {
    const http = await agent.http;
    await until(async () => (await fetch(`${http}/readyz`)).status === 200, `${name}: /readyz`, 20_000);
    await until(async () => (await statusOf(http)).every((c) => c.healthy), `${name}: every collector running and healthy`, 20_000);
    return { agent, http, subject, status: () => statusOf(http) };
  } catch (err) {
    await agent.stop("SIGKILL");
    throw new Error(`${(err as Error).message}\n${agent.log().slice(-3000)}`);
  }
}

/** "kernel: kmsg=event, vmstat=poll (reason)" for the collectors named; a collector that reports no modes polls (a build before issue 17). */
export function describeModes(status: CollectorStatus[], names: string[]): string {
  return names
    .map((name) => {
      const c = status.find((s) => s.name === name);
      const sources = Object.entries(c?.sources ?? {});
      if (sources.length === 0) return `${name}: poll (no modes reported)`;
      return `${name}: ${sources.map(([s, m]) => `${s}=${m.mode}${m.reason ? ` (${m.reason})` : ""}`).join(", ")}`;
    })
    .join("; ");
}

/**
 * How `collector` reads the source a case measures, by its own report: the
 * sources whose name matches `hint` (all of them when none does; the names
 * are the collectors' to choose). "event" only when each of those is
 * event-driven; a collector that reports nothing polls.
 */
export function modeOf(status: CollectorStatus[], collector: string, hint: RegExp): "event" | "poll" {
  const sources = Object.entries(status.find((s) => s.name === collector)?.sources ?? {});
  const relevant = sources.some(([s]) => hint.test(s)) ? sources.filter(([s]) => hint.test(s)) : sources;
  return relevant.length > 0 && relevant.every(([, m]) => m.mode === "event") ? "event" : "poll";
}
