// build.ts: the host binary as before, single targets, and the release set
// (linux-x64, linux-arm64 and their musl variants) with SHA256SUMS. Each binary
// is checked with file(1); the x64 ones run here, the arm64 one under
// qemu-user when it is installed (Debian: qemu-user-static and libc6:arm64).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { cachedRuntime, findTarget, RELEASE_TARGETS, TARGETS } from "../../build.ts";
import { BUN, build, run, which } from "./helpers.ts";

const VERSION_LINE = (arch: string) => `tapio-collectors ${pkg.version} (bun ${pkg.devDependencies.bun}, linux/${arch})\n`;

const tmp = mkdtempSync(join(tmpdir(), "tapio-binaries-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What file(1) says of each target: CPU and dynamic loader. */
const FILE_SAYS: Record<string, RegExp> = {
  "linux-x64": /ELF 64-bit LSB executable, x86-64.*interpreter \/lib64\/ld-linux-x86-64\.so\.2/,
  "linux-arm64": /ELF 64-bit LSB executable, ARM aarch64.*interpreter \/lib\/ld-linux-aarch64\.so\.1/,
  "linux-x64-musl": /ELF 64-bit LSB executable, x86-64.*interpreter \/lib\/ld-musl-x86_64\.so\.1/,
  "linux-arm64-musl": /ELF 64-bit LSB executable, ARM aarch64.*interpreter \/lib\/ld-musl-aarch64\.so\.1/,
};

describe("build.ts targets", () => {
  test("names, Docker's TARGETARCH spellings and bun- prefixes resolve; unknown ones are refused with the list", () => {
    expect(findTarget("linux-amd64").name).toBe("linux-x64");
    expect(findTarget("linux-aarch64").name).toBe("linux-arm64");
    expect(findTarget("bun-linux-arm64-musl").name).toBe("linux-arm64-musl");
    expect(() => findTarget("linux-riscv64")).toThrow(/known: linux-x64, linux-arm64/);
    expect(RELEASE_TARGETS).toEqual(["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl"]);
    for (const t of TARGETS) expect(t.npm).toMatch(/^@oven\/bun-linux-(x64|aarch64)/);
  });

  test("--outfile with several targets and unknown flags are errors", () => {
    const several = run([BUN, "build.ts", "--target", "linux-x64", "--target", "linux-arm64", "--outfile", join(tmp, "x")]);
    expect(several.code).toBe(1);
    expect(several.stderr).toContain("--outfile names one binary");
    expect(run([BUN, "build.ts", "--bogus"]).code).not.toBe(0);
  });

  test("no target: this machine's binary, as `bun build.ts` has always built (here with --outfile)", () => {
    const out = join(tmp, "host", "tapio-collectors");
    build(["--outfile", out]);
    expect(run([out, "version"]).stdout).toBe(VERSION_LINE(process.arch));
    expect(run(["file", out]).stdout).toMatch(process.arch === "x64" ? FILE_SAYS["linux-x64"]! : FILE_SAYS["linux-arm64"]!);
  });
});

// The foreign runtimes come from the npm registry once; without them in the cache
// (a fresh checkout), building the release set needs the registry.
const foreign = TARGETS.filter((t) => RELEASE_TARGETS.includes(t.name) && !(t.name === `linux-${process.arch}`));
const uncached = foreign.filter((t) => !existsSync(cachedRuntime(t, pkg.devDependencies.bun)));
const skipRelease = uncached.length > 0 ? `runtimes not fetched yet: ${uncached.map((t) => t.npm).join(", ")}; run \`npm run build:release\` once (npm registry)` : undefined;

if (skipRelease) test.skip(`the release set (skipped: ${skipRelease})`, () => {});

describe.skipIf(skipRelease !== undefined)("bun build.ts --all", () => {
  const outdir = join(tmp, "release");
  let built = false;
  const buildOnce = () => {
    if (!built) build(["--all", "--outdir", outdir]);
    built = true;
  };

  test("builds the four release binaries and SHA256SUMS, nothing else (the source map is inside each binary)", () => {
    buildOnce();
    expect(readdirSync(outdir).sort()).toEqual([...RELEASE_TARGETS.map((t) => `tapio-collectors-${t}`), "SHA256SUMS"].sort());
  });

  test("SHA256SUMS is in sha256sum format and sha256sum -c accepts it", () => {
    buildOnce();
    const lines = readFileSync(join(outdir, "SHA256SUMS"), "utf8").trimEnd().split("\n");
    expect(lines.map((l) => l.replace(/^[0-9a-f]{64} {2}/, ""))).toEqual(RELEASE_TARGETS.map((t) => `tapio-collectors-${t}`));
    const check = run(["sha256sum", "-c", "SHA256SUMS"], { cwd: outdir });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: RELEASE_TARGETS.map((t) => `tapio-collectors-${t}: OK\n`).join("") });
  });

  test.each(RELEASE_TARGETS.map((t) => [t]))("file(1): %s is an executable for its CPU and libc", (target) => {
    buildOnce();
    expect(run(["file", join(outdir, `tapio-collectors-${target}`)]).stdout).toMatch(FILE_SAYS[target]!);
  });

  test.skipIf(process.arch !== "x64")("linux-x64 runs here", () => {
    buildOnce();
    expect(run([join(outdir, "tapio-collectors-linux-x64"), "version"]).stdout).toBe(VERSION_LINE("x64"));
  });

  // Bun's musl builds link libstdc++ dynamically (Alpine: apk add libstdc++ libgcc); Debian has no musl libstdc++.
  const muslRunnable = existsSync("/lib/ld-musl-x86_64.so.1") && ["/usr/lib/libstdc++.so.6", "/lib/libstdc++.so.6"].some(existsSync);
  test.skipIf(process.arch !== "x64" || !muslRunnable)(
    `linux-x64-musl runs here${muslRunnable ? "" : " (skipped: needs musl's loader and libstdc++, as on Alpine)"}`,
    () => {
      buildOnce();
      expect(run([join(outdir, "tapio-collectors-linux-x64-musl"), "version"]).stdout).toBe(VERSION_LINE("x64"));
    },
  );

  const qemu = which("qemu-aarch64-static", "qemu-aarch64");
  const arm64Libc = existsSync("/lib/ld-linux-aarch64.so.1");
  const qemuMissing = !qemu ? "qemu-user-static is not installed" : !arm64Libc ? "no arm64 glibc (dpkg --add-architecture arm64; apt-get install libc6:arm64)" : undefined;
  test.skipIf(qemuMissing !== undefined)(`linux-arm64 runs under qemu-user${qemuMissing ? ` (skipped: ${qemuMissing})` : ""}`, () => {
    buildOnce();
    const r = run([qemu!, join(outdir, "tapio-collectors-linux-arm64"), "version"], { timeoutMs: 60_000 });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: VERSION_LINE("arm64") });
  });
});
