import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DISCARDED, REFUSED } from "../../src/event/drop-reasons.ts";

test("the README's table of drop reasons lists exactly the reasons the agent counts, with their meaning", () => {
  const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Delivery accounting"), readme.indexOf("### `collectors`"));
  const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (refused|discarded) \| (.+) \|$/gm)].map((m) => [m[1], m[2], m[3]]);
  const expected = [
    ...Object.entries(REFUSED).map(([reason, meaning]) => [reason, "refused", meaning]),
    ...Object.entries(DISCARDED).map(([reason, meaning]) => [reason, "discarded", meaning]),
  ];
  expect(rows).toEqual(expected);
});

test("a reason means one thing: refused and discarded reasons do not overlap", () => {
  expect(Object.keys(REFUSED).filter((reason) => reason in DISCARDED)).toEqual([]);
});
