// The config file's shape, defaults and cross-key rules. Keys stay snake_case
// in the output, as written in the file, so code and config read alike.
import * as v from "valibot";
import { LOG_LEVELS } from "../log.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import { instanceType, nameProblem, splitKey } from "../orchestrator/instance.ts";
import { Duration } from "./duration.ts";
import { bool, byteSize, duration, integer, nonEmptyString, picklist, secret, strictObject, stringOrList, text, unknownKeyMessage, type Schema } from "./kit.ts";
import { redactUrl } from "./redact.ts";
import { isPlainMapping } from "./parse.ts";
import { profileSchema } from "./profiles.ts";
import { routeDestinationsCheck, routesSchema } from "../routing/schema.ts";

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

/** What a full queue (orchestrator.buffer) or spool does with more events: wait, or drop the new or the oldest. */
export const WHEN_FULL = ["block", "drop_newest", "drop_oldest"] as const;
export type WhenFull = (typeof WHEN_FULL)[number];
const DEFAULT_BUFFER_EVENTS = 10_000;
const DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024;

const bufferSchema = strictObject({
  /** memory: full speed, spill to the spool only when NATS cannot take events; disk: every event through the spool */
  type: v.optional(picklist(["memory", "disk"]), "memory"),
  /** events the queue holds (short form: orchestrator.buffer_size) */
  max_events: v.optional(integer(1, 10_000_000)),
  /** bytes the queue holds (short form: orchestrator.buffer_bytes) */
  max_bytes: v.optional(byteSize({ min: 1 })),
  /** when the queue is full: slow the collectors down, or drop (counted) */
  when_full: v.optional(picklist(WHEN_FULL), "block"),
});

