// The x64 binary in a root that holds what a distroless nonroot image gives it and
// nothing more: the binary, the glibc libraries `ldd` lists (with their symlinks and
// the dynamic loader), /etc/passwd with nonroot (65532), and a mounted /proc; no
// shell, no /tmp, no /dev, no /etc/ssl. It runs as uid 65532 with chroot --userspec.
//
// /proc is mounted inside a private mount (and PID) namespace made by unshare, so
// the mount cannot outlive the test even if the test process is killed; it is also
// unmounted explicitly when each command ends, and afterAll unmounts anything left
// under the root before removing it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, posix } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { startFakeKubelet, type FakeKubelet } from "../collectors/kubelet/fake-kubelet.ts";
import { startNatsServer, stopAllNatsServers } from "../helpers/nats-server.ts";
import { testPki } from "../helpers/tls.ts";
import { BUN, build, REPO, run, which, type Run } from "./helpers.ts";

const NONROOT = 65532;
const isRoot = process.getuid?.() === 0;
const unshare = which("unshare");
const chroot = which("chroot");
const ldd = which("ldd");
const missingTools = [!unshare && "unshare", !chroot && "chroot", !ldd && "ldd"].filter(Boolean);
const skipReason = !isRoot
  ? "not root: chroot and mount -t proc need root (run the tests as root, e.g. in CI's container, to prove the distroless run)"
  : process.arch !== "x64"
    ? `the host is ${process.arch}: this test runs the linux-x64 binary`
    : missingTools.length > 0
      ? `missing ${missingTools.join(", ")}`
      : undefined;

if (skipReason) {
  test.skip(`distroless chroot run (skipped: ${skipReason})`, () => {});
}

/** The file at `path` in the root, with every symlink on the way (a merged-/usr /lib, the loader's link) recreated as it is on the host. */
function materialize(root: string, path: string, depth = 0): void {
  if (depth > 40) throw new Error(`too many symlinks resolving ${path}`);
  const parts = path.split("/").filter(Boolean);
  let current = "/";
  for (let i = 0; i < parts.length; i++) {
    const next = posix.join(current, parts[i]!);
    const inRoot = join(root, next);
    const stat = lstatSync(next);
    if (stat.isSymbolicLink()) {
      const link = readlinkSync(next);
      if (!existsSync(inRoot) && !lstatSafe(inRoot)) {
        mkdirSync(dirname(inRoot), { recursive: true });
        symlinkSync(link, inRoot);
      }
      // Continue from the link's target, then the rest of the path.
      const target = isAbsolute(link) ? link : posix.join(current, link);
      materialize(root, posix.join(target, ...parts.slice(i + 1)), depth + 1);
      return;
    }
    if (i === parts.length - 1) {
      if (!existsSync(inRoot)) {
        mkdirSync(dirname(inRoot), { recursive: true });
        copyFileSync(next, inRoot);
        chmodSync(inRoot, stat.mode & 0o7777);
      }
    } else if (!lstatSafe(inRoot)) {
      mkdirSync(inRoot, { mode: 0o755 });
    }
    current = next;
  }
}

function lstatSafe(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The libraries and the loader `ldd` lists for the binary (not the vDSO). */
function sharedLibraries(binary: string): string[] {
  const r = run([ldd!, binary]);
  if (r.code !== 0) throw new Error(`ldd ${binary}: ${r.stderr}`);
  const libs = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]!);
    if (/=>\s*not found/.test(line)) throw new Error(`ldd: ${line.trim()}`);
  }
  return [...libs];
}

function mountsUnder(root: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && (m === root || m.startsWith(`${root}/`)));
}

