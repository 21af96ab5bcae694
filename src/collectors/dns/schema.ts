import * as v from "valibot";
import { bool, duration, nonEmptyString, picklist, stringOrList, strictObject, text } from "../../config/kit.ts";
import { isProbeName, QUERY_TYPES } from "./message.ts";
import { parseServer } from "./resolv.ts";

export const dnsConfigSchema = strictObject({
  /** fully-qualified names to resolve, sent as written: no search domains are applied */
  names: v.pipe(
    stringOrList(text("a fully-qualified domain name like kubernetes.default.svc.cluster.local", isProbeName)),
    v.minLength(1, "expected at least one name to probe"),
  ),
  /** A, AAAA, or both: one probe per type */
  query_types: v.optional(stringOrList(picklist(QUERY_TYPES)), ["A"]),
  /** servers as ip or ip:port ([v6]:port); empty: the nameservers of resolv_conf, port 53 */
  servers: v.optional(
    stringOrList(text("an IP address with an optional port, like 10.96.0.10, 10.96.0.10:53 or [fd00::a]:53", (s) => parseServer(s) !== undefined)),
    [],
  ),
  /** read at every round, as it may change (DHCP, a pod's dnsConfig) */
  resolv_conf: v.optional(nonEmptyString(), "/etc/resolv.conf"),
  /** how often every name is probed against every server */
  interval: v.optional(duration({ positive: true }), "30s"),
  /** no valid answer within this is a dns.timeout */
  timeout: v.optional(duration({ positive: true }), "2s"),
  /** an answer slower than this is a dns.query with severity warning ... */
  latency_warning: v.optional(duration({ positive: true }), "250ms"),
  /** ... and slower than this, severity high */
  latency_high: v.optional(duration({ positive: true }), "1s"),
  /** also emit healthy answers (info), not only problems and recoveries */
  emit_ok: v.optional(bool(), false),
});

export type DnsConfig = v.InferOutput<typeof dnsConfigSchema>;
