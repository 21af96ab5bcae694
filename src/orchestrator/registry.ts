// Collector factories by type name. The orchestrator and the config loader
// iterate this; neither names a collector.
import type { AnyCollectorFactory } from "./collector.ts";

export class CollectorRegistry {
  readonly #factories = new Map<string, AnyCollectorFactory>();

  register(factory: AnyCollectorFactory): this {
    if (this.#factories.has(factory.type)) throw new Error(`collector type "${factory.type}" is already registered`);
    this.#factories.set(factory.type, factory);
    return this;
  }

  get(type: string): AnyCollectorFactory | undefined {
    return this.#factories.get(type);
  }

  types(): string[] {
    return [...this.#factories.keys()].sort();
  }
}
