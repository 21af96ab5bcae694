// Builds the single executable.
//
//   bun build.ts [--outfile PATH]                  this machine's binary: dist/tapio-collectors
//   bun build.ts --target T [--target T ...]       dist/tapio-collectors-T (--outfile with one target)
//   bun build.ts --all                             the release set and dist/SHA256SUMS
//
// Targets: linux-x64, linux-arm64, linux-x64-musl, linux-arm64-musl (the --all set) and
// linux-x64-baseline (x64 CPUs without AVX2); amd64 and aarch64 are accepted for x64 and arm64,
// so a Dockerfile can pass linux-$TARGETARCH.
//
// Bytecode for fast start; the binary never autoloads .env or bunfig.toml from
// the directory it is started in (a user's cwd must not change the agent).
//
// A binary is this build's code with a Bun runtime for the target appended.
// Bun would download a foreign runtime from GitHub; instead it is taken from the
// npm registry, where each runtime is a package (@oven/bun-linux-aarch64, ...),
// with `npm pack` at exactly the Bun version this build runs (the bytecode is
// only valid for the runtime version that compiled it), and cached in
// ~/.cache/tapio-collectors/bun-runtimes ($XDG_CACHE_HOME, or $TAPIO_BUN_RUNTIMES).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };

type Arch = "x64" | "arm64";
type Libc = "glibc" | "musl";

export interface Target {
  /** the name in dist/tapio-collectors-<name> */
  readonly name: string;
  readonly arch: Arch;
  readonly libc: Libc;
  /** Bun's compile target */
  readonly compile: Bun.Build.CompileTarget;
  /** the npm package that holds this runtime as bin/bun */
  readonly npm: string;
  /** runs on x64 CPUs without AVX2 */
  readonly baseline?: boolean;
}

export const TARGETS: readonly Target[] = [
  { name: "linux-x64", arch: "x64", libc: "glibc", compile: "bun-linux-x64", npm: "@oven/bun-linux-x64" },
  { name: "linux-arm64", arch: "arm64", libc: "glibc", compile: "bun-linux-arm64", npm: "@oven/bun-linux-aarch64" },
  { name: "linux-x64-musl", arch: "x64", libc: "musl", compile: "bun-linux-x64-musl", npm: "@oven/bun-linux-x64-musl" },
  { name: "linux-arm64-musl", arch: "arm64", libc: "musl", compile: "bun-linux-arm64-musl", npm: "@oven/bun-linux-aarch64-musl" },
  { name: "linux-x64-baseline", arch: "x64", libc: "glibc", compile: "bun-linux-x64-baseline", npm: "@oven/bun-linux-x64-baseline", baseline: true },
];

/** What --all builds. */
export const RELEASE_TARGETS: readonly string[] = ["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl"];

const ALIASES: Record<string, string> = { amd64: "x64", aarch64: "arm64" };

export function findTarget(name: string): Target {
  const normalized = name.replace(/^bun-/, "").split("-").map((part) => ALIASES[part] ?? part).join("-");
  const target = TARGETS.find((t) => t.name === normalized);
  if (!target) throw new Error(`unknown target "${name}"; known: ${TARGETS.map((t) => t.name).join(", ")} (amd64 and aarch64 are accepted too)`);
  return target;
}

/** The Bun version this project pins (devDependencies.bun), which must be the one running this build. */
function pinnedBunVersion(): string {
  const pinned = pkg.devDependencies.bun;
  if (!/^\d+\.\d+\.\d+$/.test(pinned)) throw new Error(`package.json pins bun as "${pinned}"; release builds need an exact version`);
  if (pinned !== Bun.version) {
    throw new Error(`this build runs Bun ${Bun.version} but package.json pins ${pinned}: run node_modules/.bin/bun build.ts (bytecode is only valid for the runtime that compiled it)`);
  }
  return pinned;
}

function hostLibc(): Libc {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? "glibc" : "musl";
}

const ELF_MACHINE: Record<Arch, number> = { x64: 0x3e, arm64: 0xb7 };

/** Checks that a runtime binary is a Linux ELF executable for the target's CPU and libc. */
export function checkRuntime(path: string, target: Target): void {
  const fd = openSync(path, "r");
  const head = Buffer.alloc(64 * 1024);
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const isElf = head.readUInt32BE(0) === 0x7f454c46;
  const machine = head.readUInt16LE(18);
  if (!isElf || machine !== ELF_MACHINE[target.arch]) {
    throw new Error(`${path} is not a Linux ${target.arch} executable (ELF machine 0x${machine.toString(16)})`);
  }
  // PT_INTERP names the dynamic loader: ld-musl-* for musl, ld-linux-* for glibc.
  const musl = head.includes("/lib/ld-musl-");
  if (musl !== (target.libc === "musl")) throw new Error(`${path} is a ${musl ? "musl" : "glibc"} binary, expected ${target.libc}`);
}

/** Outside node_modules, so `npm ci` does not throw the runtimes away. */
export function runtimeCache(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.TAPIO_BUN_RUNTIMES) return resolve(env.TAPIO_BUN_RUNTIMES);
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(base, "tapio-collectors", "bun-runtimes");
}

/** Where the runtime of `target` is kept once fetched. */
export function cachedRuntime(target: Target, version: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return join(runtimeCache(env), `${basename(target.npm)}-${version}`, "bun");
}

