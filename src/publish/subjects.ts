// Whether a stream's subject filters capture every subject we publish to.
// We publish to `<prefix>.<collector>` for any collector name, so the stream
// must cover the wildcard `<prefix>.>`; covering only the collectors running
// today would silently lose events of the next one added.

/**
 * True when every subject matching `<prefix>.>` matches at least one of
 * `filters`. `prefix` is a literal subject (no wildcards). Filters may
 * cover it together: `a.*` plus `a.*.>` cover `a.>`.
 */
export function subjectsCover(filters: readonly string[], prefix: string): boolean {
  return coversFrom(filters.map((f) => f.split(".")), prefix.split("."), 0);
}

// Do `filters` cover the literal tokens `needed[i..]` followed by `>`?
function coversFrom(filters: string[][], needed: string[], i: number): boolean {
  const token = needed[i];
  if (token === undefined) return coversTail(filters, i);
  const next: string[][] = [];
  for (const f of filters) {
    const t = f[i];
    if (t === ">") return true;
    if ((t === "*" || t === token) && f.length > i + 1) next.push(f);
  }
  return next.length > 0 && coversFrom(next, needed, i + 1);
}

// Do `filters` cover every sequence of one or more arbitrary tokens from position i?
function coversTail(filters: string[][], i: number): boolean {
  if (filters.some((f) => f[i] === ">")) return true;
  // only `*` matches an arbitrary single token; then the longer sequences must be covered too
  const stars = filters.filter((f) => f[i] === "*");
  return stars.some((f) => f.length === i + 1) && coversTail(stars.filter((f) => f.length > i + 1), i + 1);
}
