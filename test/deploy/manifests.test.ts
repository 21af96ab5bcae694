// The Kubernetes manifests against the agent they deploy: every manifest parses;
// the ConfigMap's config validates with the real loader; ports, host paths, CLI
// flags, env names, the service account, RBAC and the grace period agree with the
// config, the CLI and what the collectors call. Checked on the manifests as written,
// and, where kubectl (or kustomize) is installed, on `kustomize build` of the base
// and of the base with components/kernel-log.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { loadConfigText } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";
import { parseListen } from "../../src/http/server.ts";
import pkg from "../../package.json" with { type: "json" };
import { BUN, cliAccepts, REPO, run, which } from "./helpers.ts";

const K8S = join(REPO, "deploy/kubernetes");
const COMPONENT = join(K8S, "components/kernel-log");

// biome-ignore lint: manifests are untyped YAML
type Doc = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? yamlFiles(path) : /\.ya?ml$/.test(name) ? [path] : [];
    })
    .sort();
}

function parseYaml(text: string, source: string): Doc[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${source}: not YAML documents`);
  const out: Doc[] = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${source}: ${problems.map((p) => p.message).join("; ")}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// The registry the binary is built with: a collector it lacks stops the agent at start.
const registry = builtinRegistry();

// --- the renderings checked ------------------------------------------------

interface Rendering {
  name: string;
  docs: Doc[];
  kernelLog: boolean;
}

const kustomization = parseYaml(readFileSync(join(K8S, "kustomization.yaml"), "utf8"), "kustomization.yaml")[0]!;
const asWritten: Doc[] = (kustomization.resources as string[]).flatMap((file) => parseYaml(readFileSync(join(K8S, file), "utf8"), file));

const kustomizeCommand = ((): string[] | undefined => {
  const kustomize = which("kustomize");
  if (kustomize) return [kustomize, "build"];
  const kubectl = which("kubectl");
  return kubectl ? [kubectl, "kustomize"] : undefined;
})();

function kustomizeBuild(dir: string): Doc[] {
  const r = run([...kustomizeCommand!, dir], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${kustomizeCommand!.join(" ")} ${dir} failed:\n${r.stderr}`);
  return parseYaml(r.stdout, `kustomize build ${relative(REPO, dir)}`);
}

/** An overlay in a temp dir: the base plus components/kernel-log, as the README tells users to write it. */
function kernelLogOverlay(): Doc[] {
  const dir = mkdtempSync(join(tmpdir(), "tapio-overlay-"));
  try {
    writeFileSync(
      join(dir, "kustomization.yaml"),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${relative(dir, K8S)}\ncomponents:\n  - ${relative(dir, COMPONENT)}\n`,
    );
    return kustomizeBuild(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The overlay the README's "Deploy" section tells users to write, with its path to deploy/kubernetes made to fit. */
function readmeOverlay(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n## Deploy\n"));
  const block = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("kind: Kustomization"));
  if (!block) throw new Error("README.md: no kustomization example in the Deploy section");
  return block;
}

function buildReadmeOverlay(withComponent: boolean): Doc[] {
  const dir = mkdtempSync(join(tmpdir(), "tapio-readme-overlay-"));
  try {
    let text = readmeOverlay().replaceAll("../deploy/kubernetes", relative(dir, K8S));
    if (withComponent) text = text.replace(/^# components:\n#(\s+- \S+)/m, "components:\n$1");
    writeFileSync(join(dir, "kustomization.yaml"), text);
    return kustomizeBuild(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const renderings: Rendering[] = [{ name: "manifests as written", docs: asWritten, kernelLog: false }];
if (kustomizeCommand) {
  renderings.push({ name: "kustomize build deploy/kubernetes", docs: kustomizeBuild(K8S), kernelLog: false });
  renderings.push({ name: "kustomize build with components/kernel-log", docs: kernelLogOverlay(), kernelLog: true });
  renderings.push({ name: "the README's overlay", docs: buildReadmeOverlay(false), kernelLog: false });
  renderings.push({ name: "the README's overlay with its kernel-log line uncommented", docs: buildReadmeOverlay(true), kernelLog: true });
}

// --- reading the manifests -------------------------------------------------

function find(docs: Doc[], kind: string): Doc[] {
  return docs.filter((d) => d.kind === kind);
}

function only(docs: Doc[], kind: string): Doc {
  const found = find(docs, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

const AGENT = "tapio-collectors";

function agentContainer(ds: Doc): Doc {
  const c = (ds.spec.template.spec.containers as Doc[]).find((x) => x.name === AGENT);
  if (!c) throw new Error(`the DaemonSet has no container named ${AGENT}`);
  return c;
}

/** What the downward API gives a pod, as sample values. */
const FIELD_SAMPLES: Record<string, string> = {
  "spec.nodeName": "node-a",
  "status.hostIP": "10.0.0.7",
  "status.podIP": "10.244.1.5",
  "metadata.name": "tapio-collectors-abcde",
  "metadata.namespace": "tapio-system",
};

/** The container's environment as the agent sees it in a pod, with sample values for field references. */
function podEnv(c: Doc): Record<string, string> {
  // Kubernetes sets these in every pod (also with enableServiceLinks: false).
  const env: Record<string, string> = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
  for (const e of (c.env ?? []) as Doc[]) {
    if (typeof e.value === "string") env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const sample = FIELD_SAMPLES[e.valueFrom.fieldRef.fieldPath];
      if (sample === undefined) throw new Error(`env ${e.name}: no sample for fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = sample;
    } else throw new Error(`env ${e.name}: only value and fieldRef are understood here`);
  }
  return env;
}