const orchestratorSchema = v.pipe(
  strictObject(
    {
      workers: v.optional(integer(1, 64), 4),
      /** events a worker takes from the queue at once: one core flush confirms them; JetStream pipelines them within max_in_flight */
      batch_size: v.optional(integer(1, 65_536), 512),
      /** short form of buffer.max_events, as in the design document */
      buffer_size: v.optional(integer(1, 10_000_000)),
      /** short form of buffer.max_bytes */
      buffer_bytes: v.optional(byteSize({ min: 1 })),
      buffer: v.nullish(bufferSchema, {}),
      log_level: v.optional(picklist(LOG_LEVELS), "info"),
      shutdown_timeout: v.optional(duration({ positive: true }), "30s"),
      /** how often a health summary is logged; 0 turns it off */
      health_interval: v.optional(duration(), "30s"),
      /** --once: how long the collectors' round may take; one still running then is stopped and counts as failed */
      once_timeout: v.optional(duration({ positive: true }), "1m"),
      /** how long a failed collector waits before it is restarted, doubling from initial up to max */
      restart_backoff: v.nullish(
        v.pipe(
          strictObject({
            initial: v.optional(duration({ positive: true }), "1s"),
            max: v.optional(duration({ positive: true }), "1m"),
          }),
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
  ),
  rule((o, report) => {
    const buffer = isPlainMapping(o.buffer) ? o.buffer : {};
    if (o.buffer_size !== undefined && buffer.max_events !== undefined) {
      report("buffer_size", "buffer_size is the short form of buffer.max_events; set only one");
    }
    if (o.buffer_bytes !== undefined && buffer.max_bytes !== undefined) {
      report("buffer_bytes", "buffer_bytes is the short form of buffer.max_bytes; set only one");
    }
  }),
  // One place holds the queue's bounds after loading: orchestrator.buffer.
  v.transform(({ buffer_size, buffer_bytes, buffer, ...rest }) => ({
    ...rest,
    buffer: {
      type: buffer.type,
      max_events: buffer.max_events ?? buffer_size ?? DEFAULT_BUFFER_EVENTS,
      max_bytes: buffer.max_bytes ?? buffer_bytes ?? DEFAULT_BUFFER_BYTES,
      when_full: buffer.when_full,
    },
  })),
);

/** Where the endpoints listen by default; `status` and `top` look there without a config. */
export const DEFAULT_HTTP_LISTEN = "127.0.0.1:9090";

/** "host:port" or "[v6]:port"; port 0 picks a free one. An empty host means all interfaces: only when written so. */
export const LISTEN = /^(?:\[[0-9a-fA-F:.]+\]|[^\s:\[\]]*):\d{1,5}$/;

const httpSchema = strictObject({
  enabled: v.optional(bool(), true),
  /** loopback by default: /status and /metrics are for the node's own scrapers unless you say otherwise */
  listen: v.optional(
    text('an address like 127.0.0.1:9090, [::1]:9090, or :9090 for all interfaces', (s) => LISTEN.test(s) && Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535),
    DEFAULT_HTTP_LISTEN,
  ),
});

const spoolSchema = strictObject({
  /** without a spool, events wait in memory for NATS and are lost if the agent dies */
  enabled: v.optional(bool(), true),
  path: v.optional(nonEmptyString(), "/var/lib/tapio-collectors/spool.db"),
  max_bytes: v.optional(byteSize({ min: 1024 * 1024 }), 1024 * 1024 * 1024),
  when_full: v.optional(picklist(WHEN_FULL), "block"),
  /** how long a batch may wait for NATS (disconnected, slow acks) before it is written to the spool */
  spill_after: v.optional(duration({ positive: true }), "2s"),
});

/** An OTLP/HTTP endpoint: http(s)://host[:port][/base path], as OTEL_EXPORTER_OTLP_ENDPOINT. */
function isOtlpEndpoint(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" && url.search === "" && url.hash === "";
}

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** How long an export may take unless `timeout` says: OTLP's default, or the interval if that is shorter. */
const DEFAULT_OTLP_TIMEOUT = new Duration(10_000);

/** `telemetry.otlp.headers`: name -> value, every value a secret (never shown: see redact.ts). */
const otlpHeadersSchema = v.nullish(
  v.pipe(
    v.lazy((input) => {
      const entries: Record<string, Schema<unknown>> = {};
      if (isPlainMapping(input)) {
        for (const key of Object.keys(input)) entries[key] = v.pipe(secret(), v.check((s) => !/[\r\n\0]/.test(s), "expected a header value on one line (no line breaks)"));
      }
      return strictObject(entries);
    }),
    rule((headers, report) => {
      for (const name of Object.keys(headers)) if (!HEADER_NAME.test(name)) report(name, `"${name}" is not an HTTP header name (no spaces, ":" or other separators)`);
    }),
  ),
  {},
) as Schema<Record<string, string>>;

/** `telemetry:` the agent's own metrics, pushed besides /metrics (src/metrics/otlp.ts). */
const telemetrySchema = strictObject({
  /** off unless present: OTLP/HTTP (JSON) to `endpoint`/v1/metrics every `interval` */
  otlp: v.optional(
    v.pipe(
      strictObject({
        endpoint: v.optional(text("an http:// or https:// URL like http://127.0.0.1:4318", isOtlpEndpoint, (x) => (typeof x === "string" ? redactUrl(x) : x)), "http://127.0.0.1:4318"),
        interval: v.optional(duration({ positive: true }), "30s"),
        /** one export, retries included; at most the interval */
        timeout: v.optional(duration({ positive: true })),
        headers: otlpHeadersSchema,
      }),
      rule(({ timeout, interval }, report) => {
        if (timeout instanceof Duration && interval instanceof Duration && timeout.ms > interval.ms) report("timeout", `timeout (${timeout}) must not be longer than interval (${interval})`);
      }),
      v.transform(({ endpoint, interval, timeout, headers }) => ({ endpoint, interval, timeout: timeout ?? (interval.ms < DEFAULT_OTLP_TIMEOUT.ms ? interval : DEFAULT_OTLP_TIMEOUT), headers })),
    ),
  ),
});

/** The URL a nats.url item names; a bare host:port is read as nats://host:port. */
function parseNatsUrl(value: string): URL | undefined {
  try {
    return new URL(value.includes("://") ? value : `nats://${value}`);
  } catch {
    return undefined;
  }
}

/** nats://host:port, tls://host:port (port optional with a scheme; user:password@ or token@ allowed) or host:port. */
function isNatsUrl(value: string): boolean {
  const hasScheme = value.includes("://");
  const url = parseNatsUrl(value);
  if (!url) return false;
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

const natsUrl = text("a NATS server URL like nats://host:4222, tls://host:4222 or host:4222", isNatsUrl, (x) => (typeof x === "string" ? redactUrl(x) : x));

/**
 * List-typed keys whose value, written as one scalar with an environment
 * reference, is split on commas after expansion: `url: ${NATS_URL}` with
 * NATS_URL=nats://a:4222,nats://b:4222 gives two URLs. Anywhere else an
 * environment value stays one scalar's text.
 */
export const COMMA_LIST_KEYS: ReadonlySet<string> = new Set(["nats.url"]);

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
export const DEFAULT_SUBJECT = "tapio.events";
// Publishing appends ".<type>" or ".<type>.<name>" to the prefix, so it must be literal tokens.
export const SUBJECT_PREFIX = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/;
export const SUBJECT_PREFIX_EXPECTED = `a NATS subject prefix like ${DEFAULT_SUBJECT} (tokens separated by ".", no spaces, "*" or ">")`;
const STREAM_NAME = /^[^\s.*>/\\]+$/;

const AUTH_METHODS = [["token"], ["username", "password"], ["nkey_seed_file"], ["creds_file"]] as const;

/** Credentials written into a URL: `user:password@` or `token@`, percent-decoded. */
type UrlCredentials = { username: string; password: string } | { token: string };

/**
 * The credentials in a nats.url item, undefined when it has none, or a
 * problem that names no part of them (the message is shown to people and logs).
 */
function urlCredentials(value: string): UrlCredentials | { problem: string } | undefined {
  const url = parseNatsUrl(value);
  if (!url || (url.username === "" && url.password === "" && !value.includes("@"))) return undefined;
  // URL drops an empty password with its ":", which would turn "user:@" into a token
  const scheme = value.indexOf("://");
  const userinfo = value.slice(scheme === -1 ? 0 : scheme + 3, value.lastIndexOf("@"));
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    return { problem: "the credentials in a URL are not valid percent-encoding (write %25 for a literal %)" };
  }
  if (!userinfo.includes(":")) return username === "" ? { problem: "a URL has an empty token before @" } : { token: username };
  if (username === "" || password === "") return { problem: "a URL's user:password@ needs both a user and a password" };
  return { username, password };
}

/** The url key's items as written, when they are text. */
function urlItems(url: unknown): string[] {
  const items = Array.isArray(url) ? url : [url];
  return items.filter((item): item is string => typeof item === "string");
}

/** The URL without its user:password@ or token@ (which nats.js would ignore), otherwise as written. */
function withoutCredentials(value: string): string {
  const at = value.lastIndexOf("@");
  if (at === -1) return value;
  const scheme = value.indexOf("://");
  return `${scheme === -1 ? "" : value.slice(0, scheme + 3)}${value.slice(at + 1)}`;
}

const natsSchema = v.pipe(
  strictObject({
    url: v.optional(
      v.pipe(stringOrList(natsUrl), v.check((urls) => urls.length > 0, "expected at least one NATS server URL, got an empty list")),
      DEFAULT_NATS_URL,
    ),
    subject: v.optional(
      text(SUBJECT_PREFIX_EXPECTED, (s) => SUBJECT_PREFIX.test(s)),
      DEFAULT_SUBJECT,
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
    reconnect_wait: v.optional(duration({ positive: true }), "2s"),
    /** connect and ack timeout */
    timeout: v.optional(duration({ positive: true }), "5s"),
    /** where replies (JetStream acks, API answers) come back: for accounts that forbid subscribing to _INBOX.> */
    inbox_prefix: v.optional(text(SUBJECT_PREFIX_EXPECTED.replace(DEFAULT_SUBJECT, "_INBOX_tapio"), (s) => SUBJECT_PREFIX.test(s)), "_INBOX"),
    /** unacknowledged publishes at once */
    max_in_flight: v.optional(integer(1, 65_536), 256),
    /** off unless present: pack events into NDJSON messages (header Tapio-Batch), for consumers that read them */
    batch: v.optional(
      strictObject({
        max_events: v.optional(integer(2, 100_000), 100),
        /** NATS refuses messages above its max_payload (1 MiB by default) */
        max_bytes: v.optional(byteSize({ min: 1024 }), 512 * 1024),
        /** how long a worker waits for a fuller batch */
        linger: v.optional(duration(), "5ms"),
      }),
    ),
    /** per destination subject: open after failure_threshold failures in a row, probe after open_for */
    circuit_breaker: v.nullish(
      strictObject({
        failure_threshold: v.optional(integer(1, 1000), 5),
        open_for: v.optional(duration({ positive: true }), "5s"),
        /** a probe that has not answered by then counts as failed */
        probe_timeout: v.optional(duration({ positive: true }), "10s"),
      }),
      {},
    ),
    token: v.optional(secret()),
    username: v.optional(nonEmptyString()),
    password: v.optional(secret()),
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
    const inUrls = urlItems(nats.url).map(urlCredentials).filter((c) => c !== undefined);
    const problem = inUrls.find((c) => "problem" in c);
    if (problem && "problem" in problem) report("url", problem.problem);
    else if (new Set(inUrls.map((c) => JSON.stringify(c))).size > 1) {
      report("url", "the URLs carry different credentials; write them once, in username/password or token");
    }
    // URL credentials count as a method of their own, reported at the key of a second one
    const used: Array<{ name: string; key: string }> = inUrls.length > 0 ? [{ name: "credentials in url", key: "url" }] : [];
    for (const keys of AUTH_METHODS) {
      const key = keys.find((k) => nats[k] !== undefined);
      if (key) used.push({ name: keys.join("/"), key });
    }
    const second = used[1];
    if (second) {
      report(second.key, `set only one authentication method, found ${used.map((m) => m.name).join(", ")}`);
    }
  }),
  // Credentials written in a URL become the keys they stand for: nats.js reads only those.
  v.transform((nats) => {
    const found = nats.url.map(urlCredentials).find((c) => c !== undefined);
    if (!found || "problem" in found) return nats;
    return { ...nats, ...found, url: nats.url.map(withoutCredentials) };
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

function byTypeThenName(a: string, b: string): number {
  const x = splitKey(a);
  const y = splitKey(b);
  if (x.type !== y.type) return x.type < y.type ? -1 : 1;
  return (x.name ?? "") < (y.name ?? "") ? -1 : (x.name ?? "") > (y.name ?? "") ? 1 : 0;
}

/**
 * `collectors:`, whose keys are TYPE or TYPE/NAME (instance.ts): each is
 * validated by its type's schema, and a key that names no registered type,
 * or a bad name, is reported at the key.
 */
function collectorsSchema(registry: CollectorRegistry): Schema<Record<string, CollectorSection>> {
  const types = registry.types();
  const sections = new Map<string, Schema<CollectorSection>>();
  for (const type of types) {
    const factory = registry.get(type)!;
    sections.set(
      type,
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
  const keyProblem = (key: string): string | undefined => {
    const { type, name } = splitKey(key);
    if (registry.get(type)) return nameProblem(key);
    // A bare key reads as before instances existed; in TYPE/NAME only the type is unknown.
    return name === undefined ? unknownKeyMessage(key, types, { noun: "collector" }) : unknownKeyMessage(type, types, { noun: "collector type" });
  };
  return v.nullish(
    v.pipe(
      // The entries are the file's own keys: a valid one gets its type's schema, the rule below reports the rest.
      // In type order, each bare type before its named instances: collectors start, and are listed, in that order.
      v.lazy((input) => {
        const entries: Record<string, Schema<unknown>> = {};
        if (isPlainMapping(input)) {
          for (const key of Object.keys(input).sort(byTypeThenName)) {
            entries[key] = (keyProblem(key) === undefined ? sections.get(instanceType(key)) : undefined) ?? v.unknown();
          }
        }
        return strictObject(entries);
      }),
      rule((collectors, report) => {
        const keys = Object.keys(collectors);
        for (const key of keys) {
          const problem = keyProblem(key);
          if (problem !== undefined) report(key, problem);
        }
        // Distinct keys have distinct subjects (instance.ts); an instance that
        // also publishes below its subject shares those below with any instance there.
        const below = new Set(keys.filter((key) => registry.forKey(key)?.publishesBelow === true && keyProblem(key) === undefined));
        for (const key of keys) {
          const { type, name } = splitKey(key);
          if (name !== undefined && below.has(type)) {
            report(key, `its subject <nats.subject>.${type}.${name} is one of those "${type}" publishes to (<nats.subject>.${type}.>): name both instances, e.g. ${type}/default and ${key}`);
          }
        }
      }),
    ),
    {},
  ) as Schema<Record<string, CollectorSection>>;
}

/** Names of `destinations:` entries: a metric label, a spool file name part, a word in routes. */
const DESTINATION_NAME = /^[a-z0-9_-]+$/;

/**
 * `destinations:`: NATS clusters besides the default one (`nats:`), each with
 * every key `nats` has; routes (src/routing/) say which events go where.
 */
const destinationsSchema = v.nullish(
  v.pipe(
    v.lazy((input) => {
      const entries: Record<string, Schema<unknown>> = {};
      if (isPlainMapping(input)) for (const key of Object.keys(input)) entries[key] = v.nullish(natsSchema, {});
      return strictObject(entries);
    }),
    rule((destinations, report) => {
      for (const name of Object.keys(destinations)) {
        if (name === "default") report(name, 'the destination "default" is the nats section: configure it there');
        else if (!DESTINATION_NAME.test(name)) report(name, `destination name "${name}" may hold only lowercase letters, digits, "_" and "-"`);
      }
    }),
  ),
  {},
) as Schema<Record<string, v.InferOutput<typeof natsSchema>>>;

/** The whole file; collector configs are validated by their factories' schemas. */
export function configSchema(registry: CollectorRegistry) {
  return v.pipe(
    strictObject({
      /** low, medium or high: defaults for intervals, thresholds, workers and buffers (profiles.ts); keys in the file win */
      profile: v.optional(profileSchema()),
      orchestrator: v.nullish(orchestratorSchema, {}),
      nats: v.nullish(natsSchema, {}),
      /** more NATS clusters, each with every key nats has (src/orchestrator/destination.ts) */
      destinations: destinationsSchema,
      spool: v.nullish(spoolSchema, {}),
      http: v.nullish(httpSchema, {}),
      /** the agent's own metrics, pushed over OTLP (besides /metrics) */
      telemetry: v.nullish(telemetrySchema, {}),
      collectors: collectorsSchema(registry),
      /** which destinations each event goes to (src/routing/); absent or [] sends everything to `nats` */
      routes: routesSchema,
    }),
    // every `to` names `default` or a key of `destinations`
    routeDestinationsCheck(),
  );
}

export type Config = v.InferOutput<ReturnType<typeof configSchema>>;

/** The config of an empty file: every default, from the schemas. */
export function defaultConfig(registry: CollectorRegistry): Config {
  return v.parse(configSchema(registry), {});
}
export type NatsConfig = Config["nats"];
export type HttpConfig = Config["http"];
export type OtlpConfig = NonNullable<Config["telemetry"]["otlp"]>;
