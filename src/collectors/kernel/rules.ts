// node-problem-detector compatible rule files: the JSON of its kmsg log
// monitors (config/kernel-monitor.json, readonly-monitor.json, ...), applied
// to the kernel log the way NPD does.
import { basename } from "node:path";
import * as v from "valibot";
import { readText } from "../common/paths.ts";
import { EndAnchoredPattern } from "./re2.ts";

// A loose object: NPD's files carry keys this collector has no use for (lookback, metricsReporting, ...).
const ruleFileSchema = v.object({
  plugin: v.optional(v.string()),
  source: v.optional(v.pipe(v.string(), v.nonEmpty())),
  bufferSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)), 10),
  rules: v.array(
    v.object({
      type: v.picklist(["temporary", "permanent"]),
      condition: v.optional(v.string()),
      reason: v.pipe(v.string(), v.nonEmpty()),
      pattern: v.string(),
    }),
  ),
});

export interface Rule {
  type: "temporary" | "permanent";
  /** the node condition a permanent rule sets */
  condition?: string;
  reason: string;
  pattern: string;
  /** the pattern, anchored at the end of the text as NPD anchors it (`pattern + \z`) */
  matcher: EndAnchoredPattern;
}

export interface RuleSet {
  /** NPD's `source`, e.g. kernel-monitor */
  source: string;
  /** where the rules came from, for messages */
  origin: string;
  /** how many recent lines a pattern is matched against */
  bufferSize: number;
  rules: Rule[];
}

export interface RuleFile {
  set?: RuleSet;
  /** what is wrong with the file or some of its rules (those rules are left out) */
  problems: string[];
}

/** Validates and compiles one rule file's JSON; rules that do not compile are left out and reported. */
export function compileRuleFile(json: unknown, origin: string): RuleFile {
  const parsed = v.safeParse(ruleFileSchema, json);
  if (!parsed.success) return { problems: [`${origin}: ${v.summarize(parsed.issues).replaceAll("\n", "; ")}`] };
  const file = parsed.output;
  if (file.plugin !== undefined && file.plugin !== "kmsg") {
    return { problems: [`${origin}: plugin "${file.plugin}" reads another log than the kernel's; only kmsg rule files apply`] };
  }
  const problems: string[] = [];
  const rules: Rule[] = [];
  for (const [i, rule] of file.rules.entries()) {
    const where = `${origin}: rule ${i} (${rule.reason})`;
    if (rule.type === "permanent" && !rule.condition) {
      problems.push(`${where}: a permanent rule needs a condition`);
      continue;
    }
    try {
      rules.push({ ...rule, matcher: new EndAnchoredPattern(rule.pattern) });
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  const source = file.source ?? basename(origin).replace(/\.json$/, "");
  return { set: { source, origin, bufferSize: file.bufferSize, rules }, problems };
}

export async function loadRuleFile(path: string): Promise<RuleFile> {
  let json: unknown;
  try {
    json = JSON.parse(await readText(path));
  } catch (err) {
    return { problems: [err instanceof SyntaxError ? `${path}: not JSON: ${err.message}` : (err as Error).message] };
  }
  return compileRuleFile(json, path);
}

export interface RuleMatch<T> {
  rule: Rule;
  source: string;
  /** the lines the match spans, oldest first */
  lines: T[];
  /** their text, joined by "\n" as NPD reports it */
  message: string;
}

/**
 * NPD's log buffer for one rule file: after each new line, every rule is
 * matched against the last `bufferSize` lines joined by "\n", and must match
 * up to the end of the newest one. A single-line pattern thus matches a line
 * that ends with it; a pattern with "\n" in it matches consecutive lines.
 * Unlike NPD, the window holds only lines seen (NPD pads it with empty ones
 * at start). A permanent rule reports only when it changes its condition
 * (false to true, or a new reason), as NPD emits its condition events.
 */
export class RuleMatcher<T> {
  readonly #lines: Array<{ text: string; item: T }> = [];
  /** condition type -> the reason that set it */
  readonly #conditions = new Map<string, string>();

  constructor(readonly set: RuleSet) {}

  push(item: T, text: string): Array<RuleMatch<T>> {
    this.#lines.push({ text, item });
    if (this.#lines.length > this.set.bufferSize) this.#lines.shift();
    // Joined only for a rule whose matches may span lines: most match within the newest line alone.
    let window: string | undefined = this.#lines.length === 1 ? text : undefined;
    const matches: Array<RuleMatch<T>> = [];
    for (const rule of this.set.rules) {
      const within = rule.matcher.withinLastLine;
      const matched = within ? text : (window ??= this.#lines.map((l) => l.text).join("\n"));
      const start = rule.matcher.matchAtEnd(matched);
      if (start < 0) continue;
      if (rule.type === "permanent") {
        if (this.#conditions.get(rule.condition!) === rule.reason) continue;
        this.#conditions.set(rule.condition!, rule.reason);
      }
      // The lines the match touches: the newest, plus one per line break after the match's first character.
      const count = within ? 1 : 1 + (matched.slice(start + 1).match(/\n/g)?.length ?? 0);
      const lines = this.#lines.slice(-count);
      matches.push({ rule, source: this.set.source, lines: lines.map((l) => l.item), message: lines.map((l) => l.text).join("\n") });
    }
    return matches;
  }
}