/** The value of --config / -c in the container's args. */
function configArg(c: Doc): string {
  const args = [...(c.command ?? []), ...(c.args ?? [])] as string[];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--config" || a === "-c") return args[i + 1]!;
    if (a.startsWith("--config=")) return a.slice("--config=".length);
  }
  throw new Error("the container's args have no --config");
}

function mountFor(c: Doc, path: string): Doc | undefined {
  return ((c.volumeMounts ?? []) as Doc[])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

function volume(ds: Doc, name: string): Doc {
  const v = (ds.spec.template.spec.volumes as Doc[]).find((x) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
}

/** The config file the container reads: the ConfigMap key behind the --config path. */
function configText(docs: Doc[]): { text: string; source: string } {
  const ds = only(docs, "DaemonSet");
  const c = agentContainer(ds);
  const path = configArg(c);
  const mount = mountFor(c, path);
  if (!mount) throw new Error(`--config ${path} is not on a mounted volume`);
  const cmName = volume(ds, mount.name).configMap?.name;
  if (!cmName) throw new Error(`--config ${path} is on volume ${mount.name}, which is not a ConfigMap`);
  const key = mount.subPath ?? relative(mount.mountPath, path);
  const cm = find(docs, "ConfigMap").find((d) => d.metadata.name === cmName);
  if (!cm) throw new Error(`no ConfigMap ${cmName}`);
  const text = cm.data?.[key];
  if (typeof text !== "string") throw new Error(`ConfigMap ${cmName} has no key ${key}`);
  return { text, source: `ConfigMap ${cmName} ${key}` };
}

function loadDeployed(docs: Doc[]): Config {
  const { text, source } = configText(docs);
  return loadConfigText(text, source, registry, podEnv(agentContainer(only(docs, "DaemonSet"))));
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}` references; `required` without a default. */
function envReferences(text: string): { name: string; required: boolean }[] {
  const refs: { name: string; required: boolean }[] = [];
  for (const m of text.replaceAll("$$", "").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?[^}]*\}/g)) {
    refs.push({ name: m[1]!, required: m[2] === undefined || m[2].endsWith("?") });
  }
  return refs;
}

/** A Kubernetes quantity in bytes (binary and decimal suffixes). */
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

/** Collector keys that name a host path, and where that path is on the node. */
const HOST_PATH_KEYS: Record<string, string> = {
  proc_root: "/proc",
  sys_root: "/sys",
  cgroup_root: "/sys/fs/cgroup",
  kmsg_path: "/dev/kmsg",
};

interface PathUse {
  what: string;
  path: string;
  /** where it must come from on the node; undefined: any host directory (the spool) */
  hostPath?: string;
  writable: boolean;
}

/** Every host path the loaded config reads or writes: enabled collectors' paths (defaults included) and the spool. */
function pathUses(config: Config): PathUse[] {
  const uses: PathUse[] = [];
  for (const [name, section] of Object.entries(config.collectors)) {
    if (!section.enabled) continue;
    const c = section.config as Record<string, unknown>;
    for (const [key, hostPath] of Object.entries(HOST_PATH_KEYS)) {
      if (typeof c[key] === "string") uses.push({ what: `collectors.${name}.config.${key}`, path: c[key] as string, hostPath, writable: false });
    }
  }
  if (config.spool.enabled) uses.push({ what: "spool.path", path: dirname(config.spool.path), writable: true });
  return uses;
}

// --- what the collectors call, and the permission each call needs -------------

interface Need {
  collector: string;
  /** the request path as the source writes it */
  path: string;
  source: string;
  resource: string;
  verbs: string[];
}

const NEEDS: Need[] = [
  // The kubelet authorizes /pods as nodes/proxy and /stats/* as nodes/stats (kubelet authz docs).
  { collector: "kubelet", path: "/pods", source: "src/collectors/kubelet/index.ts", resource: "nodes/proxy", verbs: ["get"] },
  { collector: "kubelet", path: "/stats/summary", source: "src/collectors/kubelet/index.ts", resource: "nodes/stats", verbs: ["get"] },
  { collector: "kubeapi", path: "/api/v1/pods", source: "src/collectors/kubeapi/resources.ts", resource: "pods", verbs: ["list", "watch"] },
  { collector: "kubeapi", path: "/api/v1/events", source: "src/collectors/kubeapi/resources.ts", resource: "events", verbs: ["list", "watch"] },
];

/** The request paths the kubelet and kubeapi sources contain, so a new call without a NEEDS row fails the test. */
function requestPathsInSource(): string[] {
  const found = new Set<string>();
  for (const dir of ["kubelet", "kubeapi"]) {
    for (const file of readdirSync(join(REPO, "src/collectors", dir)).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(REPO, "src/collectors", dir, file), "utf8");
      for (const m of text.matchAll(/_PATH\s*=\s*"([^"]+)"/g)) found.add(m[1]!);
      for (const m of text.matchAll(/["'`](\/apis?\/[a-z0-9]+(?:\/[a-z0-9]+)*)/g)) found.add(m[1]!);
    }
  }
  return [...found].sort();
}