/**
 * The Bun runtime to put in the target's binary: the running Bun when it is
 * one (same CPU, libc and build), else the npm package's bin/bun, fetched once.
 */
function runtimeFor(target: Target, version: string): string {
  // npm installed the running Bun from the target's own package (not, say, the baseline build
  // on a CPU without AVX2): then it is this target's runtime.
  const installedFrom = join(dirname(process.execPath), "..", "..", "@oven", basename(target.npm), "package.json");
  if (target.arch === process.arch && target.libc === hostLibc() && existsSync(installedFrom)) return process.execPath;
  const bin = cachedRuntime(target, version);
  const dir = dirname(bin);
  if (existsSync(bin)) {
    checkRuntime(bin, target);
    return bin;
  }
  mkdirSync(runtimeCache(), { recursive: true });
  const work = mkdtempSync(join(runtimeCache(), ".fetch-"));
  try {
    const spec = `${target.npm}@${version}`;
    console.log(`fetching the ${target.name} runtime: npm pack ${spec}`);
    let packed: { filename: string; integrity: string }[];
    try {
      // npm checks the tarball against the registry's sha512 integrity.
      packed = JSON.parse(execFileSync("npm", ["pack", spec, "--json", "--pack-destination", work], { cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
    } catch (err) {
      throw new Error(`cannot fetch ${spec} with npm pack (is npm installed and the npm registry reachable?): ${(err as Error).message}`);
    }
    const tarball = join(work, packed[0]!.filename);
    execFileSync("tar", ["-xzf", tarball, "-C", work, "package/bin/bun"]);
    const extracted = join(work, "package", "bin", "bun");
    checkRuntime(extracted, target);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "INTEGRITY"), `${spec} ${packed[0]!.integrity}\n`);
    renameSync(extracted, bin);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The scripts the agent starts as Workers. In the binary each is at
 * /$bunfs/root/<its path under src/, as .js> (src/ is the entry points' root),
 * where the code that starts it looks (import.meta.url names the source file).
 */
export const WORKER_ENTRYPOINTS: readonly string[] = ["src/collectors/kernel/kmsg-watch-worker.ts", "src/collectors/memory/poller-worker.ts", "src/collectors/process/connector-worker.ts"];

async function compile(outfile: string, target?: { compile: Bun.Build.CompileTarget; executablePath: string | undefined }): Promise<void> {
  const started = performance.now();
  mkdirSync(dirname(resolve(outfile)), { recursive: true });
  // Bun.build throws an AggregateError of BuildMessages on a failed bundle: show them, not just "Bundle failed".
  const result = await Bun.build({
    // A Worker's script is only in the binary when it is an entry point of its own.
    entrypoints: ["src/main.ts", ...WORKER_ENTRYPOINTS],
    compile: {
      outfile,
      ...(target ? { target: target.compile } : {}),
      ...(target?.executablePath ? { executablePath: target.executablePath } : {}),
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
    bytecode: true,
    minify: true,
    sourcemap: "inline",
    target: "bun",
  }).catch((err: unknown) => {
    for (const log of err instanceof AggregateError ? err.errors : [err]) console.error(log);
    throw new Error(`building ${outfile} failed`);
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`building ${outfile} failed`);
  }
  const size = Bun.file(outfile).size;
  console.log(`built ${outfile} (${(size / 1048576).toFixed(1)} MiB) in ${Math.round(performance.now() - started)} ms`);
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** sha256sum's format, names relative to the file, so `cd dist && sha256sum -c SHA256SUMS` checks them. */
async function writeChecksums(files: string[], sumsFile: string): Promise<void> {
  const lines: string[] = [];
  for (const file of files) lines.push(`${await sha256(file)}  ${basename(file)}`);
  writeFileSync(sumsFile, `${lines.join("\n")}\n`);
  console.log(`wrote ${sumsFile}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      outfile: { type: "string" },
      outdir: { type: "string", default: "dist" },
      target: { type: "string", multiple: true },
      all: { type: "boolean", default: false },
    },
    strict: true,
  });
  const names = values.all ? [...RELEASE_TARGETS] : (values.target ?? []);
  if (names.length === 0) {
    // This machine's binary, built by the running Bun.
    await compile(values.outfile ?? join(values.outdir!, "tapio-collectors"));
    return;
  }
  if (values.outfile !== undefined && names.length > 1) throw new Error("--outfile names one binary: use it with one --target, or --outdir");
  const targets = names.map(findTarget);
  const version = pinnedBunVersion();
  const built: string[] = [];
  for (const target of targets) {
    const outfile = values.outfile ?? join(values.outdir!, `tapio-collectors-${target.name}`);
    await compile(outfile, { compile: target.compile, executablePath: runtimeFor(target, version) });
    // The source map is inside the binary (stack traces show src/ lines); the copy beside it is not shipped.
    rmSync(`${outfile}.map`, { force: true });
    for (const worker of WORKER_ENTRYPOINTS) rmSync(join(dirname(outfile), `${basename(worker, ".ts")}.js.map`), { force: true });
    built.push(outfile);
  }
  if (values.all) await writeChecksums(built, join(values.outdir!, "SHA256SUMS"));
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`build.ts: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
