import type { CollectorContext } from "../../orchestrator/collector.ts";

/**
 * A collector fed by several sources (kubelet /pods and /stats/summary; API
 * pods and events; kernel log, rules and vmstat): degraded while any source
 * fails, healthy only once every source has worked, so one source's success
 * does not hide another's failure.
 */
export class SourceHealth {
  readonly #ctx: CollectorContext;
  /** sources failing, or not read yet */
  readonly #pending: Set<string>;

  /** `mustWork`: sources that have to succeed once before the collector counts as healthy */
  constructor(ctx: CollectorContext, mustWork: readonly string[] = []) {
    this.#ctx = ctx;
    this.#pending = new Set(mustWork);
  }

  ok(source: string): void {
    this.#pending.delete(source);
    if (this.#pending.size === 0) this.#ctx.healthy();
  }

  failed(source: string, reason: string): void {
    this.#pending.add(source);
    this.#ctx.degraded(`${source}: ${reason}`);
  }

  /** `ctx` with its health reports going to `source`: for a shared poll loop. */
  contextFor(source: string): CollectorContext {
    const ctx = this.#ctx;
    return {
      name: ctx.name,
      signal: ctx.signal,
      once: ctx.once,
      log: ctx.log,
      emit: (event, options) => ctx.emit(event, options),
      emitAll: (batch, options) => ctx.emitAll(batch, options),
      parseError: (where, detail) => ctx.parseError(where, detail),
      degraded: (reason) => this.failed(source, reason),
      healthy: () => this.ok(source),
      state: ctx.state,
      pollRound: (wall, cpu) => ctx.pollRound(wall, cpu),
      sourceMode: (where, mode, reason) => ctx.sourceMode(where, mode, reason),
    };
  }
}
