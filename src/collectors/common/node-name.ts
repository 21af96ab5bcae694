import { hostname } from "node:os";
import * as v from "valibot";
import { nonEmptyString } from "../../config/kit.ts";

/**
 * `node_name` of a collector's config, the one rule for every collector:
 * as written, else $NODE_NAME (the DaemonSet sets it from spec.nodeName),
 * else the host name (the name the kubelet registers its node under unless
 * told otherwise).
 */
export function nodeNameSchema() {
  return v.optional(nonEmptyString(), () => process.env.NODE_NAME || hostname());
}
