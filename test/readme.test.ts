// README claims that name what the code defines: checked against the code.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PUBLISH_ERROR_REASONS } from "../src/publish/classify.ts";

const root = join(import.meta.dir, "..");
const readme = readFileSync(join(root, "README.md"), "utf8");

test("the Layout table lists every folder of src/, once", () => {
  const section = readme.slice(readme.indexOf("Layout of `src/`"), readme.indexOf("## Deploy"));
  const listed = [...section.matchAll(/^\| `([a-z-]+)\/` \|/gm)].map((m) => m[1]);
  const folders = readdirSync(join(root, "src"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  expect([...listed].sort()).toEqual(folders.sort());
});

test("the publish-error metric lists every publish-error reason, in order", () => {
  const row = readme.split("\n").find((line) => line.startsWith("| `orchestrator_publish_errors_total` |"));
  const listed = row?.slice(row.indexOf("):")).match(/`[a-z_]+`/g)?.map((r) => r.slice(1, -1));
  expect(listed?.slice(0, PUBLISH_ERROR_REASONS.length)).toEqual([...PUBLISH_ERROR_REASONS]);
});
