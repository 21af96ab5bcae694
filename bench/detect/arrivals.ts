// What reached the NATS subscriber (subscriber-worker.ts), parsed, and waits
// for the arrival of an event that matches a predicate.
import type { ArrivalMessage } from "./subscriber-worker.ts";

export interface DetectEvent {
  type: string;
  timestamp: string;
  source?: string;
  event_data?: Record<string, any>;
  metadata?: Record<string, any>;
}

export interface Arrival {
  /** ms since the epoch, with µs digits */
  at: number;
  subject: string;
  event: DetectEvent;
}

interface Waiter {
  match: (a: Arrival) => boolean;
  resolve: (a: Arrival | undefined) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Arrivals {
  /** everything since the last clear(): a case looks back for events that came before it started waiting */
  #seen: Arrival[] = [];
  #waiters = new Set<Waiter>();
  readonly #worker: Worker;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (m: MessageEvent<ArrivalMessage>) => {
      if (!("at" in m.data)) return;
      let event: DetectEvent;
      try {
        event = JSON.parse(m.data.data);
      } catch {
        return; // not an event (nothing else publishes here)
      }
      const arrival = { at: m.data.at, subject: m.data.subject, event };
      this.#seen.push(arrival);
      for (const w of this.#waiters) {
        if (!w.match(arrival)) continue;
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(arrival);
      }
    };
  }

  /** Subscribes to `subject` (a wildcard) and resolves once the subscription is in place. */
  static async start(url: string, subject: string): Promise<Arrivals> {
    const worker = new Worker(new URL("./subscriber-worker.ts", import.meta.url).href);
    const ready = new Promise<void>((resolve, reject) => {
      worker.addEventListener("message", (m: MessageEvent) => m.data?.ready && resolve(), { once: false });
      worker.addEventListener("error", (e) => reject(new Error(`subscriber worker: ${e.message}`)));
    });
    worker.postMessage({ url, subject });
    await ready;
    return new Arrivals(worker);
  }

  clear(): void {
    this.#seen = [];
  }

  all(): readonly Arrival[] {
    return this.#seen;
  }

  /** The first arrival (already seen or still to come) that matches; undefined after `timeoutMs`. */
  waitFor(match: (a: Arrival) => boolean, timeoutMs: number): Promise<Arrival | undefined> {
    const seen = this.#seen.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const w: Waiter = { match, resolve, timer: setTimeout(() => (this.#waiters.delete(w), resolve(undefined)), timeoutMs) };
      this.#waiters.add(w);
    });
  }

  stop(): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.#waiters.clear();
    this.#worker.terminate();
  }
}

/** RFC 3339 (with up to nanoseconds) -> ms since the epoch with µs digits; Date.parse keeps only ms. */
export function epochMs(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) return Date.parse(ts);
  const frac = (m[2] ?? "").padEnd(6, "0");
  return Date.parse(`${m[1]}Z`) + Number(frac.slice(0, 6)) / 1000;
}
