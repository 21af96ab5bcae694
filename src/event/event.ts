// The event on the wire: Tapio's CollectorEvent (see README "Event format").
// One source of truth for its fields; collectors build `EventInput`, the
// orchestrator fills identity, time and source (src/event/encode.ts).

export const SEVERITIES = ["debug", "info", "low", "medium", "warning", "high", "error", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Go's `domain.EventPriority`: a string enum, so a number in `metadata.priority` fails the whole event in Go consumers. */
export const PRIORITIES = ["low", "normal", "high", "critical"] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface EventMetadata {
  trace_id?: string;
  span_id?: string;
  pod_name?: string;
  pod_namespace?: string;
  pod_uid?: string;
  container_id?: string;
  container_name?: string;
  node_name?: string;
  pid?: number;
  ppid?: number;
  uid?: number;
  gid?: number;
  cgroup_id?: number;
  command?: string;
  priority?: Priority;
  tags?: string[];
  labels?: Record<string, string>;
  attributes?: Record<string, string>;
}

/** `event_data` holds exactly the members that apply, keyed by kind (kubelet, k8s_resource, kernel, custom, ...). */
export type EventData = Record<string, unknown>;

export interface CollectorEvent {
  event_id: string;
  /** RFC 3339, nanoseconds, UTC */
  timestamp: string;
  type: string;
  source: string;
  severity: Severity;
  event_data: EventData;
  metadata: EventMetadata;
  k8s_context?: Record<string, unknown>;
  correlation_hints?: Record<string, unknown>;
  trace_context?: Record<string, unknown>;
}

/** What a collector emits; the orchestrator fills the rest. */
export interface EventInput {
  type: string;
  severity: Severity;
  event_data: EventData;
  metadata?: EventMetadata;
  k8s_context?: Record<string, unknown>;
  correlation_hints?: Record<string, unknown>;
  trace_context?: Record<string, unknown>;
  /** Set only when the source has its own stable id (replays then deduplicate). */
  event_id?: string;
  /** Set only when the source knows when it happened; otherwise the emit time. */
  timestamp?: string;
}

/** An encoded event waiting in the queue: bytes, not objects (serialised once). */
export interface QueuedEvent {
  /** NATS subject: eventSubject(prefix, collector, subjectSuffix) (src/orchestrator/instance.ts) */
  readonly subject: string;
  /**
   * NATS tokens the collector put after its own subject (`ingest` routes by
   * sender), kept apart so a replay from the spool can re-address the event
   * under the nats.subject configured then; absent (or null, read back from
   * the spool) for most events.
   */
  readonly subjectSuffix?: string | null;
  /** event_id, also the Nats-Msg-Id header */
  readonly id: string;
  /** the UTF-8 JSON of the event; never modified once made (usually a view of the encoder's chunk), so it is passed on, not copied */
  readonly bytes: Uint8Array;
  /** the collector instance's key (`dns`, `dns/external`), for accounting */
  readonly collector: string;
  /** performance.now() when it was encoded, for the hand-off latency metric (absent on events read back from the spool) */
  readonly emittedAt?: number;
  /** set on a batch message (nats.batch): the number of NDJSON events in `bytes`; sent as the Tapio-Batch header */
  readonly batchOf?: number;
}
