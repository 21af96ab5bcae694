// An in-memory Publisher for orchestrator unit tests (the NATS publishers
// themselves are tested against real nats-server processes).
import type { QueuedEvent } from "../../src/event/event.ts";
import { DELIVERED, outcome, type Publisher, type PublisherStatus, type PublishOutcome } from "../../src/publish/publisher.ts";

export class MemoryPublisher implements Publisher {
  readonly events: QueuedEvent[] = [];
  /** per-batch delay, to make the queue fill up */
  delayMs = 0;
  /** when true, publish holds every batch until the deadline signal aborts */
  stalled = false;
  /** while set, publish holds every batch until it resolves (acknowledgements a test releases when it wants) or the signal aborts (undelivered) */
  gate: Promise<void> | undefined;
  startError: Error | undefined;
  #closed = false;
  #connected = true;
  readonly #listeners = new Set<() => void>();

  get closed(): boolean {
    return this.#closed;
  }

  set closed(closed: boolean) {
    if (closed === this.#closed) return;
    this.#closed = closed;
    this.#changed();
  }

  get connected(): boolean {
    return this.#connected;
  }

  set connected(connected: boolean) {
    if (connected === this.#connected) return;
    this.#connected = connected;
    this.#changed();
  }

  onStatusChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  async start(): Promise<void> {
    if (this.startError) throw this.startError;
  }

  /** events whose id is listed here are rejected with reason "max_payload" */
  readonly reject = new Set<string>();
  /** events for which this returns true fail at once (as NATS errors would), undelivered */
  failing: ((e: QueuedEvent) => boolean) | undefined;
  lastError: string | undefined;
  /** publish() calls, for tests that check nothing was attempted */
  calls = 0;
  /** the size of each batch publish() was given */
  readonly batchSizes: number[] = [];
  /** the subject of every event publish() was given, delivered or not, in order */
  readonly attemptedSubjects: string[] = [];

  async publish(batch: readonly QueuedEvent[], signal: AbortSignal): Promise<PublishOutcome> {
    this.calls++;
    this.batchSizes.push(batch.length);
    for (const e of batch) this.attemptedSubjects.push(e.subject);
    if (this.failing) {
      const failed = batch.filter(this.failing);
      if (failed.length > 0) {
        this.lastError = "permission: Permissions Violation for Publish";
        this.events.push(...batch.filter((e) => !failed.includes(e)));
        return outcome(failed, []);
      }
    }
    if (this.stalled) {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return outcome(batch, []);
    }
    if (this.gate) {
      const acked = await Promise.race([
        this.gate.then(() => true),
        new Promise<boolean>((resolve) => {
          if (signal.aborted) resolve(false);
          signal.addEventListener("abort", () => resolve(false), { once: true });
        }),
      ]);
      if (!acked) return outcome(batch, []);
    }
    if (this.delayMs > 0) await Bun.sleep(this.delayMs);
    const rejected = batch.filter((e) => this.reject.has(e.id)).map((event) => ({ event, reason: "max_payload" as const }));
    this.events.push(...batch.filter((e) => !this.reject.has(e.id)));
    return rejected.length ? outcome([], rejected) : DELIVERED;
  }

  status(): PublisherStatus {
    return { mode: "memory", connected: this.connected, closed: this.closed, reconnects: 0, lastError: this.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  decoded(): Array<Record<string, any>> {
    const dec = new TextDecoder();
    return this.events.map((e) => JSON.parse(dec.decode(e.bytes)));
  }
}
