// Tapio's Go `domain.CollectorEvent` as its JSON field names and kinds: what
// Go's encoding/json will decode into each field. Hand-transcribed, as data,
// from github.com/yairfalse/tapio at commit
// 14f039235510ea2d2b302a66b75be70b1eaa81cc:
//   pkg/domain/collector_event.go  (CollectorEvent and everything it holds)
//   pkg/domain/types.go            (EventSeverity)
//   pkg/domain/k8s_context.go      (K8sContext, OwnerReference, ...)
//   pkg/domain/context_types.go    (CausalityContext)
// Pointers are left out (a pointer decodes what its element does). When Tapio
// changes its struct, change this table and run test/event/go-compat.test.ts.

export type GoKind =
  | "string"
  | "bool"
  | "int" // Go's int is 64-bit on the platforms Tapio builds for
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float64"
  /** time.Time: an RFC 3339 string */
  | "time"
  /** time.Duration: an int64 of nanoseconds (it has no JSON methods of its own) */
  | "duration"
  /** []byte: a standard base64 string */
  | "bytes"
  /** interface{}: anything */
  | "any"
  /** a named string type whose values Go code compares against (Validate, IsHighPriority) */
  | { readonly enum: readonly string[] }
  | { readonly struct: GoStruct }
  /** map[string]T */
  | { readonly map: GoKind }
  | { readonly slice: GoKind }
  /** a type encoding/json cannot fill from the JSON Tapio's own encoder writes for it: never send the field */
  | { readonly never: string };

export interface GoStruct {
  readonly [jsonName: string]: GoKind;
}

const stringMap = { map: "string" } as const;
const strings = { slice: "string" } as const;

/** domain.EventSeverity (types.go) */
export const GO_SEVERITIES = ["debug", "info", "low", "medium", "warning", "high", "error", "critical"] as const;
/** domain.EventPriority */
export const GO_PRIORITIES = ["low", "normal", "high", "critical"] as const;

const EventMetadata: GoStruct = {
  trace_id: "string",
  span_id: "string",
  parent_span_id: "string",
  pod_name: "string",
  pod_namespace: "string",
  pod_uid: "string",
  container_id: "string",
  container_name: "string",
  node_name: "string",
  pid: "int32",
  ppid: "int32",
  uid: "int32",
  gid: "int32",
  cgroup_id: "uint64",
  command: "string",
  priority: { enum: GO_PRIORITIES },
  tags: strings,
  labels: stringMap,
  attributes: stringMap,
  schema_version: "string",
  correlation_hints: strings,
};

const KernelData: GoStruct = {
  event_type: "string",
  syscall: "string",
  return_code: "int32",
  error_message: "string",
  pid: "int32",
  ppid: "int32",
  uid: "int32",
  gid: "int32",
  command: "string",
  cgroup_id: "uint64",
  src_ip: "string",
  dst_ip: "string",
  src_port: "uint16",
  dst_port: "uint16",
  filename: "string",
  flags: "uint32",
  mode: "uint32",
};

const StorageIOData: GoStruct = {
  operation: "string",
  path: "string",
  size: "int64",
  offset: "int64",
  duration: "duration",
  slow_io: "bool",
  blocked_io: "bool",
  device: "string",
  inode: "uint64",
  mount_point: "string",
  file_system: "string",
  k8s_path: "string",
  volume_type: "string",
  pvc_name: "string",
  storage_class: "string",
  vfs_layer: "string",
  flags: "uint32",
  mode: "uint32",
  latency_ms: "float64",
  cpu_time: "duration",
  queue_time: "duration",
  block_time: "duration",
  iops: "int",
  throughput_mb_s: "int",
  error_code: "int32",
  error_message: "string",
};

const MemoryData: GoStruct = {
  operation: "string",
  address: "uint64",
  size: "int64",
  allocated_size: "int64",
  stack_trace: strings,
  caller_ip: "uint64",
  alloc_function: "string",
  is_leak: "bool",
  allocation_age: "duration",
  rss_pages: "uint64",
  rss_bytes: "int64",
  rss_growth: "int64",
  oom_risk: "bool",
  fragmentation_ratio: "float64",
  error_code: "int32",
  error_message: "string",
};

const SystemCallData: GoStruct = {
  number: "int64",
  name: "string",
  pid: "int32",
  tid: "int32",
  uid: "int32",
  gid: "int32",
  arguments: { slice: { struct: { index: "int64", type: "string", value: "string", size: "int64" } } },
  return_value: "int64",
  duration: "duration",
  error_code: "int32",
  flags: stringMap,
};

