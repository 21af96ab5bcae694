// Durations in config: "250ms", "30s", "5m", "1h" (and combinations like "1m30s").
// Kept as milliseconds; printed back in the same notation.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

export class Duration {
  constructor(readonly ms: number) {}

  static parse(text: string): Duration | undefined {
    const s = text.trim();
    if (s === "0") return new Duration(0);
    if (!PATTERN.test(s)) return undefined;
    let ms = 0;
    for (const [, n, unit] of s.matchAll(PART)) ms += Number(n) * UNIT_MS[unit!]!;
    return new Duration(Math.round(ms));
  }

  /** Nanoseconds, as JetStream and the event schema count durations. */
  get nanos(): number {
    return this.ms * 1_000_000;
  }

  toString(): string {
    const ms = this.ms;
    if (ms === 0) return "0s";
    for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
      if (ms % size === 0) return `${ms / size}${unit}`;
    }
    return `${ms}ms`;
  }

  toJSON(): string {
    return this.toString();
  }
}
