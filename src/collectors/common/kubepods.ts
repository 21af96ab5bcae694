// Which pod and container a cgroup path belongs to, from the names kubelet and
// the container runtimes give their cgroups:
//   cgroupfs driver: /kubepods/burstable/pod<uid>/<container id>
//   systemd driver:  /kubepods.slice/kubepods-burstable.slice/
//                    kubepods-burstable-pod<uid with _ for ->.slice/cri-containerd-<id>.scope
// Also used by the kernel collector for the memory cgroup of an OOM kill.

/** A pod cgroup's name: `pod<uid>`, or `kubepods[-qos]-pod<uid>.slice` where systemd replaced the dashes by underscores. */
const POD_SEGMENT = /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/i;
/** A container cgroup's name: the bare 64-hex id (cgroupfs) or `<runtime>-<id>.scope` (systemd). */
const CONTAINER_SEGMENT = /^(?:(cri-containerd|docker|crio|cri-o)-)?([0-9a-f]{64})(?:\.scope)?$/;
const RUNTIMES: Record<string, string> = { "cri-containerd": "containerd", docker: "docker", crio: "cri-o", "cri-o": "cri-o" };

export interface CgroupOwner {
  /** the pod's uid in its usual form, with dashes */
  podUid?: string;
  containerId?: string;
  /** the runtime, when the cgroup name tells it (systemd driver) */
  runtime?: string;
}

/** The pod uid in one cgroup path segment, if it names a pod cgroup. */
export function podUidOf(segment: string): string | undefined {
  const match = POD_SEGMENT.exec(segment);
  return match?.[1]?.replaceAll("_", "-").toLowerCase();
}

/** The container id (and runtime) in one cgroup path segment, if it names a container cgroup. */
export function containerOf(segment: string): { id: string; runtime?: string } | undefined {
  const match = CONTAINER_SEGMENT.exec(segment);
  if (!match?.[2]) return undefined;
  const runtime = match[1] ? RUNTIMES[match[1]] : undefined;
  return runtime ? { id: match[2], runtime } : { id: match[2] };
}

/** The pod and container of a cgroup path such as `/kubepods/burstable/pod<uid>/<id>`; empty for other cgroups. */
export function ownerOf(path: string): CgroupOwner {
  const segments = path.split("/").filter((s) => s !== "");
  const podAt = segments.findIndex((s) => podUidOf(s) !== undefined);
  if (podAt < 0) return {};
  const owner: CgroupOwner = { podUid: podUidOf(segments[podAt]!) };
  const container = segments[podAt + 1] === undefined ? undefined : containerOf(segments[podAt + 1]!);
  if (container) {
    owner.containerId = container.id;
    if (container.runtime) owner.runtime = container.runtime;
  }
  return owner;
}