const ProcessData: GoStruct = {
  pid: "int32",
  ppid: "int32",
  tid: "int32",
  command: "string",
  arguments: strings,
  environment: stringMap,
  working_dir: "string",
  executable: "string",
  start_time: "time",
  uid: "int32",
  gid: "int32",
  cgroup_path: "string",
  container_id: "string",
};

const NetworkL7Data: GoStruct = {
  protocol: "string",
  http_data: { struct: { method: "string", url: "string", path: "string", headers: stringMap, status_code: "int" } },
  dns_data: { struct: { query: "string", query_type: "string", answers: strings, response_code: "string" } },
  grpc_data: { struct: { service: "string", method: "string", status_code: "int" } },
};

const NetworkData: GoStruct = {
  event_type: "string",
  protocol: "string",
  direction: "string",
  src_ip: "string",
  dst_ip: "string",
  src_port: "int32",
  dst_port: "int32",
  payload_size: "int64",
  l7_protocol: "string",
  l7_data: { struct: NetworkL7Data },
  source_ip: "string",
  source_port: "int32",
  dest_ip: "string",
  dest_port: "int32",
  bytes_sent: "int64",
  bytes_recv: "int64",
  packets_sent: "int64",
  packets_recv: "int64",
  latency: "duration",
  tcp_flags: strings,
  interface: "string",
};

const ContainerData: GoStruct = {
  container_id: "string",
  image_id: "string",
  image_name: "string",
  runtime: "string",
  state: "string",
  action: "string",
  exit_code: "int32",
  signal: "int32",
  labels: stringMap,
  annotations: stringMap,
  mounts: { slice: { struct: { source: "string", destination: "string", type: "string", options: "string", read_only: "bool" } } },
  network_mode: "string",
  pid: "int32",
};

const FileSystemData: GoStruct = {
  operation: "string",
  path: "string",
  mode: "string",
  size: "int64",
  offset: "int64",
  duration: "duration",
  error_code: "int32",
  inode: "uint64",
  device: "string",
  flags: strings,
};

/** k8s_context.go: note the camelCase JSON names, as in Kubernetes */
const OwnerReference: GoStruct = {
  apiVersion: "string",
  kind: "string",
  name: "string",
  uid: "string",
  controller: "bool",
  blockOwnerDeletion: "bool",
};

const K8sResourceData: GoStruct = {
  api_version: "string",
  kind: "string",
  name: "string",
  namespace: "string",
  uid: "string",
  operation: "string",
  resource_version: "string",
  generation: "int64",
  owner_kind: "string",
  owner_name: "string",
  owner_uid: "string",
  owner_references: { slice: { struct: OwnerReference } },
  phase: "string",
  conditions: strings,
  message: "string",
  reason: "string",
  finalizers: strings,
  labels: stringMap,
  annotations: stringMap,
  deletion_timestamp: "time",
  object: "any",
};

const K8sAPIEventData: GoStruct = {
  action: "string",
  reason: "string",
  message: "string",
  type: "string",
  count: "int32",
  first_time: "time",
  last_time: "time",
  involved_object: { struct: K8sResourceData },
  source: { struct: { component: "string", host: "string" } },
};

const DNSAnswer: GoStruct = { name: "string", type: "string", class: "string", ttl: "int32", data: "string" };

const DNSData: GoStruct = {
  query_type: "string",
  query_name: "string",
  response_code: "int",
  answers: strings,
  duration: "duration",
  client_ip: "string",
  server_ip: "string",
  client_port: "uint16",
  server_port: "uint16",
  error: "bool",
  error_message: "string",
  authorities: { slice: { struct: DNSAnswer } },
  additional: { slice: { struct: DNSAnswer } },
  cached: "bool",
};

const HTTPData: GoStruct = {
  method: "string",
  url: "string",
  status_code: "int32",
  request_size: "int64",
  response_size: "int64",
  duration: "duration",
  user_agent: "string",
  headers: stringMap,
  content_type: "string",
};

const GRPCData: GoStruct = {
  service: "string",
  method: "string",
  status_code: "int32",
  duration: "duration",
  request_size: "int64",
  response_size: "int64",
  metadata: stringMap,
};

const CRIData: GoStruct = {
  container_id: "string",
  container_name: "string",
  pod_name: "string",
  pod_namespace: "string",
  pod_uid: "string",
  action: "string",
  state: "string",
  image_name: "string",
  image_id: "string",
  runtime: "string",
  runtime_version: "string",
  exit_code: "int32",
  exit_reason: "string",
  oom_killed: "bool",
  cpu_request: "string",
  cpu_limit: "string",
  memory_request: "string",
  memory_limit: "string",
};

