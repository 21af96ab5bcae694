// `routes:` in the config file: which destinations each event goes to.
// Rules are tried in order; the first whose `match` the event meets decides
// (`to` its destinations, or `drop: true`). Within one match key the items
// are OR, across keys AND; a rule without `match` takes every event.
import * as v from "valibot";
import { SEVERITIES, type Severity } from "../event/event.ts";
import { expectedGot, nonEmptyString, parsed, picklist, strictObject, stringOrList, unknownKeyMessage, type Schema } from "../config/kit.ts";
import { isPlainMapping } from "../config/parse.ts";

/** The destination `nats:` configures; every other name is a key of `destinations:`. */
export const DEFAULT_DESTINATION = "default";

function nonEmptyList(what: string): Schema<string[]> {
  return v.pipe(
    stringOrList(nonEmptyString()),
    // An empty list would be OR over nothing: a rule that never matches, surely not what was meant.
    v.check((items) => items.length > 0, `expected at least one ${what}, got an empty list`),
  );
}

// Path items for issues located below the value a check sees.
function keyItem(mapping: Record<string, unknown>, key: string): v.ObjectPathItem {
  return { type: "object", origin: "value", input: mapping, key, value: mapping[key] };
}
function indexItem(list: unknown[], index: number): v.ArrayPathItem {
  return { type: "array", origin: "value", input: list, key: index, value: list[index] };
}

const rank = (severity: unknown) => SEVERITIES.indexOf(severity as Severity);

const matchSchema = v.pipe(
  strictObject({
    /** collector instances (`kernel`, `dns/external`) or globs of them (`dns/*`) */
    collector: v.optional(nonEmptyList("collector name or glob")),
    /** event types or globs (`kernel.*`) */
    type: v.optional(nonEmptyList("event type or glob")),
    /** in the order of SEVERITIES: this one and those above */
    severity_at_least: v.optional(picklist(SEVERITIES)),
    /** in the order of SEVERITIES: those below this one */
    severity_below: v.optional(picklist(SEVERITIES)),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    const match = dataset.value;
    if (!isPlainMapping(match)) return;
    const { severity_at_least: least, severity_below: below } = match;
    // A value outside SEVERITIES is reported by its own key.
    if (rank(below) === -1 || (least !== undefined && rank(least) === -1)) return;
    if ((least === undefined ? 0 : rank(least)) < rank(below)) return;
    const message =
      least === undefined
        ? `no severity is below ${String(below)}, the lowest of ${SEVERITIES.join(", ")}`
        : `no severity is at least ${String(least)} and below ${String(below)}: severity_below must come after severity_at_least in ${SEVERITIES.join(", ")}`;
    addIssue({ message, path: [keyItem(match, "severity_below")] });
  }),
);

const ruleSchema = v.pipe(
  strictObject({
    /** unique among the rules; names the rule in warnings, logs and decisions */
    name: nonEmptyString(),
    /** absent: every event */
    match: v.optional(matchSchema),
    /** destination names: `default` (the `nats:` section) or keys of `destinations:` */
    to: v.optional(nonEmptyList("destination name")),
    drop: v.optional(parsed("true (to send the events somewhere, write `to` instead)", (x) => (x === true ? (true as const) : undefined))),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    const rule = dataset.value;
    if (!isPlainMapping(rule)) return;
    if (rule.to !== undefined && rule.drop !== undefined) {
      addIssue({ message: "a rule has either to: [destinations] or drop: true, not both", path: [keyItem(rule, "drop")] });
    } else if (rule.to === undefined && rule.drop === undefined) {
      addIssue({ message: "a rule needs either to: [destinations] or drop: true" });
    }
  }),
);

export type RouteRule = v.InferOutput<typeof ruleSchema>;

/**
 * `routes:`, a list of rules. Absent, empty (`routes:`) or `[]`: no routing,
 * every event goes to `default` as before routes existed; all three read as
 * undefined or [], which RouteTable treats alike.
 */
export const routesSchema = v.optional(
  v.pipe(
    v.nullable(v.array(ruleSchema, (issue) => expectedGot("a list of rules", issue.input))),
    v.rawCheck(({ dataset, addIssue }) => {
      const rules = dataset.value;
      if (!Array.isArray(rules)) return;
      const first = new Map<string, number>();
      rules.forEach((rule: unknown, i) => {
        if (!isPlainMapping(rule) || typeof rule.name !== "string") return;
        const earlier = first.get(rule.name);
        if (earlier === undefined) first.set(rule.name, i);
        else addIssue({ message: `duplicate rule name "${rule.name}" (also routes.${earlier})`, path: [indexItem(rules, i), keyItem(rule, "name")] });
      });
    }),
    v.transform((rules) => rules ?? undefined),
  ),
);

/** The destination names a config knows: `default` and the keys of the `destinations` mapping (when it is one). */
export function destinationNames(destinations: unknown): string[] {
  return [DEFAULT_DESTINATION, ...(isPlainMapping(destinations) ? Object.keys(destinations).filter((name) => name !== DEFAULT_DESTINATION) : [])];
}

/**
 * The top-level rule across `routes` and `destinations`: every name in a
 * rule's `to` is a known destination, each unknown one reported at its item
 * (`routes.1.to.0`) with a "did you mean". It sees the top-level mapping as
 * the schema read it, so `destinations` holds the file's keys.
 */
export function routeDestinationsCheck<T>() {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    const top = dataset.value;
    if (!isPlainMapping(top) || !Array.isArray(top.routes)) return;
    const known = destinationNames(top.destinations);
    const routes: unknown[] = top.routes;
    routes.forEach((rule, i) => {
      if (!isPlainMapping(rule) || !Array.isArray(rule.to)) return;
      const to: unknown[] = rule.to;
      to.forEach((name, j) => {
        if (typeof name !== "string" || known.includes(name)) return;
        addIssue({
          message: unknownKeyMessage(name, known, { noun: "destination" }),
          path: [keyItem(top, "routes"), indexItem(routes, i), keyItem(rule, "to"), indexItem(to, j)],
        });
      });
    });
  });
}
