// The binaries the benchmarks run: the agent as `npm run build` makes it,
// and variants built with the same options whose source is patched as the
// bundler loads it (src/ itself is never touched). MULTI_COLLECTOR: the
// registry also knows synthetic_2 ... synthetic_16, the same synthetic
// collector under other names (a config holds one collector of each type),
// for the collector-count sweep. A variant can also test a change to src/
// (a diagnostic) before anyone makes it: buildVariant(outfile, [{ file, replace }]).
import { join } from "node:path";
import { REPO } from "./procs.ts";

export const MAX_SYNTHETIC = 16;

export function buildAgent(outfile: string): void {
  const build = Bun.spawnSync([process.execPath, "build.ts", "--outfile", outfile], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr}`);
}

interface Patch {
  /** the file under the repository */
  file: string;
  /** exact text to find -> its replacement; each must occur */
  replace: [string, string][];
  append?: string;
}

export const MULTI_COLLECTOR: Patch[] = [
  {
    file: "src/collectors/index.ts",
    replace: [["export function builtinRegistry(", "function baseRegistry("]],
    append: `
export function builtinRegistry(): CollectorRegistry {
  const registry = baseRegistry();
  for (let i = 2; i <= ${MAX_SYNTHETIC}; i++) registry.register({ ...syntheticFactory, type: "synthetic_" + i });
  return registry;
}
`,
  },
];

export async function buildVariant(outfile: string, patches: Patch[]): Promise<void> {
  const byPath = new Map(patches.map((p) => [join(REPO, p.file), p]));
  const result = await Bun.build({
    entrypoints: [join(REPO, "src/main.ts")],
    compile: { outfile, autoloadDotenv: false, autoloadBunfig: false, autoloadTsconfig: false, autoloadPackageJson: false },
    bytecode: true,
    minify: true,
    sourcemap: "inline",
    target: "bun",
    plugins: [
      {
        name: "bench-variant",
        setup(b) {
          const filter = new RegExp(`(${patches.map((p) => p.file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|")})$`);
          b.onLoad({ filter }, async (args) => {
            const patch = byPath.get(args.path);
            let text = await Bun.file(args.path).text();
            if (!patch) return { contents: text, loader: "ts" };
            for (const [find, replacement] of patch.replace) {
              if (!text.includes(find)) throw new Error(`bench: ${patch.file} no longer contains ${JSON.stringify(find)}; update bench/lib/build.ts`);
              text = text.replaceAll(find, replacement);
            }
            return { contents: text + (patch.append ?? ""), loader: "ts" };
          });
        },
      },
    ],
  });
  if (!result.success) throw new AggregateError(result.logs, `building ${outfile} failed`);
}
