// UUIDv5 against values of Python's uuid.uuid5 (RFC 9562's algorithm),
// computed with python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"))' etc.
import { describe, expect, test } from "bun:test";
import { EVENT_ID_NAMESPACE, NAMESPACE_URL, uuidBytes, uuidV5 } from "../../src/event/uuid.ts";

const NAMESPACE_DNS = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
const NAMESPACE_OID = "6ba7b812-9dad-11d1-80b4-00c04fd430c8";

describe("uuidV5", () => {
  test("known vectors (Python's uuid.uuid5)", () => {
    expect(uuidV5(NAMESPACE_DNS, "python.org")).toBe("886313e1-3b8a-5372-9b90-0c9aee199e5d");
    expect(uuidV5(NAMESPACE_DNS, "www.example.com")).toBe("2ed6657d-e927-568b-95e1-2665a8aea6a2");
    expect(uuidV5(NAMESPACE_URL, "http://python.org/")).toBe("4c565f0d-3f5a-5890-b41b-20cf47701c5e");
    expect(uuidV5(NAMESPACE_OID, "")).toBe("0a68eb57-c88a-5f34-9e9d-27f85e68af4f");
    // the name is hashed as UTF-8
    expect(uuidV5(NAMESPACE_DNS, "héllo wörld ✓")).toBe("2f61da51-3dde-5e00-b999-51a7cb5f532e");
  });

  test("the agent's namespace is what its comment says, and ids in it match Python's", () => {
    expect(uuidV5(NAMESPACE_URL, "urn:tapio-collectors:event_id")).toBe(EVENT_ID_NAMESPACE);
    expect(uuidV5(EVENT_ID_NAMESPACE, "kernel/kernel/0f6b1c5e-8c1e-4a57-9d0c-0d5e3b1f2a77/415/0")).toBe("48323c13-476e-514d-8447-d17de9a4ea4e");
  });

  test("version 5, RFC variant, lower case; an upper-case namespace is the same namespace", () => {
    const id = uuidV5(NAMESPACE_DNS.toUpperCase(), "python.org");
    expect(id).toBe("886313e1-3b8a-5372-9b90-0c9aee199e5d");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test("a namespace that is no UUID is refused", () => {
    expect(() => uuidV5("not-a-uuid", "x")).toThrow('not a UUID: "not-a-uuid"');
    expect(uuidBytes(NAMESPACE_DNS)).toEqual(Uint8Array.from([0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]));
  });
});
