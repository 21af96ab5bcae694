// Collector factories by type name. The orchestrator and the config loader
// iterate this; neither names a collector.
import type { AnyCollectorFactory } from "./collector.ts";
import { instanceType, NAME_EXPECTED, NAME_PATTERN } from "./instance.ts";

export class CollectorRegistry {
  readonly #factories = new Map<string, AnyCollectorFactory>();

  register(factory: AnyCollectorFactory): this {
    // A type is one subject token: with "." or "/" in it, two keys could share a subject.
    if (!NAME_PATTERN.test(factory.type)) throw new Error(`collector type "${factory.type}" may hold only ${NAME_EXPECTED}`);
    if (this.#factories.has(factory.type)) throw new Error(`collector type "${factory.type}" is already registered`);
    this.#factories.set(factory.type, factory);
    return this;
  }

  get(type: string): AnyCollectorFactory | undefined {
    return this.#factories.get(type);
  }

  /** The factory of a `collectors:` key, TYPE or TYPE/NAME. */
  forKey(key: string): AnyCollectorFactory | undefined {
    return this.get(instanceType(key));
  }

  types(): string[] {
    return [...this.#factories.keys()].sort();
  }
}
