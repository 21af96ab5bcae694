// Figures the README's Deploy section states about deploy/ and build.ts that
// test/deploy does not pin: the namespace's Pod Security level, the agent's
// requests and limits, the grace period, the spool cap and collectors of the
// ConfigMap, the init container's two capabilities and mode, and where a
// release build keeps the Bun runtimes it fetches.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import YAML from "yaml";
import { runtimeCache } from "../../build.ts";
import { REPO } from "../helpers/agent.ts";
import { configFrom } from "../helpers/config.ts";

type Doc = Record<string, any>;
const manifest = (name: string): Doc => YAML.parse(readFileSync(join(REPO, "deploy/kubernetes", name), "utf8"));
const daemonset = manifest("daemonset.yaml");
const pod = daemonset.spec.template.spec;
const agent = pod.containers.find((c: Doc) => c.name === "tapio-collectors");
const podEnv = { NODE_NAME: "node-1", HOST_IP: "10.0.0.1", NATS_URL: "nats://nats.nats.svc:4222" };
const deployed = configFrom(manifest("configmap.yaml").data["collectors.yaml"], undefined, podEnv);

describe("README deploy figures", () => {
  test("namespace tapio-system enforces Pod Security level privileged", () => {
    const ns = manifest("namespace.yaml");
    expect(ns.metadata.name).toBe("tapio-system");
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
  });

  test("requests 50m CPU and 128Mi, limits 1 CPU and 512Mi; terminationGracePeriodSeconds 45 over a 30s shutdown_timeout", () => {
    expect(agent.resources).toEqual({ requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } });
    expect(pod.terminationGracePeriodSeconds).toBe(45);
    expect(String(deployed.orchestrator.shutdown_timeout)).toBe("30s");
  });

  test("the ConfigMap caps the spool at 1GiB and runs kubelet, kubeapi, memory, process, network and dns; kernel off", () => {
    expect(deployed.spool.max_bytes).toBe(1024 ** 3);
    const enabled = Object.entries(deployed.collectors).filter(([, c]) => c.enabled).map(([name]) => name);
    expect(enabled.sort()).toEqual(["dns", "kubeapi", "kubelet", "memory", "network", "process"]);
    expect(deployed.collectors.kernel?.enabled ?? false).toBe(false);
  });

  test("the init container gives the spool directory to uid 65532, mode 0700, with only CHOWN and FOWNER", () => {
    const init = pod.initContainers.find((c: Doc) => c.name === "spool-owner");
    expect(init.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["CHOWN", "FOWNER"] });
    expect(init.command.join(" ")).toContain("chmod 0700 /var/lib/tapio-collectors");
    expect(init.image).toStartWith("busybox");
  });

  test("Bun runtimes are kept in ~/.cache/tapio-collectors/bun-runtimes, or under $XDG_CACHE_HOME, or at $TAPIO_BUN_RUNTIMES", () => {
    expect(runtimeCache({ HOME: homedir() })).toBe(join(homedir(), ".cache/tapio-collectors/bun-runtimes"));
    expect(runtimeCache({ XDG_CACHE_HOME: "/x/cache" })).toBe("/x/cache/tapio-collectors/bun-runtimes");
    expect(runtimeCache({ XDG_CACHE_HOME: "/x/cache", TAPIO_BUN_RUNTIMES: "/y/runtimes" })).toBe("/y/runtimes");
  });
});
