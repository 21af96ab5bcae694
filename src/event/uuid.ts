// Name-based event ids: UUIDv5 (RFC 9562, section 5.5), the SHA-1 of a
// namespace UUID and a name. A source that can name what it saw (the kernel
// log: boot id and sequence number) gives the same event the same id every
// time it is read, so JetStream's duplicate window (Nats-Msg-Id = event_id)
// drops a copy sent again after a restart.

/** RFC 9562's namespace for URLs, 6ba7b811-9dad-11d1-80b4-00c04fd430c8. */
export const NAMESPACE_URL = "6ba7b811-9dad-11d1-80b4-00c04fd430c8";

/** The namespace of this agent's name-based event ids: uuidV5(NAMESPACE_URL, "urn:tapio-collectors:event_id"). */
export const EVENT_ID_NAMESPACE = "02bcaa41-f656-5101-9807-f399c1622cc1";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The 16 bytes of a UUID in its text form; throws on anything else. */
export function uuidBytes(uuid: string): Uint8Array {
  if (!UUID.test(uuid)) throw new Error(`not a UUID: ${JSON.stringify(uuid)}`);
  return Uint8Array.from(Buffer.from(uuid.replaceAll("-", ""), "hex"));
}

/** The bytes of the namespaces used, parsed once: an id is made on the way from the kernel to NATS. */
const namespaceBytes = new Map<string, Uint8Array>();

/** UUIDv5 of `name` (UTF-8) in `namespace`, in lower-case text form. */
export function uuidV5(namespace: string, name: string): string {
  let ns = namespaceBytes.get(namespace);
  if (!ns) namespaceBytes.set(namespace, (ns = uuidBytes(namespace)));
  const sha1 = new Bun.CryptoHasher("sha1");
  sha1.update(ns);
  sha1.update(name);
  const b = Uint8Array.from(sha1.digest().subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const hex = Buffer.from(b).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
