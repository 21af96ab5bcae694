// Where a YAML syntax error is reported. The yaml package notices an
// unterminated quoted string or an unclosed flow collection only where the
// text runs out or stops fitting (often the end of the file); the person
// editing needs the place the string or collection was opened.
import { CST, Parser, type YAMLError } from "yaml";

export interface YamlProblem {
  /** offset in the text where the problem starts */
  readonly offset: number;
  readonly message: string;
}

interface Unclosed {
  readonly offset: number;
  readonly message: string;
}

const CLOSED_DOUBLE = /^"(?:[^"\\]|\\[\s\S])*"$/;
const CLOSED_SINGLE = /^'(?:[^']|'')*'$/;

/** The parse errors of a document, each at the place its problem starts, once each. */
export function locateYamlErrors(text: string, errors: readonly YAMLError[]): YamlProblem[] {
  if (errors.length === 0) return [];
  const unclosed = findUnclosed(text);
  const problems: YamlProblem[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    // The innermost string or collection still open where the error was noticed caused it.
    const cause = unclosed.findLast((u) => u.offset <= error.pos[0]);
    const problem = cause ?? { offset: error.pos[0], message: error.message };
    const key = `${problem.offset}:${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

/** Quoted strings without their closing quote and flow collections without their closing bracket, in text order. */
function findUnclosed(text: string): Unclosed[] {
  const found: Unclosed[] = [];
  const check = (token: CST.Token | undefined) => {
    if (!token) return;
    if (token.type === "double-quoted-scalar" && !CLOSED_DOUBLE.test(token.source)) {
      found.push({ offset: token.offset, message: 'this "quoted string is never closed: a " is missing' });
    } else if (token.type === "single-quoted-scalar" && !CLOSED_SINGLE.test(token.source)) {
      found.push({ offset: token.offset, message: "this 'quoted string is never closed: a ' is missing" });
    } else if (token.type === "flow-collection" && !token.end.some((t) => t.type === (token.start.type === "flow-seq-start" ? "flow-seq-end" : "flow-map-end"))) {
      found.push(
        token.start.type === "flow-seq-start"
          ? { offset: token.offset, message: "this [ list is never closed: a ] is missing" }
          : { offset: token.offset, message: "this { mapping is never closed: a } is missing" },
      );
    }
  };
  for (const token of new Parser().parse(text)) {
    if (token.type !== "document") continue;
    check(token.value);
    CST.visit(token, (item) => {
      check(item.key ?? undefined);
      check(item.value);
    });
  }
  return found.sort((a, b) => a.offset - b.offset);
}
