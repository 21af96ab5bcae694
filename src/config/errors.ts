// Config problems are reported to a person editing a YAML file, so every issue
// names the place (file:line:column and dotted path) and reads without a stack.
import { isSecretPath, redactUrlCredentials } from "./redact.ts";

export interface ConfigIssue {
  readonly file: string;
  /** 1-based; 0 when the issue concerns the whole file (it cannot be read) */
  readonly line: number;
  readonly column: number;
  /** dotted path such as `nats.url.1`; "" for the top level */
  readonly path: string;
  readonly message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  if (issue.line === 0) return `${issue.file}: ${issue.message}`;
  return `${issue.file}:${issue.line}:${issue.column} ${issue.path || "(root)"}: ${issue.message}`;
}

/** Issues printed at most: past this a file is not a config with mistakes but something else, and the rest only floods the log. */
export const MAX_ISSUES_SHOWN = 100;

/** One line per issue, in the order given, the first MAX_ISSUES_SHOWN of them, then how many more there were. */
export function issueLines(issues: readonly ConfigIssue[]): string[] {
  const lines = issues.slice(0, MAX_ISSUES_SHOWN).map(formatIssue);
  if (issues.length > MAX_ISSUES_SHOWN) lines.push(`and ${issues.length - MAX_ISSUES_SHOWN} more`);
  return lines;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    // Issues come out in file order, whichever stage found them.
    const sorted = [...issues].map(withoutSecrets).sort((a, b) => a.line - b.line || a.column - b.column);
    super(issueLines(sorted).join("\n"));
    this.issues = sorted;
  }

  /** One line per issue, in file order, at most MAX_ISSUES_SHOWN and a count of the rest. */
  lines(): string[] {
    return issueLines(this.issues);
  }

  format(): string {
    return this.message;
  }
}

// what a message may quote of a value: "text", or the word after "got " (a number, true)
const QUOTED = /"(?:[^"\\]|\\.)+"/g;
const GOT_SCALAR = /\bgot (?!an? |nothing\b|null\b|")[^\s,;()]+/g;

/**
 * The issue with no secret in its message, whatever stage wrote it: URL
 * credentials hidden, and for a secret key (nats.password) anything quoted
 * or found. The schemas do not show secrets to begin with; this is the
 * guard for the messages of stages that cannot know (environment expansion).
 */
function withoutSecrets(issue: ConfigIssue): ConfigIssue {
  let message = redactUrlCredentials(issue.message);
  if (isSecretPath(issue.path)) {
    // The key's own name (`duplicate key "token"`) is no secret; any other quoted text may be.
    const keyName = JSON.stringify(issue.path.split(".").at(-1));
    message = message.replace(QUOTED, (quoted) => (quoted === keyName ? quoted : '"***"')).replace(GOT_SCALAR, "got ***");
  }
  return message === issue.message ? issue : { ...issue, message };
}

const MAX_SHOWN = 60;

/** A found value as an error message shows it: `"abc"`, `12`, `a mapping`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object" && value !== null) return Object.keys(value).length === 0 ? "an empty mapping" : "a mapping";
  if (typeof value === "string") {
    const shown = JSON.stringify(value);
    return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN - 2)}…"` : shown;
  }
  return String(value);
}