function allows(rules: Doc[], resource: string, verb: string): boolean {
  return rules.some(
    (r) =>
      ((r.apiGroups ?? []) as string[]).some((g) => g === "" || g === "*") &&
      ((r.resources ?? []) as string[]).some((x) => x === resource || x === "*") &&
      ((r.verbs ?? []) as string[]).some((v) => v === verb || v === "*"),
  );
}

// --- the tests ---------------------------------------------------------------

describe("manifest files", () => {
  test("every YAML file under deploy/kubernetes parses, and every resource has apiVersion, kind and a name", () => {
    const files = yamlFiles(K8S);
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const file of files) {
      const docs = parseYaml(readFileSync(file, "utf8"), relative(REPO, file));
      expect(docs.length).toBeGreaterThan(0);
      for (const d of docs) {
        expect(typeof d.apiVersion).toBe("string");
        expect(typeof d.kind).toBe("string");
        if (d.kind !== "Kustomization" && d.kind !== "Component") expect(typeof d.metadata?.name).toBe("string");
      }
    }
  });

  test("the kustomization lists every manifest of the base, and the component's patch exists", () => {
    const listed = new Set(kustomization.resources as string[]);
    const top = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
    expect([...listed].sort()).toEqual(top.sort());
    const component = parseYaml(readFileSync(join(COMPONENT, "kustomization.yaml"), "utf8"), "component")[0]!;
    expect(component.kind).toBe("Component");
    for (const p of component.patches as Doc[]) expect(statSync(join(COMPONENT, p.path)).isFile()).toBe(true);
  });

  test("the image tag is the agent's version", () => {
    const image = (kustomization.images as Doc[]).find((i) => i.name === "tapio-collectors");
    expect(image?.newTag).toBe(pkg.version);
    expect(agentContainer(only(asWritten, "DaemonSet")).image).toBe(`tapio-collectors:${pkg.version}`);
  });

  test.skipIf(!kustomizeCommand)("the README's overlay sets the image and NATS_URL", () => {
    const docs = buildReadmeOverlay(false);
    const c = agentContainer(only(docs, "DaemonSet"));
    expect(c.image).toBe(`registry.example.com/tapio-collectors:${pkg.version}`);
    expect(((c.env ?? []) as Doc[]).find((e) => e.name === "NATS_URL")?.value).toBe("nats://nats.nats.svc:4222");
    // The patch merged into the env by name: the downward-API variables are still there.
    expect(((c.env ?? []) as Doc[]).map((e) => e.name).sort()).toEqual(["HOST_IP", "NATS_URL", "NODE_NAME"]);
  });

  test("KUBELET_INSECURE_TLS=true (the README's switch for self-signed kubelets) turns kubelet TLS verification off", () => {
    const { text, source } = configText(asWritten);
    const env = { ...podEnv(agentContainer(only(asWritten, "DaemonSet"))), KUBELET_INSECURE_TLS: "true" };
    expect((loadConfigText(text, source, registry, env).collectors.kubelet!.config as { insecure: boolean }).insecure).toBe(true);
  });

  if (!kustomizeCommand) test.skip("kustomize build of the base and of components/kernel-log (skipped: neither kubectl nor kustomize is installed)", () => {});

  test("every collector the ConfigMap configures is registered in builtinRegistry (else the agent stops with \"unknown collector\")", () => {
    const configured = Object.keys((parseYaml(configText(asWritten).text, "config")[0]!.collectors ?? {}) as Doc);
    expect(configured.length).toBeGreaterThan(0);
    expect(configured.filter((name) => registry.get(name) === undefined)).toEqual([]);
  });
});

