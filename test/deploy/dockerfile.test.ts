// deploy/Dockerfile without a Docker engine: its stages, the distroless nonroot
// runtime, that every path the runtime copies exists in the build stage's
// output, that the context the .dockerignore lets through holds what the build
// copies, that ENTRYPOINT/CMD are real CLI flags, and the build stage's own
// build command, run here.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { findTarget } from "../../build.ts";
import { BUN, cliAccepts, REPO, run } from "./helpers.ts";

const DOCKERFILE = join(REPO, "deploy/Dockerfile");
const DOCKERIGNORE = join(REPO, "deploy/Dockerfile.dockerignore");

interface Instruction {
  cmd: string;
  /** the text after the instruction name, continuation lines joined */
  rest: string;
  /** --flag=value options (COPY --from, --chown, FROM --platform) */
  flags: Record<string, string>;
  /** the arguments after the flags: the JSON array in exec form, else split on spaces */
  args: string[];
  line: number;
}

interface Stage {
  image: string;
  name?: string;
  platform?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { stages: Stage[]; syntax?: string } {
  const lines = text.split("\n");
  const stages: Stage[] = [];
  const syntax = /^#\s*syntax=(\S+)/.exec(lines[0] ?? "")?.[1];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    while (line.endsWith("\\")) {
      line = line.slice(0, -1);
      // Comment lines inside a continued instruction are skipped, as Docker does.
      while (++i < lines.length && lines[i]!.trim().startsWith("#"));
      line += ` ${(lines[i] ?? "").trim()}`;
    }
    const [, cmd = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const flags: Record<string, string> = {};
    let body = rest;
    for (let m = /^--([a-z-]+)=(\S+)\s+/.exec(body); m; m = /^--([a-z-]+)=(\S+)\s+/.exec(body)) {
      flags[m[1]!] = m[2]!;
      body = body.slice(m[0].length);
    }
    const args = body.startsWith("[") ? (JSON.parse(body) as string[]) : body.split(/\s+/).filter(Boolean);
    const ins: Instruction = { cmd: cmd.toUpperCase(), rest, flags, args, line: start + 1 };
    if (ins.cmd === "FROM") {
      const as = args.findIndex((a) => a.toUpperCase() === "AS");
      stages.push({ image: args[0]!, ...(as > 0 ? { name: args[as + 1] } : {}), ...(flags.platform ? { platform: flags.platform } : {}), instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`line ${ins.line}: ${ins.cmd} before FROM`);
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { stages, ...(syntax ? { syntax } : {}) };
}

/** Docker's .dockerignore rules: patterns in order, the last match wins, `!` re-includes; a pattern matching a parent directory matches what is under it. */
function ignored(patterns: string[], path: string): boolean {
  let excluded = false;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = posix.normalize(negated ? raw.slice(1) : raw).replace(/\/$/, "");
    const parts = path.split("/");
    const matches = parts.some((_, i) => new Bun.Glob(pattern).match(parts.slice(0, i + 1).join("/")));
    if (matches) excluded = !negated;
  }
  return excluded;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const { stages, syntax } = parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
const ignorePatterns = readFileSync(DOCKERIGNORE, "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));
const buildStage = stages.find((s) => s.name === "build")!;
const runtime = stages.at(-1)!;

function all(stage: Stage, cmd: string): Instruction[] {
  return stage.instructions.filter((i) => i.cmd === cmd);
}

function last(stage: Stage, cmd: string): Instruction | undefined {
  return all(stage, cmd).at(-1);
}

/**
 * What the build stage's filesystem holds that the runtime can copy: where each
 * context path lands (COPY), and what the RUN steps make (--outfile, mkdir -p).
 * Maps an absolute path in the stage to its source: "context:<repo path>" or "run".
 */
function buildStageOutputs(): Map<string, string> {
  const out = new Map<string, string>();
  let workdir = "/";
  for (const ins of buildStage.instructions) {
    if (ins.cmd === "WORKDIR") workdir = posix.resolve(workdir, ins.args[0]!);
    if (ins.cmd === "COPY" && !ins.flags.from) {
      const dest = ins.args.at(-1)!;
      for (const src of ins.args.slice(0, -1)) {
        const target = posix.resolve(workdir, dest.endsWith("/") && !src.endsWith("/") ? posix.join(dest, posix.basename(src)) : dest);
        out.set(target, `context:${src.replace(/\/$/, "")}`);
      }
    }
    if (ins.cmd === "RUN") {
      for (const m of ins.rest.matchAll(/--outfile\s+(\S+)/g)) out.set(posix.resolve(workdir, m[1]!), "run");
      // mkdir -p makes the parents too.
      for (const m of ins.rest.matchAll(/mkdir\s+-p\s+((?:[^\s&;|]+\s*)+)/g)) {
        for (const p of m[1]!.trim().split(/\s+/)) {
          for (let dir = posix.resolve(workdir, p); dir !== "/"; dir = posix.dirname(dir)) if (!out.has(dir)) out.set(dir, "run");
        }
      }
    }
  }
  return out;
}

/** Where a path of the build stage comes from, following a COPY of a directory. */
function sourceOf(outputs: Map<string, string>, path: string): string | undefined {
  const clean = path.replace(/\/$/, "");
  for (const [at, source] of [...outputs].sort((a, b) => b[0].length - a[0].length)) {
    if (clean === at) return source;
    if (clean.startsWith(`${at}/`)) return source === "run" ? "run" : `${source}/${clean.slice(at.length + 1)}`;
  }
  return undefined;
}

describe("deploy/Dockerfile", () => {
  test("two stages: a build stage on the builder's platform, then distroless base-nossl nonroot", () => {
    expect(syntax).toBe("docker/dockerfile:1");
    expect(stages.length).toBe(2);
    expect(buildStage).toBe(stages[0]!);
    expect(buildStage.image).toMatch(/^(node:\d+|oven\/bun:)/);
    expect(buildStage.platform).toBe("$BUILDPLATFORM");
    expect(runtime.image).toBe("gcr.io/distroless/base-nossl-debian12:nonroot");
  });

  test("the runtime runs as 65532, the binary is the entrypoint, CMD runs the agent on the copied config", () => {
    expect(last(runtime, "USER")?.args[0]).toMatch(/^65532(:65532)?$/);
    const entrypoint = last(runtime, "ENTRYPOINT")!;
    expect(entrypoint.rest.startsWith("[")).toBe(true); // exec form: the agent is pid 1 and gets SIGTERM
    expect(entrypoint.args).toEqual(["/usr/local/bin/tapio-collectors"]);
    const cmd = last(runtime, "CMD")!;
    expect(cmd.rest.startsWith("[")).toBe(true);
    const r = cliAccepts(cmd.args);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const config = cmd.args[cmd.args.indexOf("--config") + 1];
    const copied = all(runtime, "COPY").map((c) => c.args.at(-1));
    expect(copied).toContain(entrypoint.args[0]);
    expect(copied).toContain(config);
    // TAPIO_CONFIG makes the other commands (validate, print-config) find the same file.
    expect(last(runtime, "ENV")?.rest).toContain(`TAPIO_CONFIG=${config}`);
    expect(all(runtime, "HEALTHCHECK")).toEqual([]);
  });

  test("every path the runtime copies from the build stage is made there, from a context file that exists", () => {
    const outputs = buildStageOutputs();
    const copies = all(runtime, "COPY").filter((c) => c.flags.from !== undefined);
    expect(copies.length).toBeGreaterThanOrEqual(3);
    for (const copy of copies) {
      expect(copy.flags.from).toBe("build");
      for (const src of copy.args.slice(0, -1)) {
        const source = sourceOf(outputs, src);
        expect({ src, made: source !== undefined }).toEqual({ src, made: true });
        if (source!.startsWith("context:")) {
          const file = source!.slice("context:".length);
          expect({ file, exists: existsSync(join(REPO, file)) }).toEqual({ file, exists: true });
          expect({ file, ignored: ignored(ignorePatterns, file) }).toEqual({ file, ignored: false });
        }
      }
    }
    // The spool directory is the agent's.
    const spool = copies.find((c) => c.args.at(-1) === "/var/lib/");
    expect(spool?.flags.chown).toBe("65532:65532");
    expect(outputs.has("/rootfs/var/lib/tapio-collectors")).toBe(true);
  });

  test("the context after .dockerignore holds every file the build stage copies, and not node_modules, dist or .git", () => {
    for (const copy of all(buildStage, "COPY")) {
      for (const src of copy.args.slice(0, -1)) {
        const path = join(REPO, src);
        expect({ src, exists: existsSync(path) }).toEqual({ src, exists: true });
        const files = statSync(path).isDirectory() ? filesUnder(path).map((f) => relative(REPO, f)) : [src];
        const dropped = files.filter((f) => ignored(ignorePatterns, f));
        expect({ src, dropped }).toEqual({ src, dropped: [] });
      }
    }
    for (const path of ["node_modules/bun/package.json", "dist/tapio-collectors", ".git/HEAD", "test/deploy/dockerfile.test.ts", "README.md"]) {
      expect({ path, ignored: ignored(ignorePatterns, path) }).toEqual({ path, ignored: true });
    }
  });

  test("npm ci installs the Bun that package.json pins (build.ts refuses any other)", () => {
    const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
    expect(lock.packages["node_modules/bun"]?.version).toBe(pkg.devDependencies.bun);
    expect(all(buildStage, "RUN").some((r) => /\bnpm ci\b/.test(r.rest))).toBe(true);
  });

  describe("the build stage's build command", () => {
    const ins = all(buildStage, "RUN").find((r) => r.rest.includes("build.ts"))!;
    const command = /node_modules\/\.bin\/bun build\.ts ([^&;]*)/.exec(ins.rest)![1]!.trim();
    const tmp = mkdtempSync(join(tmpdir(), "tapio-dockerfile-"));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    test("names a target build.ts knows for each platform buildx passes (TARGETARCH amd64, arm64)", () => {
      expect(command).toContain("${TARGETARCH}");
      expect(findTarget(/--target\s+(\S+)/.exec(command)![1]!.replace("${TARGETARCH}", "amd64")).name).toBe("linux-x64");
      expect(findTarget(/--target\s+(\S+)/.exec(command)![1]!.replace("${TARGETARCH}", "arm64")).name).toBe("linux-arm64");
    });

    test(`runs here for linux/${process.arch === "arm64" ? "arm64" : "amd64"} and makes a binary that starts`, () => {
      const arch = process.arch === "arm64" ? "arm64" : "amd64";
      const args = command.replace("${TARGETARCH}", arch).replace(/--outfile\s+\S+/, `--outfile ${join(tmp, "tapio-collectors")}`).split(/\s+/);
      const r = run([BUN, "build.ts", ...args], { timeoutMs: 120_000 });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const version = run([join(tmp, "tapio-collectors"), "version"]);
      expect(version.stdout).toContain(`tapio-collectors ${pkg.version} (bun ${pkg.devDependencies.bun}, linux/${process.arch})`);
    });
  });
});