const ETCDData: GoStruct = {
  operation: "string",
  key: "string",
  value: "string",
  revision: "int64",
  lease_id: "int64",
  duration: "duration",
  response_code: "int",
  resource_type: "string",
  resource_name: "string",
  namespace: "string",
};

const VolumeData: GoStruct = {
  operation: "string",
  volume_name: "string",
  volume_type: "string",
  mount_path: "string",
  read_only: "bool",
  size: "int64",
  duration: "duration",
  error_code: "int32",
};

const SchedulerData: GoStruct = {
  event_type: "string",
  pid: "int32",
  tid: "int32",
  cpu: "int32",
  command: "string",
  delay_ms: "float64",
  wait_ratio: "float64",
  throttle_ms: "float64",
  throttle_pct: "float64",
  prev_cpu: "int32",
  next_cpu: "int32",
  priority: "int32",
  nice: "int32",
  cgroup_id: "uint64",
  container_id: "string",
};

const SystemdData: GoStruct = {
  unit: "string",
  message: "string",
  priority: "string",
  active_state: "string",
  sub_state: "string",
  result: "string",
  main_pid: "int32",
  control_pid: "int32",
  memory_current: "uint64",
  cpu_usage_nsec: "uint64",
  hostname: "string",
  machine_id: "string",
  boot_id: "string",
};

const OTELSpanData: GoStruct = {
  trace_id: "string",
  span_id: "string",
  parent_span_id: "string",
  name: "string",
  kind: "string",
  service_name: "string",
  start_time: "time",
  end_time: "time",
  duration_nanos: "int64",
  status_code: "string",
  status_message: "string",
  http_method: "string",
  http_status_code: "int",
  http_url: "string",
  db_statement: "string",
  db_system: "string",
  rpc_service: "string",
  rpc_method: "string",
  k8s_pod_name: "string",
  k8s_namespace: "string",
  k8s_deployment: "string",
  container_name: "string",
  process_pid: "int32",
  attributes: stringMap,
  events: { slice: { struct: { timestamp: "time", name: "string", attributes: stringMap } } },
};

const OTELMetricData: GoStruct = {
  name: "string",
  description: "string",
  unit: "string",
  type: "string",
  timestamp: "time",
  gauge_value: "float64",
  counter_value: "int64",
  sum: "float64",
  count: "uint64",
  min: "float64",
  max: "float64",
  labels: stringMap,
  service_name: "string",
  k8s_pod_name: "string",
  k8s_namespace: "string",
};

const ServiceMapData: GoStruct = {
  services: {
    map: {
      struct: {
        name: "string",
        namespace: "string",
        type: "string",
        version: "string",
        health: "string",
        labels: stringMap,
        dependencies: strings,
        dependents: strings,
        request_rate: "float64",
        error_rate: "float64",
        endpoints_count: "int",
      },
    },
  },
  connections: {
    map: {
      struct: {
        source: "string",
        target: "string",
        protocol: "string",
        count: "int",
        bytes_sent: "uint64",
        bytes_recv: "uint64",
        error_rate: "float64",
        avg_latency_ms: "float64",
      },
    },
  },
  cluster_name: "string",
  last_updated: "time",
};

const KubeletData: GoStruct = {
  event_type: "string",
  node_metrics: {
    struct: {
      node_name: "string",
      cpu_usage_nano: "uint64",
      cpu_usage_milli: "uint64",
      memory_usage: "uint64",
      memory_available: "uint64",
      memory_working_set: "uint64",
      timestamp: "time",
    },
  },
  container_metrics: {
    struct: {
      namespace: "string",
      pod: "string",
      container: "string",
      cpu_usage_nano: "uint64",
      memory_usage: "uint64",
      memory_working_set: "uint64",
      memory_rss: "uint64",
      timestamp: "time",
    },
  },
  pod_lifecycle: {
    struct: {
      namespace: "string",
      pod: "string",
      container: "string",
      condition: "string",
      status: "string",
      reason: "string",
      message: "string",
      exit_code: "int32",
      restart_count: "int32",
      last_exit_code: "int32",
      last_reason: "string",
      timestamp: "time",
    },
  },
  storage_event: {
    struct: {
      namespace: "string",
      pod: "string",
      used_bytes: "uint64",
      available_bytes: "uint64",
      usage_percent: "float64",
      timestamp: "time",
    },
  },
};

const RawData: GoStruct = { format: "string", content_type: "string", data: "bytes", size: "int64" };

