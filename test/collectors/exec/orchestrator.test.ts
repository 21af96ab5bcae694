// The exec collector under a real orchestrator (in-memory publisher): the
// restart backoff of a crashing program, pipe backpressure from a full queue,
// and its program stopped by a reload and by shutdown.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { builtinRegistry } from "../../../src/collectors/index.ts";
import { KILL_GRACE_MS } from "../../../src/collectors/exec/program.ts";
import type { QueuedEvent } from "../../../src/event/event.ts";
import { Orchestrator } from "../../../src/orchestrator/orchestrator.ts";
import { outcome, type Publisher, type PublishOutcome } from "../../../src/publish/publisher.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { configFrom } from "../../helpers/config.ts";
import { MemoryPublisher } from "../../helpers/memory-publisher.ts";
import { silentLogger } from "../../helpers/silent-logger.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { capturingLogger, exists, pidsIn, program, running } from "./helpers.ts";

const running_: Orchestrator[] = [];
afterEach(async () => {
  await Promise.all(running_.splice(0).map((o) => o.stop()));
});

function start(yaml: string, publisher: Publisher = new MemoryPublisher(), log: Logger = silentLogger()) {
  const registry = builtinRegistry();
  const config = configFrom(yaml, registry);
  const orch = new Orchestrator({ config, registry, publisher, log });
  running_.push(orch);
  orch.start();
  return { orch, registry, config };
}

const BASE = "nats: { mode: core }\norchestrator: { restart_backoff: { initial: 50ms, max: 200ms }, shutdown_timeout: 2s }\n";

/** A publisher that holds every batch until `open()`. */
class GatedPublisher extends MemoryPublisher {
  #gate = Promise.withResolvers<void>();
  open(): void {
    this.#gate.resolve();
  }
  override async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    await Promise.race([this.#gate.promise, new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }))]);
    if (signal.aborted) return outcome(batch, []);
    return super.publish(batch, signal);
  }
}

describe("exec in the orchestrator", () => {
  test("a crashing stream program is restarted with the collector backoff; health says failed and why", async () => {
    const codeFile = join(makeTempDir("exec-crash"), "code");
    await Bun.write(codeFile, "3");
    const { orch } = start(`${BASE}collectors:\n  exec:\n    config: { mode: stream, command: ${JSON.stringify(program("exit-from", codeFile))} }\n`);
    const health = () => orch.health.collector("exec");
    await waitFor(() => health().restarts >= 3, "three restarts", 10_000);
    expect(health().lastError).toMatch(/ exited with code 3; its last stderr line: exiting with 3$/);
    // each run's event went out before it crashed
    expect(health().accepted).toBeGreaterThanOrEqual(3);
  });

  test("backpressure: with the queue full the agent stops reading, the pipe fills and the program blocks", async () => {
    const dir = makeTempDir("exec-flood");
    const countFile = join(dir, "written");
    const pidFile = join(dir, "pids");
    const publisher = new GatedPublisher();
    const { orch } = start(
      `nats: { mode: core }\norchestrator: { workers: 1, batch_size: 4, buffer: { max_events: 16 }, shutdown_timeout: 5s }\n` +
        `collectors:\n  exec:\n    config: { mode: stream, command: ${JSON.stringify(program("flood", countFile))}, env: { PID_FILE: ${pidFile} } }\n`,
      publisher,
    );
    const written = () => {
      try {
        return Number(readFileSync(countFile, "utf8"));
      } catch {
        return 0;
      }
    };
    const rssBefore = process.memoryUsage().rss;
    // blocked: the queue is full and the count stops growing (the same for 500 ms of checks)
    let last = -1;
    let since = performance.now();
    await waitFor(
      () => {
        const now = written();
        if (now !== last || now === 0) {
          last = now;
          since = performance.now();
        }
        return orch.queue.length === 16 && performance.now() - since > 500;
      },
      "the program to block",
      15_000,
    );
    const blockedAt = written();
    // Beyond the queue (16) and the batch held (4), what the program wrote sits in the kernel's
    // pipe (64 KiB), Bun's read buffer and the chunk in hand (each up to a few hundred KiB,
    // measured): under 1 MiB of 1 KB lines, where reading on would take them all.
    expect(blockedAt - orch.health.collector("exec").accepted).toBeLessThan(1024);
    expect(orch.queue.length).toBe(16);
    const [pid] = pidsIn(pidFile);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    expect(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)).toBe("S");
    // in write(2): x86-64 syscall 1, arm64 64
    const WRITE = { x64: "1", arm64: "64" }[process.arch as "x64" | "arm64"];
    if (WRITE) expect(readFileSync(`/proc/${pid}/syscall`, "utf8").split(" ")[0]).toBe(WRITE);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);

    // the queue drains: the program writes again, and every line it wrote is an event
    publisher.open();
    await waitFor(() => written() > blockedAt + 1000, "the program to write again", 15_000);
    const report = await orch.stop();
    expect(exists(pid!)).toBe(false);
    const health = orch.health.collector("exec");
    expect(health.droppedTotal).toBe(0);
    expect(health.parseErrors.size).toBe(0);
    expect(report.lost + report.discarded).toBe(0);
    // a line cut by the SIGTERM is no event; every whole one is
    expect(health.accepted).toBeGreaterThanOrEqual(blockedAt + 1000);
    expect(publisher.events.length).toBe(health.accepted);
  }, 40_000);

  test("a reload that removes the instance stops its program; none is left", async () => {
    const pidFile = join(makeTempDir("exec-reload"), "pids");
    const collectors = `collectors:\n  exec:\n    config: { mode: stream, command: ${JSON.stringify(program("tick", "0", "50"))}, env: { PID_FILE: ${pidFile} } }\n`;
    const { orch, registry } = start(`${BASE}${collectors}`);
    await waitFor(() => pidsIn(pidFile).length === 1, "the program");
    const [pid] = pidsIn(pidFile);
    const result = await orch.reconfigure(configFrom(`${BASE}collectors:\n  synthetic: { config: { rate: 1 } }\n`, registry), () => new MemoryPublisher());
    expect(result.stopped).toEqual(["exec"]);
    expect(exists(pid!)).toBe(false);
  });

  test(`shutdown waits out a program that ignores SIGTERM (SIGKILL after ${KILL_GRACE_MS / 1000} s) instead of abandoning it`, async () => {
    const pidFile = join(makeTempDir("exec-stop"), "pids");
    const { log, lines } = capturingLogger();
    const { orch } = start(`${BASE}collectors:\n  exec:\n    config: { mode: stream, command: ${JSON.stringify(program("hang", "ignore-term"))}, env: { PID_FILE: ${pidFile} } }\n`, new MemoryPublisher(), log);
    await waitFor(() => orch.health.collector("exec").accepted === 1, "its event");
    const [pid] = pidsIn(pidFile);
    const t0 = performance.now();
    await orch.stop();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(KILL_GRACE_MS - 50);
    expect(exists(pid!)).toBe(false);
    expect(running(pid!)).toBe(false);
    expect(lines.filter((l) => String(l.msg).includes("abandoning"))).toEqual([]);
    expect(orch.health.collector("exec").state).toBe("stopped");
  }, 20_000);
});
