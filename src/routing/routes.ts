// PLACEHOLDER until the routing branch lands: no rules, everything to default.
export interface RouteRule {
  name: string;
  to: string[];
  drop: boolean;
}
export type RouteDecision<T> =
  | { readonly kind: "to"; readonly rule: string; readonly to: readonly T[] }
  | { readonly kind: "drop"; readonly rule: string }
  | { readonly kind: "unrouted" };

export interface CollectorRoutes<T> {
  decide(type: string, severity: string): RouteDecision<T>;
}

export class RouteTable<T> {
  readonly #all: RouteDecision<T>;
  constructor(_rules: readonly RouteRule[] | undefined, resolve: (name: string) => T) {
    this.#all = { kind: "to", rule: "", to: [resolve("default")] };
  }
  forCollector(_instance: string): CollectorRoutes<T> {
    const all = this.#all;
    return { decide: () => all };
  }
}
