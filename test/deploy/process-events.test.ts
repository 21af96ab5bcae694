// components/process-events: what the process collector's event mode needs
// (src/collectors/process/README.md), and nothing of it without the component.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const K8S = resolve(import.meta.dir, "../../deploy/kubernetes");
const COMPONENT = join(K8S, "components/process-events");
const kustomize = Bun.which("kustomize") ? ["kustomize", "build"] : Bun.which("kubectl") ? ["kubectl", "kustomize"] : undefined;

type Doc = Record<string, any>;

function build(components: string[]): Doc {
  const dir = mkdtempSync(join(tmpdir(), "tapio-process-events-"));
  try {
    const list = components.map((c) => `  - ${relative(dir, c)}\n`).join("");
    writeFileSync(join(dir, "kustomization.yaml"), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${relative(dir, K8S)}\n${list ? `components:\n${list}` : ""}`);
    const r = Bun.spawnSync([...kustomize!, dir]);
    if (r.exitCode !== 0) throw new Error(`${kustomize!.join(" ")} failed: ${r.stderr.toString()}`);
    const docs = parseAllDocuments(r.stdout.toString()).map((d) => d.toJS() as Doc);
    return docs.find((d) => d.kind === "DaemonSet")!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!kustomize)(`components/process-events${kustomize ? "" : " (skipped: neither kustomize nor kubectl is installed)"}`, () => {
  test("with it: host network and pids, cluster DNS kept, root with NET_ADMIN added and every other capability still dropped", () => {
    const pod = build([COMPONENT]).spec.template.spec;
    const c = pod.containers.find((x: Doc) => x.name === "tapio-collectors");
    expect([pod.hostNetwork, pod.hostPID, pod.dnsPolicy]).toEqual([true, true, "ClusterFirstWithHostNet"]);
    expect(c.securityContext.runAsUser).toBe(0);
    expect(c.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN"] });
    expect(c.securityContext.privileged ?? false).toBe(false);
  });

  test("without it: none of that (least privilege by default)", () => {
    const pod = build([]).spec.template.spec;
    const c = pod.containers.find((x: Doc) => x.name === "tapio-collectors");
    expect([pod.hostNetwork ?? false, pod.hostPID ?? false]).toEqual([false, false]);
    expect(c.securityContext.capabilities.add).toBeUndefined();
    expect(c.securityContext.runAsUser).toBe(65532);
  });
});