const EventDataContainer: GoStruct = {
  syscall: { struct: SystemCallData },
  process: { struct: ProcessData },
  network: { struct: NetworkData },
  container: { struct: ContainerData },
  filesystem: { struct: FileSystemData },
  kernel: { struct: KernelData },
  k8s_resource: { struct: K8sResourceData },
  k8s_event: { struct: K8sAPIEventData },
  k8s_resource_compat: { struct: K8sResourceData },
  kubelet: { struct: KubeletData },
  dns: { struct: DNSData },
  http: { struct: HTTPData },
  grpc: { struct: GRPCData },
  etcd: { struct: ETCDData },
  volume: { struct: VolumeData },
  storage_io: { struct: StorageIOData },
  memory: { struct: MemoryData },
  scheduler: { struct: SchedulerData },
  cri: { struct: CRIData },
  systemd: { struct: SystemdData },
  otel_span: { struct: OTELSpanData },
  otel_metric: { struct: OTELMetricData },
  service_map: { struct: ServiceMapData },
  custom: stringMap,
  raw_data: { struct: RawData },
};

const CorrelationHints: GoStruct = {
  pod_uid: "string",
  container_id: "string",
  process_id: "int32",
  cgroup_path: "string",
  node_name: "string",
  connection_id: "string",
  flow_id: "string",
  session_id: "string",
  request_id: "string",
  transaction_id: "string",
  user_id: "string",
  window_start: "time",
  window_end: "time",
  expected_delay: "duration",
  correlation_tags: stringMap,
};

const K8sContext: GoStruct = {
  api_version: "string",
  kind: "string",
  uid: "string",
  name: "string",
  namespace: "string",
  owner_references: { slice: { struct: OwnerReference } },
  controller: { struct: { apiVersion: "string", kind: "string", name: "string", uid: "string" } },
  managed_fields: { slice: { struct: { manager: "string", operation: "string", apiVersion: "string", time: "time", fieldsType: "string" } } },
  labels: stringMap,
  annotations: stringMap,
  generation: "int64",
  resource_version: "string",
  selectors: stringMap,
  dependencies: { slice: { struct: { kind: "string", name: "string", namespace: "string", type: "string", required: "bool", status: "string" } } },
  consumers: { slice: { struct: { apiVersion: "string", kind: "string", name: "string", namespace: "string", uid: "string" } } },
  node_name: "string",
  zone: "string",
  region: "string",
  cluster_name: "string",
  workload_kind: "string",
  workload_name: "string",
  replica_index: "int",
  phase: "string",
  conditions: { slice: { struct: { type: "string", status: "string", last_transition_time: "time", reason: "string", message: "string" } } },
  resource_requests: stringMap,
  resource_limits: stringMap,
  qos_class: "string",
};

const OTEL_ID = "go.opentelemetry.io/otel/trace IDs and TraceState marshal to strings but have no UnmarshalJSON: a string there fails the whole event";

const TraceContext: GoStruct = {
  trace_id: { never: OTEL_ID },
  span_id: { never: OTEL_ID },
  trace_flags: "uint8",
  trace_state: { never: OTEL_ID },
  baggage: stringMap,
};

const CausalityContext: GoStruct = {
  cause_id: "string",
  effect_ids: strings,
  chain_id: "string",
  chain_depth: "int",
  root_cause: "string",
  related_events: strings,
  confidence: "float64",
  type: "string",
};

const CollectionContext: GoStruct = {
  collector_version: "string",
  host_info: {
    struct: { hostname: "string", kernel_version: "string", os_version: "string", architecture: "string", container_runtime: "string", k8s_version: "string" },
  },
  collection_config: {
    struct: { sampling_rate: "float64", buffer_size: "int", flush_interval: "duration", enabled_features: strings, filter_rules: stringMap },
  },
  buffer_stats: {
    struct: { total_capacity: "int64", current_usage: "int64", utilization_rate: "float64", dropped_events: "int64", processed_events: "int64" },
  },
};

export const GO_COLLECTOR_EVENT: GoStruct = {
  event_id: "string",
  timestamp: "time",
  // CollectorEventType: Go lists known values, but collectors define their own; nothing compares it against the list.
  type: "string",
  source: "string",
  severity: { enum: GO_SEVERITIES },
  event_data: { struct: EventDataContainer },
  metadata: { struct: EventMetadata },
  correlation_hints: { struct: CorrelationHints },
  k8s_context: { struct: K8sContext },
  trace_context: { struct: TraceContext },
  causality_context: { struct: CausalityContext },
  collection_context: { struct: CollectionContext },
};

/** What Go's integer kinds hold (stopped at 2^53, past which a JavaScript number is not the exact integer it meant). */
export const INT_RANGES: Record<string, readonly [number, number]> = {
  int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  duration: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** What Go's time.Time.UnmarshalJSON takes (Go 1.20+ parses RFC 3339 strictly): upper-case T and Z, two-digit fields. */
export const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
/** []byte: standard base64. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
