// JSON.parse keeps the last of two equal keys without a word; this finds them.

/** The keys that appear twice in one object of the JSON `text`, as "path.key"; throws on JSON that does not parse. */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${at} of ${text}`);
  };
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at]!)) at++;
  };
  const string = (): string => {
    const start = at;
    at++; // the opening quote
    while (text[at] !== '"') {
      if (at >= text.length) fail("unterminated string");
      at += text[at] === "\\" ? 2 : 1;
    }
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const value = (path: string): void => {
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const keys = new Set<string>();
      space();
      if (text[at] === "}") {
        at++;
        return;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        if (keys.has(key)) found.push(path === "" ? key : `${path}.${key}`);
        keys.add(key);
        space();
        if (text[at++] !== ":") fail("expected :");
        value(path === "" ? key : `${path}.${key}`);
        space();
        const next = text[at++];
        if (next === "}") return;
        if (next !== ",") fail("expected , or }");
      }
    }
    if (c === "[") {
      at++;
      space();
      if (text[at] === "]") {
        at++;
        return;
      }
      for (let i = 0; ; i++) {
        value(`${path}[${i}]`);
        space();
        const next = text[at++];
        if (next === "]") return;
        if (next !== ",") fail("expected , or ]");
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const literal = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at));
    if (!literal) fail("unexpected character");
    at += literal![0].length;
  };
  value("");
  space();
  if (at !== text.length) fail("trailing text");
  return found;
}
