// Deciding where each event goes, by the `routes:` rules (schema.ts): once
// per event, in the runner, before encoding. The work is done ahead: the
// collector globs once per instance (forCollector), the decisions once per
// rule (no allocation per event), and a decision once per event type and
// severity, cached, so 50 rules cost one lookup per event.
import { SEVERITIES } from "../event/event.ts";
import { globMatcher } from "./glob.ts";
import { DEFAULT_DESTINATION, type RouteRule } from "./schema.ts";

export type RouteDecision<T> =
  | { readonly kind: "to"; readonly rule: string; readonly to: readonly T[] }
  | { readonly kind: "drop"; readonly rule: string }
  | { readonly kind: "unrouted" };

export interface CollectorRoutes<T> {
  /** Where an event of this type and severity goes: the first rule it matches decides. */
  decide(type: string, severity: string): RouteDecision<T>;
  /** distinct event types whose decisions are cached now, at most MAX_CACHED_TYPES */
  readonly cachedTypes: number;
}

/** Past this many distinct types, a collector's cache starts over: a collector with unbounded types (ingest, exec) cannot grow it forever. */
export const MAX_CACHED_TYPES = 4096;

const UNROUTED: RouteDecision<never> = Object.freeze({ kind: "unrouted" });
const SEVERITY_RANK: ReadonlyMap<string, number> = new Map(SEVERITIES.map((severity, i) => [severity, i]));
/** The rank of a severity outside SEVERITIES: it is in no severity range. */
const UNKNOWN_RANK = SEVERITIES.length;

interface CompiledRule<T> {
  readonly collector: ((instance: string) => boolean) | undefined;
  readonly type: ((type: string) => boolean) | undefined;
  /** whether the rule has severity_at_least or severity_below */
  readonly bySeverity: boolean;
  /** the range is [atLeast, below) in ranks */
  readonly atLeast: number;
  readonly below: number;
  readonly decision: RouteDecision<T>;
}

function compile<T>(rule: RouteRule, resolve: (name: string) => T): CompiledRule<T> {
  const { match } = rule;
  let decision: RouteDecision<T>;
  if (rule.drop === true) decision = Object.freeze({ kind: "drop", rule: rule.name });
  else {
    // `to: [default, default]` is one delivery; each name is resolved once.
    const names = [...new Set(rule.to ?? [])];
    decision = Object.freeze({ kind: "to", rule: rule.name, to: Object.freeze(names.map(resolve)) });
  }
  const atLeast = match?.severity_at_least === undefined ? 0 : SEVERITY_RANK.get(match.severity_at_least)!;
  const below = match?.severity_below === undefined ? SEVERITIES.length : SEVERITY_RANK.get(match.severity_below)!;
  return {
    collector: match?.collector === undefined ? undefined : globMatcher(match.collector),
    type: match?.type === undefined ? undefined : globMatcher(match.type),
    bySeverity: match?.severity_at_least !== undefined || match?.severity_below !== undefined,
    atLeast,
    below,
    decision,
  };
}

/** Whether the rule takes every event of an instance its collector globs accept. */
function takesAll(rule: CompiledRule<unknown>): boolean {
  return rule.type === undefined && !rule.bySeverity;
}

class ConstantRoutes<T> implements CollectorRoutes<T> {
  constructor(readonly decision: RouteDecision<T>) {}

  readonly cachedTypes = 0;

  decide(): RouteDecision<T> {
    return this.decision;
  }
}

class CachedRoutes<T> implements CollectorRoutes<T> {
  /** by type, the decision for each severity rank (UNKNOWN_RANK last), filled as events come */
  readonly #byType = new Map<string, Array<RouteDecision<T> | undefined>>();

  /** `rules`: those that can apply to the instance, in order, none after one that takes all. */
  constructor(readonly rules: readonly CompiledRule<T>[]) {}

  decide(type: string, severity: string): RouteDecision<T> {
    const rank = SEVERITY_RANK.get(severity) ?? UNKNOWN_RANK;
    let bySeverity = this.#byType.get(type);
    if (bySeverity === undefined) {
      if (this.#byType.size >= MAX_CACHED_TYPES) this.#byType.clear();
      bySeverity = new Array<RouteDecision<T> | undefined>(UNKNOWN_RANK + 1);
      this.#byType.set(type, bySeverity);
    }
    return (bySeverity[rank] ??= this.evaluate(type, rank));
  }

  /** The decision without the cache: the first rule the event matches. */
  evaluate(type: string, rank: number): RouteDecision<T> {
    for (const rule of this.rules) {
      if (rule.bySeverity && !(rank >= rule.atLeast && rank < rule.below)) continue;
      if (rule.type !== undefined && !rule.type(type)) continue;
      return rule.decision;
    }
    return UNROUTED;
  }

  get cachedTypes(): number {
    return this.#byType.size;
  }
}

/**
 * The `routes:` rules, compiled; `resolve` turns a destination name into what
 * the caller delivers to, once per rule and name. No rules (undefined or [])
 * send every event to `resolve("default")`.
 */
export class RouteTable<T> {
  readonly #rules: readonly CompiledRule<T>[];
  /** the one decision when there are no rules */
  readonly #everything: RouteDecision<T> | undefined;

  constructor(rules: readonly RouteRule[] | undefined, resolve: (destinationName: string) => T) {
    this.#rules = (rules ?? []).map((rule) => compile(rule, resolve));
    this.#everything = this.#rules.length === 0 ? Object.freeze({ kind: "to", rule: "", to: Object.freeze([resolve(DEFAULT_DESTINATION)]) }) : undefined;
  }

  /** The routes of one collector instance: the rules its name can meet, its globs tested once, here. */
  forCollector(instance: string): CollectorRoutes<T> {
    if (this.#everything !== undefined) return new ConstantRoutes(this.#everything);
    const rules = this.#rulesFor(instance);
    const first = rules[0];
    if (first === undefined) return new ConstantRoutes<T>(UNROUTED);
    if (takesAll(first)) return new ConstantRoutes(first.decision);
    return new CachedRoutes(rules);
  }

  /** Every destination some event of `instance` can go to, whatever its type and severity (`check` probes these). */
  destinationsOf(instance: string): T[] {
    if (this.#everything !== undefined) return this.#everything.kind === "to" ? [...this.#everything.to] : [];
    const reached = new Set<T>();
    for (const rule of this.#rulesFor(instance)) if (rule.decision.kind === "to") for (const d of rule.decision.to) reached.add(d);
    return [...reached];
  }

  /** The rules an event of `instance` can meet, in order: those its collector globs accept, none after one that takes all. */
  #rulesFor(instance: string): CompiledRule<T>[] {
    const rules: CompiledRule<T>[] = [];
    for (const rule of this.#rules) {
      if (rule.collector !== undefined && !rule.collector(instance)) continue;
      rules.push(rule);
      if (takesAll(rule)) break; // the rules after it are never reached
    }
    return rules;
  }
}
