// Keeps an outage from writing thousands of identical log lines: lets one
// message per key through per interval and counts the ones held back.

export class LogThrottle {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Undefined: stay quiet. A number: log now, that many were suppressed since the last line. */
  take(key: string): number | undefined {
    const now = this.now();
    const last = this.#last.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++;
      return undefined;
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    return last?.suppressed ?? 0;
  }
}
