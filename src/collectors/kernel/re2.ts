// Rule patterns are Go RE2 syntax (node-problem-detector's), run with re2js,
// a JavaScript port of RE2: the same syntax and meaning as Go's regexp, and
// matching in time linear in the text whatever the pattern. A rule file comes
// from the operator and runs on every kernel line, so a backtracking engine
// could be stalled by one nested repetition such as `(a+)+$`.
import { RE2JS } from "re2js";

/** A pattern matched as NPD matches it: up to the end of the text (`pattern` + `\z`). */
export class EndAnchoredPattern {
  readonly #re: RE2JS;
  /**
   * The literal every match starts with, "" if there is none: text without it
   * is skipped before the engine runs, and most kernel lines lack every rule's.
   */
  readonly prefix: string;

  /** Throws an Error naming the problem for what RE2 rejects. */
  constructor(readonly pattern: string) {
    RE2JS.compile(pattern); // errors name the operator's pattern, not our wrapper
    this.#re = anchoredAtEnd(pattern);
    const { prefix } = this.#re.re2();
    this.prefix = typeof prefix === "string" ? prefix : "";
  }

  /** Where the leftmost match that ends at the end of `text` starts (a UTF-16 index), or -1. */
  matchAtEnd(text: string): number {
    if (this.prefix !== "" && !text.includes(this.prefix)) return -1;
    const matcher = this.#re.matcher(text);
    return matcher.find() ? matcher.start() : -1;
  }
}

function anchoredAtEnd(pattern: string): RE2JS {
  try {
    return RE2JS.compile(`(?:${pattern})\\z`);
  } catch {
    // A valid pattern fails wrapped only when it ends inside \Q...: the literal runs to its end.
    return RE2JS.compile(`(?:${pattern}\\E)\\z`);
  }
}
