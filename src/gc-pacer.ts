// With Bun's GC timer off (runtime-settings.ts), the agent collects its young
// garbage itself: a while after work (a poll round, a published batch), once
// however much work came meanwhile, and never while nothing happens. Bun's
// timer collected about every 2 s for ever, idle or not; JavaScriptCore alone
// collects only when allocation reaches its threshold, so garbage of work
// that stays under it would sit in the RSS (measured: +5 to +14 MiB).
import { edenGC } from "bun:jsc";

/** How long after work its garbage is collected: Bun's timer looked every second and collected about every 2 s. */
export const GC_AFTER_WORK_MS = 2000;

export class GcPacer {
  readonly #delayMs: number;
  readonly #collect: () => void;
  /** set while a collection is due */
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(delayMs = GC_AFTER_WORK_MS, collect: () => void = () => void edenGC()) {
    this.#delayMs = delayMs;
    this.#collect = collect;
  }

  /** Work was done (it allocated): collect in #delayMs, once for all the work until then. */
  readonly worked = (): void => {
    if (this.#timer) return;
    this.#timer = setTimeout(this.#fire, this.#delayMs);
    // Never what keeps the process alive.
    this.#timer.unref();
  };

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#collect();
  };

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A pacer when Bun's GC timer is off (this process was started with BUN_GC_TIMER_DISABLE), else none: Bun's timer does the job. */
export function gcPacerFor(env: Readonly<Record<string, string | undefined>>): GcPacer | undefined {
  return env.BUN_GC_TIMER_DISABLE === undefined ? undefined : new GcPacer();
}
