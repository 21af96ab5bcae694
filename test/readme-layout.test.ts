import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

test("the README's Layout table lists every folder of src/, once", () => {
  const root = join(import.meta.dir, "..");
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("Layout of `src/`"), readme.indexOf("## Deploy"));
  const listed = [...section.matchAll(/^\| `([a-z-]+)\/` \|/gm)].map((m) => m[1]);
  const folders = readdirSync(join(root, "src"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  expect([...listed].sort()).toEqual(folders.sort());
});