describe.skipIf(skipReason !== undefined)("the linux-x64 binary in a distroless-like root, as uid 65532", () => {
  let root = "";
  let libraries: string[] = [];
  let kubelet: FakeKubelet | undefined;

  /**
   * Runs the binary in the root as 65532:65532 with a fresh /proc, in its own mount and PID
   * namespaces. Asynchronous: servers of this test process (the fake kubelet) must keep answering.
   */
  async function inRoot(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
    // $0 is the root, $1 chroot, the rest the agent's arguments.
    const script = 'root="$0"; chroot="$1"; shift; mount -t proc proc "$root/proc" || exit 125; "$chroot" --userspec=65532:65532 "$root" /tapio-collectors "$@"; code=$?; umount "$root/proc"; exit $code';
    // The same environment a container gets: nothing from the test process.
    const containerEnv = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/home/nonroot", ...env };
    const proc = Bun.spawn([unshare!, "--mount", "--propagation", "private", "--pid", "--fork", "/bin/sh", "-c", script, root, chroot!, ...args], {
      env: containerEnv,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "tapio-distroless-"));
    chmodSync(root, 0o755);
    const binary = join(root, "tapio-collectors");
    build(["--target", "linux-x64", "--outfile", binary]);
    libraries = sharedLibraries(binary);
    for (const lib of libraries) materialize(root, lib);
    mkdirSync(join(root, "etc"), { mode: 0o755 });
    writeFileSync(join(root, "etc/passwd"), `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`);
    mkdirSync(join(root, "proc"), { mode: 0o555 });
    // The config and, for the spool, the one directory the agent may write (the image's /var/lib/tapio-collectors).
    mkdirSync(join(root, "etc/tapio"), { recursive: true });
    copyFileSync(join(REPO, "configs/collectors.yaml"), join(root, "etc/tapio/collectors.yaml"));
    mkdirSync(join(root, "var/lib/tapio-collectors"), { recursive: true });
    chownSync(join(root, "var/lib/tapio-collectors"), NONROOT, NONROOT);
  });

  afterAll(async () => {
    kubelet?.stop();
    await stopAllNatsServers();
    if (!root) return;
    // Nothing should be mounted here (the namespace took its mount with it); unmount whatever is.
    for (const mount of mountsUnder(root).reverse()) run(["umount", "-l", mount]);
    if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
    else console.error(`left ${root} in place: still mounted: ${mountsUnder(root).join(", ")}`);
  });

  test("the root holds only the binary, the glibc libraries, /etc/passwd, the config and the spool directory", () => {
    const listing = run(["find", root, "-mindepth", "1", "-not", "-type", "d"]).stdout.split("\n").filter(Boolean).map((p) => p.slice(root.length)).sort();
    const expected = ["/tapio-collectors", "/etc/passwd", "/etc/tapio/collectors.yaml"];
    const rest = listing.filter((p) => !expected.includes(p));
    // Only libraries, their symlinks and the loader remain: libc, libm, libpthread, libdl, ld-linux.
    for (const p of rest) expect(p).toMatch(/\/(lib|lib64|usr)\b.*\/(libc|libm|libpthread|libdl|ld-linux-x86-64)\.so|^\/(lib|lib64)$/);
    expect(libraries.some((l) => l.includes("ld-linux-x86-64.so"))).toBe(true);
    expect(existsSync(join(root, "bin/sh"))).toBe(false);
    expect(existsSync(join(root, "etc/ssl"))).toBe(false);
  });

  test("version", async () => {
    const r = await inRoot(["version"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toBe(`tapio-collectors ${pkg.version} (bun ${pkg.devDependencies.bun}, linux/x64)\n`);
  });

  test("it runs as uid 65532: the root-owned /etc/tapio is not writable for it (the agent runs without a spool and says why), and no mount is left behind", async () => {
    writeFileSync(join(root, "etc/tapio/readonly.yaml"), "nats:\n  url: nats://127.0.0.1:1\nspool:\n  path: /etc/tapio/spool.db\nhttp:\n  enabled: false\n");
    const r = await inRoot(["--config", "/etc/tapio/readonly.yaml", "--once"]);
    expect(r.stdout).toContain("running WITHOUT a spool");
    expect(r.stdout).toContain("uid 65532 may not write /etc/tapio");
    expect(existsSync(join(root, "etc/tapio/spool.db"))).toBe(false);
    expect(mountsUnder(root)).toEqual([]);
  });

  test("validate the image's default config (configs/collectors.yaml)", async () => {
    const r = await inRoot(["validate", "--config", "/etc/tapio/collectors.yaml"]);
    expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining("valid") });
  });

  test("--once --dry-run: synthetic count 5 prints 5 NDJSON events", async () => {
    writeFileSync(
      join(root, "etc/tapio/once.yaml"),
      "spool:\n  path: /var/lib/tapio-collectors/dry-run.db\nhttp:\n  enabled: false\ncollectors:\n  synthetic:\n    config:\n      count: 5\n      rate: 0\n",
    );
    const r = await inRoot(["--config", "/etc/tapio/once.yaml", "--once", "--dry-run"]);
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    const lines = r.stdout.split("\n").filter(Boolean);
    expect(lines.length).toBe(5);
    const events = lines.map((l) => JSON.parse(l) as { type: string; source: string; event_id: string; event_data: { custom: { seq: string } } });
    expect(events.map((e) => e.source)).toEqual(Array(5).fill("synthetic"));
    expect(events.map((e) => e.event_data.custom.seq).sort()).toEqual(["0", "1", "2", "3", "4"]);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(5);
  });

  test("--once to a real NATS server, with the SQLite spool in the agent's directory", async () => {
    const nats = await startNatsServer();
    writeFileSync(
      join(root, "etc/tapio/nats.yaml"),
      `nats:\n  url: ${nats.url}\n  mode: jetstream\n  stream:\n    name: DISTROLESS\nspool:\n  path: /var/lib/tapio-collectors/spool.db\nhttp:\n  listen: "127.0.0.1:0"\ncollectors:\n  synthetic:\n    config:\n      count: 5\n      rate: 0\n`,
    );
    const r = await inRoot(["--config", "/etc/tapio/nats.yaml", "--once"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/shutdown complete: 5 event\(s\) published, none left/);
    expect(existsSync(join(root, "var/lib/tapio-collectors/spool.db"))).toBe(true);
    expect(lstatSync(join(root, "var/lib/tapio-collectors/spool.db")).uid).toBe(NONROOT);
  });

  test("TLS with a CA file and no /etc/ssl: the kubelet collector's --once round against an HTTPS kubelet", async () => {
    const pki = testPki();
    kubelet = startFakeKubelet("distroless-token");
    mkdirSync(join(root, "var/run/secrets"), { recursive: true });
    copyFileSync(pki.caFile, join(root, "var/run/secrets/ca.crt"));
    writeFileSync(join(root, "var/run/secrets/token"), "distroless-token\n");
    writeFileSync(
      join(root, "etc/tapio/kubelet.yaml"),
      `http:\n  enabled: false\ncollectors:\n  kubelet:\n    config:\n      address: ${kubelet.url}\n      token_file: /var/run/secrets/token\n      ca_file: /var/run/secrets/ca.crt\n`,
    );
    const r = await inRoot(["--config", "/etc/tapio/kubelet.yaml", "--once", "--dry-run"], { NODE_NAME: "datagen-1-35" });
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(kubelet.requests.map((q) => q.path)).toContain("/pods");
    expect(kubelet.requests.every((q) => q.authorization === "Bearer distroless-token")).toBe(true);
    const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { source: string });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.source === "kubelet")).toBe(true);
  });

  test("the exec collector runs a program with no shell in the root: by path and looked up on PATH, with only PATH, HOME and its env", async () => {
    // The exec tests' program, compiled: a binary like any vendor's node check. The root has no
    // /dev/null either: the program's stdin is a pipe closed at once, not /dev/null.
    const program = join(root, "usr/local/bin/nodecheck");
    mkdirSync(dirname(program), { recursive: true });
    const compiled = run([BUN, "build", "--compile", join(REPO, "test/collectors/exec/program.ts"), "--outfile", program]);
    if (compiled.code !== 0) throw new Error(`bun build --compile: ${compiled.stderr}`);
    chmodSync(program, 0o755);
    for (const command of ["/usr/local/bin/nodecheck", "nodecheck"]) {
      writeFileSync(
        join(root, "etc/tapio/exec.yaml"),
        `http:\n  enabled: false\ncollectors:\n  exec:\n    config:\n      command: ${JSON.stringify([command, "env", JSON.stringify({ type: "node.check_ok" })])}\n      env: { LEVEL: "2" }\n`,
      );
      const r = await inRoot(["--config", "/etc/tapio/exec.yaml", "--once", "--dry-run"], { NATS_PASSWORD: "not-for-programs" });
      expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
      const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; source: string; event_data: { custom?: Record<string, string> } });
      expect(events.map((e) => [e.type, e.source])).toEqual([["test.env", "exec"], ["node.check_ok", "exec"]]);
      expect(events[0]!.event_data.custom).toEqual({ PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/home/nonroot", LEVEL: "2" });
    }
  }, 60_000);
});
