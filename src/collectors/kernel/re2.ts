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

  /**
   * No match can hold a line break nor depend on the start of the text (`^`
   * without `(?m)`, `\A`): a match that ends at the end of the text then lies
   * within its last line, so the last line alone is matched, the same match
   * on a tenth of the text. Most rules are such; the multi-line ones are not.
   */
  readonly withinLastLine: boolean;

  /** Throws an Error naming the problem for what RE2 rejects. */
  constructor(readonly pattern: string) {
    RE2JS.compile(pattern); // errors name the operator's pattern, not our wrapper
    this.#re = anchoredAtEnd(pattern);
    const { prefix, prog } = this.#re.re2() as { prefix?: unknown; prog?: unknown };
    this.prefix = typeof prefix === "string" ? prefix : "";
    this.withinLastLine = neverCrossesLines(prog);
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

// re2js's compiled program (RE2's Inst ops), read to tell whether a match can hold "\n".
const RUNE = 8;
const RUNE1 = 9;
const RUNE_ANY = 10;
const RUNE_ANY_NOT_NL = 11;
const EMPTY_WIDTH = 4;
const EMPTY_BEGIN_TEXT = 4;
/** ops that consume nothing and test nothing about the text's start: alternation, capture, fail, match, nop */
const NEUTRAL_OPS = new Set([1, 2, 3, 5, 6, 7]);

interface Inst {
  op: number;
  arg: number;
  matchRune(rune: number): boolean;
}

/**
 * True when no instruction of `prog` can consume a line break and none tests
 * for the start of the text. Anything unexpected in the program (another
 * re2js version, look-behind ops) counts as crossing lines: the caller then
 * matches the whole window, which is always right.
 */
function neverCrossesLines(prog: unknown): boolean {
  const insts = (prog as { inst?: unknown } | undefined)?.inst;
  if (!Array.isArray(insts) || insts.length === 0) return false;
  for (const inst of insts as Inst[]) {
    if (typeof inst?.op !== "number") return false;
    switch (inst.op) {
      case RUNE:
      case RUNE1:
        if (typeof inst.matchRune !== "function" || inst.matchRune(0x0a)) return false;
        break;
      case RUNE_ANY:
        return false;
      case RUNE_ANY_NOT_NL:
        break;
      case EMPTY_WIDTH:
        if (inst.arg & EMPTY_BEGIN_TEXT) return false;
        break;
      default:
        if (!NEUTRAL_OPS.has(inst.op)) return false;
    }
  }
  return true;
}
