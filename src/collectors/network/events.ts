// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, is, struct } from "../../event/declare.ts";

/** The sockstat gauges at the time (absent when sockstat could not be read) and the interval the deltas cover. */
const TCP_CONTEXT = "interval_seconds tcp_inuse? tcp_orphan? tcp_tw? tcp_alloc? tcp_mem?";
const conntrack = (...eventTypes: [string, ...string[]]) => ({
  network: struct({ event_type: is(...eventTypes), protocol: is("ip") }),
  custom: struct("count max ratio threshold"),
});

export const networkEvents = declareEvents("network", {
  "network.tcp.retransmits": {
    description: "An interval's TCP retransmits crossed retransmit_ratio of the segments sent (above retransmit_min_segments) or retransmit_rate.",
    severities: ["warning"],
    event_data: {
      network: struct({ event_type: is("tcp_retransmits"), protocol: is("tcp") }),
      custom: struct(`retrans_segs out_segs ratio rate_per_second tcp_timeouts? ${TCP_CONTEXT}`),
    },
  },
  "network.listen_overflow": {
    description: "TcpExt ListenOverflows or ListenDrops grew: a listener's accept queue was full and connections were dropped.",
    severities: ["warning"],
    event_data: {
      network: struct({ event_type: is("listen_overflow"), protocol: is("tcp"), direction: is("inbound") }),
      custom: struct(`listen_overflows? listen_drops? ${TCP_CONTEXT}`),
    },
  },
  "network.interface.errors": {
    description: "An interface's errors (warning) or drops only (low) in an interval reached their minimum; custom has each failure column of /proc/net/dev that has a delta.",
    severities: ["warning", "low"],
    event_data: {
      network: struct({ event_type: is("interface_errors", "interface_drops"), protocol: is("link") }),
      custom: struct("interface errors drops interval_seconds rx_errs? rx_drop? rx_fifo? rx_frame? tx_errs? tx_drop? tx_fifo? tx_colls? tx_carrier?"),
    },
  },
  "network.conntrack.near_limit": {
    description: "The conntrack table crossed conntrack_ratio (warning) or became full (critical: new connections are dropped).",
    severities: ["warning", "critical"],
    event_data: conntrack("conntrack_near_limit", "conntrack_full"),
  },
  "network.conntrack.recovered": {
    description: "The conntrack table is back below conntrack_ratio - 0.05.",
    severities: ["info"],
    event_data: conntrack("conntrack_recovered"),
  },
});
