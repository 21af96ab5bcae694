// What `validate` says about a valid `routes:` that probably does not do
// what was meant. Warnings, not errors: each can be intended (routes shared
// by nodes with different collectors, unrouted events on purpose).
import type { Config } from "../config/schema.ts";
import { globMatcher } from "./glob.ts";
import type { RouteRule } from "./schema.ts";

/** A rule that takes every event: no match, or a match without keys. */
function matchesAll(rule: RouteRule): boolean {
  return rule.match === undefined || Object.keys(rule.match).length === 0;
}

/** One line per warning, each naming the rule by its place and name: `routes.2 ("rest"): ...`. */
export function routeWarnings(config: Pick<Config, "routes" | "collectors">): string[] {
  const rules = config.routes ?? [];
  const warnings: string[] = [];
  const instances = Object.keys(config.collectors);
  const place = (i: number) => `routes.${i} ("${rules[i]!.name}")`;
  const catchAll = rules.findIndex(matchesAll);
  rules.forEach((rule, i) => {
    if (catchAll !== -1 && i > catchAll) {
      warnings.push(`${place(i)}: never reached: ${place(catchAll)} before it has no match and takes every event`);
    }
    (rule.match?.collector ?? []).forEach((glob, j) => {
      if (instances.some(globMatcher([glob]))) return;
      const configured = instances.length > 0 ? instances.join(", ") : "none";
      warnings.push(`${place(i)}: match.collector.${j} "${glob}" matches none of the configured collectors (${configured})`);
    });
  });
  if (rules.length > 0 && catchAll === -1) {
    warnings.push(`${place(rules.length - 1)}: the last rule has a match: events that match no rule are dropped (counted as unrouted); end with a rule without match to send them somewhere`);
  }
  return warnings;
}
