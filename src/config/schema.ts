// The config file's shape, defaults and cross-key rules. Keys stay snake_case
// in the output, as written in the file, so code and config read alike.
import * as v from "valibot";
import { LOG_LEVELS } from "../log.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { Duration } from "./duration.ts";
import { bool, byteSize, duration, integer, nonEmptyString, picklist, strictObject, stringOrList, text, type Schema } from "./kit.ts";
import { isPlainMapping } from "./parse.ts";

/**
 * A rule across keys of one mapping. It sees the mapping even when some of its
 * values are invalid, so its problems are reported along with theirs; each
 * problem is located at the key it names.
 */
function rule<T>(check: (mapping: Record<string, unknown>, report: (key: string, message: string) => void) => void) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    const mapping = dataset.value;
    if (!isPlainMapping(mapping)) return;
    check(mapping, (key, message) =>
      addIssue({ message, path: [{ type: "object", origin: "key", input: mapping, key, value: mapping[key] }] }),
    );
  });
}

const orchestratorSchema = strictObject(
  {
    workers: v.optional(integer(1, 64), 4),
    /** events the queue holds */
    buffer_size: v.optional(integer(1, 10_000_000), 10_000),
    /** bytes the queue holds */
    buffer_bytes: v.optional(byteSize({ min: 1 }), 64 * 1024 * 1024),
    log_level: v.optional(picklist(LOG_LEVELS), "info"),
    shutdown_timeout: v.optional(duration(), "30s"),
    /** how long a failed collector waits before it is restarted, doubling from initial up to max */
    restart_backoff: v.nullish(
      v.pipe(
        strictObject({ initial: v.optional(duration(), "1s"), max: v.optional(duration(), "1m") }),
        rule(({ initial, max }, report) => {
          if (initial instanceof Duration && max instanceof Duration && initial.ms > max.ms) {
            report("initial", `initial (${initial}) must not be longer than max (${max})`);
          }
        }),
      ),
      {},
    ),
  },
  // The first design nested nats under orchestrator; old configs still do.
  { hints: { nats: "nats settings go at the top level, not under orchestrator" } },
);

/** nats://host:port, tls://host:port (port optional with a scheme; user:password@ allowed) or host:port. */
function isNatsUrl(value: string): boolean {
  const hasScheme = value.includes("://");
  let url: URL;
  try {
    url = new URL(hasScheme ? value : `nats://${value}`);
  } catch {
    return false;
  }
  return (
    (url.protocol === "nats:" || url.protocol === "tls:") &&
    url.hostname !== "" &&
    (url.pathname === "" || url.pathname === "/") &&
    url.search === "" &&
    url.hash === "" &&
    url.port !== "0" &&
    (hasScheme || url.port !== "")
  );
}

const natsUrl = text("a NATS server URL like nats://host:4222, tls://host:4222 or host:4222", isNatsUrl);

// Publishing appends ".<collector>" to the prefix, so it must be literal tokens.
const SUBJECT_PREFIX = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/;
const STREAM_NAME = /^[^\s.*>/\\]+$/;

const AUTH_METHODS = [["token"], ["username", "password"], ["nkey_seed_file"], ["creds_file"]] as const;

const natsSchema = v.pipe(
  strictObject({
    url: v.optional(
      v.pipe(stringOrList(natsUrl), v.check((urls) => urls.length > 0, "expected at least one NATS server URL, got an empty list")),
      "nats://127.0.0.1:4222",
    ),
    subject: v.optional(
      text('a NATS subject prefix like tapio.events (tokens separated by ".", no spaces, "*" or ">")', (s) => SUBJECT_PREFIX.test(s)),
      "tapio.events",
    ),
    mode: v.optional(picklist(["core", "jetstream"]), "jetstream"),
    stream: v.nullish(
      strictObject({
        name: v.optional(text('a stream name without spaces, ".", "*", ">", "/" or "\\"', (s) => STREAM_NAME.test(s)), "TAPIO_EVENTS"),
        /** 0 keeps events until max_bytes */
        max_age: v.optional(duration(), "0"),
        max_bytes: v.optional(byteSize({ unlimited: true }), -1),
        replicas: v.optional(integer(1, 5), 1),
        duplicate_window: v.optional(duration(), "2m"),
      }),
      {},
    ),
    /** the client connection name the server shows */
    name: v.optional(nonEmptyString(), "tapio-collectors"),
    /** -1 reconnects forever */
    max_reconnects: v.optional(integer(-1), -1),
    reconnect_wait: v.optional(duration(), "2s"),
    /** connect and ack timeout */
    timeout: v.optional(duration(), "5s"),
    /** unacknowledged publishes at once */
    max_in_flight: v.optional(integer(1, 65_536), 256),
    token: v.optional(nonEmptyString()),
    username: v.optional(nonEmptyString()),
    password: v.optional(nonEmptyString()),
    nkey_seed_file: v.optional(nonEmptyString()),
    creds_file: v.optional(nonEmptyString()),
    // Present (even empty) means TLS is required.
    tls: v.optional(
      v.nullable(
        v.pipe(
          strictObject({
            ca_file: v.optional(nonEmptyString()),
            cert_file: v.optional(nonEmptyString()),
            key_file: v.optional(nonEmptyString()),
            insecure_skip_verify: v.optional(bool(), false),
          }),
          rule((tls, report) => pairedKeys(tls, "cert_file", "key_file", report)),
        ),
        {},
      ),
    ),
  }),
  rule((nats, report) => {
    pairedKeys(nats, "username", "password", report);
    const used = AUTH_METHODS.filter((keys) => keys.some((key) => nats[key] !== undefined));
    const second = used[1]?.find((key) => nats[key] !== undefined);
    if (second) {
      report(second, `set only one authentication method, found ${used.map((keys) => keys.join("/")).join(", ")}`);
    }
  }),
);

function pairedKeys(mapping: Record<string, unknown>, a: string, b: string, report: (key: string, message: string) => void): void {
  if ((mapping[a] === undefined) === (mapping[b] === undefined)) return;
  const [present, missing] = mapping[a] === undefined ? [b, a] : [a, b];
  report(present, `${present} is set without ${missing}; set both or neither`);
}

export interface CollectorSection {
  enabled: boolean;
  /** the output of the collector factory's configSchema */
  config: unknown;
}

function collectorsSchema(registry: CollectorRegistry): Schema<Record<string, CollectorSection>> {
  const entries: Record<string, Schema<CollectorSection | undefined>> = {};
  for (const type of registry.types()) {
    const factory = registry.get(type);
    if (!factory) continue;
    entries[type] = v.optional(
      v.nullable(
        strictObject({
          enabled: v.optional(bool(), true),
          // A missing or empty config is {}, so a factory's defaults fill it.
          config: v.pipe(v.nullish(v.unknown(), {}), factory.configSchema),
        }),
        {},
      ),
    );
  }
  // Optional entries are left out when absent, never set to undefined.
  return v.nullish(strictObject(entries, { noun: "collector" }), {}) as Schema<Record<string, CollectorSection>>;
}

/** The whole file; collector configs are validated by their factories' schemas. */
export function configSchema(registry: CollectorRegistry) {
  return strictObject({
    orchestrator: v.nullish(orchestratorSchema, {}),
    nats: v.nullish(natsSchema, {}),
    collectors: collectorsSchema(registry),
  });
}

export type Config = v.InferOutput<ReturnType<typeof configSchema>>;
export type OrchestratorConfig = Config["orchestrator"];
export type NatsConfig = Config["nats"];
