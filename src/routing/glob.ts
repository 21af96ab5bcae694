// Globs of `routes:` (collector instances, event types): `*` is any run of
// characters (including none, and "/" or "."), `?` is one character, every
// other character is itself. No classes or escapes: names and types hold
// none of `[`, `]` or `\` worth matching by pattern.

/** Whether the glob has a wildcard; one without matches only its own text. */
export function isLiteralGlob(glob: string): boolean {
  return !glob.includes("*") && !glob.includes("?");
}

function globSource(glob: string): string {
  let source = "";
  for (const char of glob) {
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else source += char.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return source;
}

/**
 * A test for "matches any of the globs" (the items of one key are OR): a
 * Set for literal ones, one anchored RegExp for the rest. No globs match nothing.
 */
export function globMatcher(globs: readonly string[]): (value: string) => boolean {
  const literal = new Set(globs.filter(isLiteralGlob));
  const patterns = globs.filter((glob) => !isLiteralGlob(glob));
  // `s`: "." also takes a newline, so `*` is truly any run of characters; `u`: `?` is one code point.
  const pattern = patterns.length > 0 ? new RegExp(`^(?:${patterns.map(globSource).join("|")})$`, "su") : undefined;
  if (pattern === undefined) return (value) => literal.has(value);
  if (literal.size === 0) return (value) => pattern.test(value);
  return (value) => literal.has(value) || pattern.test(value);
}
