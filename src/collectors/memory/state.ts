// What the collector remembers between polls, so it reports changes and
// threshold crossings rather than every reading. State is kept per scope (the
// node, or one cgroup) and dropped with its scope when the cgroup goes away,
// so it stays bounded on a node where pods come and go.

/** Fraction of a threshold a level must move back past before it counts as recovered, so a value hovering at the threshold does not flap. */
const HYSTERESIS = 0.1;

/** A level entered its problem zone (reached the threshold) or left it (recovered). */
export type Crossing = "enter" | "leave";

/** Remembers which levels are in their problem zone. */
export class Levels {
  readonly #inside = new Map<string, Set<string>>();

  /**
   * "enter" when `value` reaches `threshold` (at or above it; at or below it
   * for `low` levels such as free memory), also on the first reading:
   * pressure that is there at start is news. "leave" when it is back past the
   * threshold by the hysteresis. Otherwise undefined.
   */
  cross(scope: string, name: string, value: number, threshold: number, low = false): Crossing | undefined {
    let inside = this.#inside.get(scope);
    const was = inside?.has(name) ?? false;
    const reached = low ? value <= threshold : value >= threshold;
    const recovered = low ? value > threshold * (1 + HYSTERESIS) : value < threshold * (1 - HYSTERESIS);
    if (!was && reached) {
      if (!inside) this.#inside.set(scope, (inside = new Set()));
      inside.add(name);
      return "enter";
    }
    if (was && recovered) {
      inside!.delete(name);
      return "leave";
    }
    return undefined;
  }

  /** Whether the level is in its problem zone now. */
  inside(scope: string, name: string): boolean {
    return this.#inside.get(scope)?.has(name) ?? false;
  }

  /** Forgets the scopes `keep` rejects. */
  sweep(keep: (scope: string) => boolean): void {
    for (const scope of this.#inside.keys()) if (!keep(scope)) this.#inside.delete(scope);
  }
}

/** Remembers the last reading of monotonic counters. */
export class Counters {
  readonly #last = new Map<string, Map<string, number>>();

  /**
   * How much the counter grew since the last reading. A counter seen for the
   * first time is a baseline (undefined) unless `fromZero`: then all of it is
   * new (a cgroup created while the collector runs started at zero). A
   * counter that went down was reset (its cgroup recreated under the same
   * name) and is a new baseline.
   */
  delta(scope: string, name: string, value: number, fromZero: boolean): number | undefined {
    let last = this.#last.get(scope);
    if (!last) this.#last.set(scope, (last = new Map()));
    const before = last.get(name);
    last.set(name, value);
    if (before === undefined) return fromZero ? value : undefined;
    return value >= before ? value - before : undefined;
  }

  /** Forgets the scopes `keep` rejects. */
  sweep(keep: (scope: string) => boolean): void {
    for (const scope of this.#last.keys()) if (!keep(scope)) this.#last.delete(scope);
  }
}
