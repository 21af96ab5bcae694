// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, struct } from "../../event/declare.ts";
import { QUERY_TYPES } from "./message.ts";

/** duration: integer nanoseconds; response_code: the RCODE, -1 when no DNS response was read. */
const probe = (more: string) => struct(`query_name response_code duration server_ip server_port error ${more}`, { query_type: is(...QUERY_TYPES) });

export const dnsEvents = declareEvents("dns", {
  "dns.query": {
    description: "A probe's answer: an error (NXDOMAIN, SERVFAIL, no response, no address of the type asked) or a slow one, a recovery after a problem, or any answer with emit_ok.",
    severities: ["info", "warning", "high", "error"],
    event_data: { dns: probe("answers? error_message?") },
  },
  "dns.timeout": {
    description: "No valid answer within timeout (error_message also says how many invalid replies were ignored).",
    severities: ["error"],
    event_data: { dns: probe("error_message") },
  },
});
