import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ownerOf } from "../../../src/collectors/common/kubepods.ts";

const UID = "6c3a2e8e-3f9b-11e8-8f1c-42010a800002";
const ID = "4f3c1a5d9b2e7c8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

describe("pod and container of a cgroup path", () => {
  test.each([
    [`/kubepods/burstable/pod${UID}/${ID}`, { podUid: UID, containerId: ID }],
    [`/kubepods/pod${UID}/${ID}`, { podUid: UID, containerId: ID }],
    [`/kubepods/besteffort/pod${UID}`, { podUid: UID }],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll("-", "_")}.slice/cri-containerd-${ID}.scope`, { podUid: UID, containerId: ID, runtime: "containerd" }],
    [`/kubepods.slice/kubepods-pod${UID.replaceAll("-", "_")}.slice/docker-${ID}.scope`, { podUid: UID, containerId: ID, runtime: "docker" }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replaceAll("-", "_")}.slice/crio-${ID}.scope`, { podUid: UID, containerId: ID, runtime: "cri-o" }],
    // a kind or test cluster: the node's own cgroup first
    [`/tapio-test-1/kubepods/burstable/pod${UID.toUpperCase()}/${ID}`, { podUid: UID, containerId: ID }],
    // crio's conmon scope is not a container
    [`/kubepods.slice/kubepods-pod${UID.replaceAll("-", "_")}.slice/crio-conmon-${ID}.scope`, { podUid: UID }],
    ["/oomtest", {}],
    ["/system.slice/containerd.service", {}],
    ["/", {}],
    ["", {}],
  ])("%p", (path, owner) => {
    expect(ownerOf(path)).toEqual(owner);
  });

  test("property: any path has an owner or none, never an error", () => {
    fc.assert(
      fc.property(fc.string(), (path) => {
        const owner = ownerOf(path);
        if (owner.podUid) expect(owner.podUid).toMatch(/^[0-9a-f-]{36}$/);
      }),
      { numRuns: 1000 },
    );
  });
});
