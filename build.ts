// Builds the single executable: bun build.ts [--outfile PATH]
// Bytecode for fast start; the binary never autoloads .env or bunfig.toml from
// the directory it is started in (a user's cwd must not change the agent).
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { outfile: { type: "string", default: "dist/tapio-collectors" } },
});
const outfile = values.outfile!;

const started = performance.now();
const result = await Bun.build({
  entrypoints: ["src/main.ts"],
  compile: {
    outfile,
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
  },
  bytecode: true,
  minify: true,
  sourcemap: "inline",
  target: "bun",
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
const size = Bun.file(outfile).size;
console.log(`built ${outfile} (${(size / 1048576).toFixed(1)} MiB) in ${Math.round(performance.now() - started)} ms`);