describe.each(renderings)("$name", ({ docs, kernelLog }) => {
  const ds = only(docs, "DaemonSet");
  const pod = ds.spec.template.spec;
  const c = agentContainer(ds);

  test("the ConfigMap's config validates with the real loader, in the pod's environment", () => {
    const config = loadDeployed(docs);
    const enabled = Object.entries(config.collectors).filter(([, s]) => s.enabled).map(([n]) => n).sort();
    expect(enabled).toEqual(
      ["dns", "kubeapi", "kubelet", "memory", "network", "process", ...(kernelLog ? ["kernel"] : [])].sort(),
    );
    expect(config.spool.enabled).toBe(true);
    expect(config.http.enabled).toBe(true);
  });

  test("`tapio-collectors validate` accepts it too (the CLI, with the collectors the binary registers)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tapio-configmap-"));
    try {
      const file = join(dir, "collectors.yaml");
      writeFileSync(file, configText(docs).text);
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...podEnv(c) };
      const r = run([BUN, "src/main.ts", "validate", "--config", file], { env });
      expect({ code: r.code, output: r.stdout + r.stderr }).toEqual({ code: 0, output: expect.stringContaining("valid") });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing NATS_URL or NODE_NAME stops the config with a clear error", () => {
    const { text, source } = configText(docs);
    for (const name of ["NATS_URL", "NODE_NAME"]) {
      const env = podEnv(c);
      delete env[name];
      expect(() => loadConfigText(text, source, registry, env)).toThrow(name);
    }
  });

  test("every ${VAR} the config needs is set in the DaemonSet's env, and every env var set is used", () => {
    const { text } = configText(docs);
    const set = new Set(((c.env ?? []) as Doc[]).map((e) => e.name));
    const refs = envReferences(text);
    const requiredMissing = refs.filter((r) => r.required && !set.has(r.name)).map((r) => r.name);
    expect(requiredMissing).toEqual([]);
    // NODE_NAME is also read by collectors' defaults; TAPIO_CONFIG by the CLI.
    const used = new Set([...refs.map((r) => r.name), "NODE_NAME", "TAPIO_CONFIG"]);
    expect([...set].filter((name) => !used.has(name))).toEqual([]);
  });

  test("NODE_NAME comes from the downward API (spec.nodeName), HOST_IP from status.hostIP", () => {
    const env = (c.env ?? []) as Doc[];
    expect(env.find((e) => e.name === "NODE_NAME")?.valueFrom?.fieldRef?.fieldPath).toBe("spec.nodeName");
    expect(env.find((e) => e.name === "HOST_IP")?.valueFrom?.fieldRef?.fieldPath).toBe("status.hostIP");
    expect(env.find((e) => e.name === "NATS_URL")?.value).toMatch(/^(nats|tls):\/\//);
  });

  test("the container's args are real CLI flags, and --config is the mounted ConfigMap key (no subPath)", () => {
    expect(c.command).toBeUndefined(); // the image's ENTRYPOINT is the binary
    const r = cliAccepts(c.args as string[]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const mount = mountFor(c, configArg(c))!;
    expect(mount.subPath).toBeUndefined(); // subPath mounts never see ConfigMap updates
    expect(mount.readOnly).toBe(true);
    // --help stops before values are checked: check --log-format's against the CLI's two.
    const args = c.args as string[];
    if (args.includes("--log-format")) expect(["json", "pretty"]).toContain(args[args.indexOf("--log-format") + 1] ?? "");
  });

  test("http.listen is reachable from the kubelet (not loopback); probes and containerPort use its port", () => {
    const config = loadDeployed(docs);
    const { hostname, port } = parseListen(config.http.listen);
    expect(["0.0.0.0", "::"]).toContain(hostname);
    const ports = (c.ports ?? []) as Doc[];
    const http = ports.find((p) => p.containerPort === port);
    expect(http).toBeDefined();
    const portOf = (p: number | string) => (typeof p === "number" ? p : ports.find((x) => x.name === p)?.containerPort);
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(portOf(c.livenessProbe.httpGet.port)).toBe(port);
    expect(portOf(c.readinessProbe.httpGet.port)).toBe(port);
    expect(pod.hostNetwork ?? false).toBe(false);
  });

  test("every host path the config uses is a hostPath mount of that node path, and every host mount is used", () => {
    const config = loadDeployed(docs);
    const uses = pathUses(config);
    const usedMounts = new Set<string>();
    for (const use of uses) {
      const mount = mountFor(c, use.path);
      expect({ what: use.what, path: use.path, mounted: mount !== undefined }).toEqual({ what: use.what, path: use.path, mounted: true });
      const host = volume(ds, mount!.name).hostPath;
      expect({ what: use.what, hostPath: host !== undefined }).toEqual({ what: use.what, hostPath: true });
      const onNode = host.path + use.path.slice(mount!.mountPath.length);
      if (use.hostPath !== undefined) expect({ what: use.what, onNode }).toEqual({ what: use.what, onNode: use.hostPath });
      expect({ what: use.what, readOnly: mount!.readOnly === true }).toEqual({ what: use.what, readOnly: !use.writable });
      usedMounts.add(mount!.name);
    }
    const hostMounts = ((c.volumeMounts ?? []) as Doc[]).filter((m) => volume(ds, m.name).hostPath).map((m) => m.name);
    expect(hostMounts.filter((m) => !usedMounts.has(m))).toEqual([]);
    // The spool survives the pod: a hostPath created on first use, not an emptyDir.
    const spool = volume(ds, mountFor(c, dirname(config.spool.path))!.name).hostPath;
    expect(spool.type).toBe("DirectoryOrCreate");
    // hostPID is not needed: the mounted /proc is the host's.
    expect(pod.hostPID ?? false).toBe(false);
  });

  test("the kernel log: /dev/kmsg is mounted only with components/kernel-log, as a char device, with the privilege it needs", () => {
    const config = loadDeployed(docs);
    const kmsg = (pod.volumes as Doc[]).find((v) => v.hostPath?.path === "/dev/kmsg");
    expect(config.collectors.kernel?.enabled ?? false).toBe(kernelLog);
    expect(kmsg !== undefined).toBe(kernelLog);
    if (kernelLog) {
      expect(kmsg!.hostPath.type).toBe("CharDevice");
      expect(c.securityContext.privileged).toBe(true);
      expect(c.securityContext.runAsUser).toBe(0);
    }
  });

  test("the spool directory's owner is set to the agent's uid by the init container", () => {
    const config = loadDeployed(docs);
    const dir = dirname(config.spool.path);
    const init = ((pod.initContainers ?? []) as Doc[]).find((x) => x.name === "spool-owner");
    expect(init).toBeDefined();
    const script = (init!.command as string[]).join(" ");
    const uid = c.securityContext.runAsUser ?? pod.securityContext?.runAsUser;
    expect(script).toContain(`chown ${uid === 0 ? 65532 : uid}:`);
    expect(script).toContain(dir);
    expect(mountFor(init!, dir)?.name).toBe(mountFor(c, dir)!.name);
    expect(init!.securityContext.capabilities.drop).toEqual(["ALL"]);
  });

  test("security: uid 65532, read-only root filesystem, all capabilities dropped (privileged root only with kernel-log)", () => {
    const sc = c.securityContext;
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    expect(sc.capabilities.add).toBeUndefined();
    if (!kernelLog) {
      expect(sc.runAsUser).toBe(65532);
      expect(sc.runAsGroup).toBe(65532);
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.allowPrivilegeEscalation).toBe(false);
      expect(sc.privileged ?? false).toBe(false);
    }
    expect(pod.securityContext.seccompProfile.type).toBe("RuntimeDefault");
    // Kubernetes writes nothing else into the read-only root: /tmp is an emptyDir.
    expect(volume(ds, mountFor(c, "/tmp")!.name).emptyDir).toBeDefined();
  });

  test("resources: every container has requests and limits; the memory limit leaves room above the queue", () => {
    const config = loadDeployed(docs);
    for (const x of [...pod.containers, ...(pod.initContainers ?? [])] as Doc[]) {
      for (const kind of ["requests", "limits"]) {
        expect({ container: x.name, kind, cpu: typeof x.resources?.[kind]?.cpu, memory: typeof x.resources?.[kind]?.memory }).toEqual({
          container: x.name,
          kind,
          cpu: "string",
          memory: "string",
        });
      }
    }
    expect(bytes(c.resources.limits.memory)).toBeGreaterThanOrEqual(config.orchestrator.buffer.max_bytes + 256 * 2 ** 20);
  });

  test("terminationGracePeriodSeconds is longer than orchestrator.shutdown_timeout", () => {
    const config = loadDeployed(docs);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(config.orchestrator.shutdown_timeout.ms / 1000);
  });

  test("the ServiceAccount is the DaemonSet's and the binding's subject; the binding grants the ClusterRole", () => {
    const sa = only(docs, "ServiceAccount");
    const role = only(docs, "ClusterRole");
    const binding = only(docs, "ClusterRoleBinding");
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(sa.metadata.namespace).toBe(ds.metadata.namespace);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name });
    expect(binding.subjects).toContainEqual({ kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace });
    // The collectors send the mounted service-account token.
    expect(pod.automountServiceAccountToken ?? sa.automountServiceAccountToken ?? true).toBe(true);
    const namespace = find(docs, "Namespace")[0];
    expect(namespace?.metadata.name).toBe(ds.metadata.namespace);
  });

  test("RBAC covers every call the kubelet and kubeapi collectors make (and each call is still in their source)", () => {
    const config = loadDeployed(docs);
    const rules = only(docs, "ClusterRole").rules as Doc[];
    expect(requestPathsInSource()).toEqual(NEEDS.map((n) => n.path).sort());
    for (const need of NEEDS) {
      expect(readFileSync(join(REPO, need.source), "utf8")).toContain(need.path);
      if (!config.collectors[need.collector]?.enabled) continue;
      for (const verb of need.verbs) expect({ resource: need.resource, verb, allowed: allows(rules, need.resource, verb) }).toEqual({ resource: need.resource, verb, allowed: true });
    }
    // What the collectors read: nodes/stats, nodes/proxy, pods, events get/list/watch; nodes get.
    for (const resource of ["nodes/stats", "nodes/proxy", "pods", "events"]) for (const verb of ["get", "list", "watch"]) expect(allows(rules, resource, verb)).toBe(true);
    expect(allows(rules, "nodes", "get")).toBe(true);
    // Read-only: no rule writes anything.
    for (const r of rules) for (const v of r.verbs as string[]) expect(["get", "list", "watch"]).toContain(v);
  });

  test("the kubelet and kubeapi collectors use the service account's token and CA", () => {
    const config = loadDeployed(docs);
    for (const name of ["kubelet", "kubeapi"]) {
      const cc = config.collectors[name]!.config as { token_file: string; ca_file: string };
      expect(dirname(cc.token_file)).toBe("/var/run/secrets/kubernetes.io/serviceaccount");
      expect(dirname(cc.ca_file)).toBe("/var/run/secrets/kubernetes.io/serviceaccount");
    }
    const kubelet = config.collectors.kubelet!.config as { address: string; insecure: boolean };
    expect(kubelet.address).toBe(`https://${FIELD_SAMPLES["status.hostIP"]}:10250`);
    expect(kubelet.insecure).toBe(false);
  });

  test("the selector matches the pod template, and rolling updates never run two agents on a node (shared spool)", () => {
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels as Record<string, string>)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    expect(ds.spec.updateStrategy.rollingUpdate.maxSurge).toBe(0);
  });
});

