// Help texts and argument parsing shared by the commands.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import * as v from "valibot";
import { DEFAULT_HTTP_LISTEN, DEFAULT_NATS_URL, DEFAULT_SUBJECT } from "../config/schema.ts";
import { ingestConfigSchema } from "../collectors/ingest/schema.ts";
import { SEVERITIES } from "../event/event.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log.ts";

/** A mistake in how the command was called: exit 2, message without a stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const DEFAULT_CONFIG = "configs/collectors.yaml";
/** The sender's name `emit` gives events without --source (the last part of their subject). */
export const DEFAULT_EMIT_SOURCE = "cli";
/** Where the ingest collector listens by default. */
const DEFAULT_INGEST_LISTEN = v.parse(ingestConfigSchema, undefined).listen;

/** 0 ok, 1 runtime failure (including undelivered events), 2 usage or config error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export const HELP: Record<string, string> = {
  main: `tapio-collectors: a per-node Kubernetes event agent that publishes to NATS / JetStream

Usage:
  tapio-collectors [run] [--config FILE] [flags]   run the agent (the default command)
  tapio-collectors validate [FILE... | -]          check config files (- reads stdin); exit 0 all valid, 2 any invalid
  tapio-collectors print-config --config FILE      print the effective config (defaults, env expanded, secrets ***)
  tapio-collectors check --config FILE             try NATS, stream, permissions, spool and collector sources; exit 0 all ok, 1 not
  tapio-collectors version                         print the agent and Bun versions
  tapio-collectors completion bash|zsh|fish        print a shell completion script
  tapio-collectors status [--url URL]              a running agent's health, collectors, queue, NATS and spool
  tapio-collectors tail [--nats URL] [filters]     print events from NATS as they pass
  tapio-collectors top [--url URL]                 a live view of a running agent, refreshed every second
  tapio-collectors emit [--socket PATH] --type T   send an event (or NDJSON from stdin) to a running agent's ingest API
  tapio-collectors schema                          print the JSON Schema of the events it publishes
  tapio-collectors COMMAND --help                  help for one command

The config file defaults to $TAPIO_CONFIG, else ${DEFAULT_CONFIG}.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.`,
  run: `Usage: tapio-collectors [run] [--config FILE] [flags]

Runs the collectors and publishes their events until SIGTERM or SIGINT, then
stops the collectors and drains the queue within orchestrator.shutdown_timeout.

Flags:
  -c, --config FILE       the YAML config (default $TAPIO_CONFIG, else ${DEFAULT_CONFIG})
      --log-level LEVEL   trace|debug|info|warn|error|fatal (overrides orchestrator.log_level)
      --log-format FMT    json or pretty (default: pretty when the logs go to a terminal, else json)
      --dry-run           write events as NDJSON lines to stdout instead of publishing; logs go to stderr
      --once              each collector does one round, then drain everything and exit
                          (exit 0 only when every accepted event was delivered)
  -h, --help              this help`,
  validate: `Usage: tapio-collectors validate [--config FILE] [FILE...] [-]

Loads, expands and validates each config, as \`run\` would; - reads one from
standard input (named <stdin> in messages), so a ConfigMap can be checked:
  kubectl get cm tapio-collectors-config -n tapio-system \\
    -o jsonpath='{.data.collectors\\.yaml}' | tapio-collectors validate -
Without a file, the config of \`run\` ($TAPIO_CONFIG, else ${DEFAULT_CONFIG}).
Prints every problem as file:line:column path: message on stderr, warnings
about routes that probably do not do what was meant (FILE: warning: ...),
and FILE: valid for each valid one. Exit 0 when every file is valid (with or
without warnings), 2 when any is invalid or cannot be read.`,
  completion: `Usage: tapio-collectors completion bash|zsh|fish

Prints a completion script for the shell: commands, each command's flags,
the values of --log-level, --log-format, --severity and --collector, and
files for --config. To install it:
  bash   tapio-collectors completion bash > /etc/bash_completion.d/tapio-collectors
         (or: source <(tapio-collectors completion bash) in ~/.bashrc)
  zsh    tapio-collectors completion zsh > "\${fpath[1]}/_tapio-collectors"
         (or: source <(tapio-collectors completion zsh) after compinit in ~/.zshrc)
  fish   tapio-collectors completion fish > ~/.config/fish/completions/tapio-collectors.fish`,
  "print-config": `Usage: tapio-collectors print-config [--config FILE]

Prints the effective config as YAML: defaults filled, environment variables
expanded, secrets shown as ***. Exit 2 when the config is invalid.`,
  check: `Usage: tapio-collectors check [--config FILE]

Tries what \`run\` needs, without running, and prints one line per check,
"ok" or "FAIL" with the reason:
  nats                 connect with the config's servers, credentials and TLS
  stream NAME          (jetstream) it exists and covers SUBJECT.>, or the user may create it
  publish SUBJECT      per enabled collector whose events routes send here: the user
                       may publish there and the configured stream takes it. JetStream:
                       a probe with an expected last sequence no stream has, refused by
                       the stream, so nothing is stored. Core: one empty message with
                       the header Tapio-Check.
  spool                the spool directory (or the nearest existing parent) and file are writable
  destination NAME: …  the same for each of destinations: with its own servers,
                       credentials, subject, stream and spool file (spool.NAME.db)
  collector NAME       each source the collector reads (files, directories, kubelet
                       or API server endpoints) can be read by this user

Run it as the agent's user, in the agent's container, to see what the agent would see.
Exit 0 when every check passed, 1 when any failed, 2 when the config is invalid.`,
  schema: `Usage: tapio-collectors schema

Prints the JSON Schema (2020-12) of the events the agent publishes, the same
as schema/collector-event.schema.json: Tapio's Go CollectorEvent fields, and
for each collector's event types what event_data carries.`,
  version: `Usage: tapio-collectors version

Prints the agent version, the Bun version and the platform.`,
  status: `Usage: tapio-collectors status [--url URL | --config FILE] [--json]

Asks a running agent for GET /status and prints it as a report: readiness and
health (with its problems), one row per collector (state, events accepted,
published, dropped, spooled, restarts, last event, last error), the queue,
the NATS connection, the spool and the circuit breakers.

Flags:
  -u, --url URL       the agent's HTTP address (default http://${DEFAULT_HTTP_LISTEN})
  -c, --config FILE   take the address from this config's http.listen instead
      --json          print the /status JSON document as it is
  -h, --help          this help

Exit 0 when the agent answered, 1 when it cannot be reached.`,
  tail: `Usage: tapio-collectors tail [--nats URL] [--config FILE] [--subject PREFIX]
                             [--collector NAME] [--type TYPE] [--json] [--count N]

Subscribes with core NATS to PREFIX.NAME (every collector: PREFIX.>) and
prints each event as it passes, like \`vector tap\`:
  HH:MM:SS.mmm source type severity key=value ...   (local time, event_data shortened)
It only listens: it takes nothing away from a JetStream stream or other subscribers.
Messages that are not events are reported on stderr and skipped.

Flags:
  -n, --nats URL          NATS server(s), comma separated (default ${DEFAULT_NATS_URL},
                          or nats.url of --config)
  -c, --config FILE       take the servers, subject prefix, credentials and TLS from this config
  -s, --subject PREFIX    subject prefix (default ${DEFAULT_SUBJECT}, or nats.subject of --config)
      --collector NAME    only this collector's events and those below its subject (dns: every dns instance; ingest: every sender)
  -t, --type TYPE         only events of this type; a prefix ending in * matches many (kubelet.*)
      --json              print each event's JSON as received, one per line
      --count N           exit after N matching events
  -h, --help              this help

Runs until Ctrl-C (exit 0). Exit 1 when NATS cannot be reached.`,
  top: `Usage: tapio-collectors top [--url URL | --config FILE] [--interval 1s] [--iterations N]

A live view of a running agent, like \`vector top\`: polls GET /status every
interval and shows per collector events in and out per second (accepted and
published), drops per second and in all, state and restarts; above them the
total publish rate, queue, spool depth and NATS state. The first frame shows
averages since the agent started. On a terminal the screen is redrawn; without
one, frames follow each other separated by a blank line.

Flags:
  -u, --url URL           the agent's HTTP address (default http://${DEFAULT_HTTP_LISTEN})
  -c, --config FILE       take the address from this config's http.listen instead
  -i, --interval DUR      time between refreshes: 1s (default), 500ms, 2 (seconds)
  -n, --iterations N      stop after N refreshes (default: until Ctrl-C)
  -h, --help              this help

While the agent cannot be reached each frame says so and top keeps trying.
Exit 0 at Ctrl-C or after N refreshes; 1 if the agent never answered.`,
  emit: `Usage: tapio-collectors emit [--socket PATH | --url URL | --config FILE] [--token-file FILE]
                             [--source NAME] [--type TYPE [--severity S] [--data JSON]] [--wait]

Sends events to a running agent's ingest collector (POST /v1/events). With --type,
one event; without, NDJSON from stdin, one event per line (sent in batches), each
line a JSON object with type and optionally severity, event_data, metadata,
k8s_context, correlation_hints, timestamp and source.

Flags:
  -s, --socket PATH       the API's unix socket (default: the ingest collector's default,
                          ${DEFAULT_INGEST_LISTEN})
  -u, --url URL           the API's TCP address instead, like http://127.0.0.1:9091
  -c, --config FILE       take the address and token_file from this config's ingest collector
      --token-file FILE   send the bearer token in FILE
      --source NAME       the sender's name, the last part of the subject (default ${DEFAULT_EMIT_SOURCE});
                          stdin lines that name their own source keep it
  -t, --type TYPE         the event type, dotted words like node.check_failed
      --severity S        debug, info (default), low, medium, warning, high, error, critical
  -d, --data JSON         event_data, like '{"custom":{"disk":"92%"}}'
      --wait              answer only once every event is published or spooled (?wait=published)
  -h, --help              this help

A full queue (429) is waited out as the agent asks (Retry-After), up to 5 times.
Exit 0 when every event was accepted; 1 when the API refused them (the problems
are printed, each with its stdin line) or cannot be reached; 2 on a usage error.`,
};

const CONFIG_FLAG = { config: { type: "string", short: "c" } } as const;

/**
 * Every command and the flags it takes (besides -h, --help). Parsing and the
 * shell completions both read this table, so a command or flag added here is
 * completed too.
 */
export const COMMAND_FLAGS = {
  run: {
    ...CONFIG_FLAG,
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    "dry-run": { type: "boolean" },
    once: { type: "boolean" },
  },
  validate: CONFIG_FLAG,
  "print-config": CONFIG_FLAG,
  check: CONFIG_FLAG,
  version: {},
  completion: {},
  schema: {},
  status: {
    url: { type: "string", short: "u" },
    ...CONFIG_FLAG,
    json: { type: "boolean" },
  },
  tail: {
    nats: { type: "string", short: "n" },
    ...CONFIG_FLAG,
    subject: { type: "string", short: "s" },
    collector: { type: "string" },
    type: { type: "string", short: "t" },
    json: { type: "boolean" },
    count: { type: "string" },
  },
  top: {
    url: { type: "string", short: "u" },
    ...CONFIG_FLAG,
    interval: { type: "string", short: "i" },
    iterations: { type: "string", short: "n" },
  },
  emit: {
    socket: { type: "string", short: "s" },
    url: { type: "string", short: "u" },
    ...CONFIG_FLAG,
    "token-file": { type: "string" },
    source: { type: "string" },
    type: { type: "string", short: "t" },
    severity: { type: "string" },
    data: { type: "string", short: "d" },
    wait: { type: "boolean" },
  },
} as const satisfies Record<string, ParseArgsOptionsConfig>;

export type Command = keyof typeof COMMAND_FLAGS;

export const SHELLS = ["bash", "zsh", "fish"] as const;

/** What a value may be, for completion: file names, the built-in collector types, or one of these words. */
export type Completion = "files" | "collector-types" | readonly string[];

/** Commands that take operands after their flags, and what those are; the others take none. */
export const COMMAND_OPERANDS: Partial<Record<Command, Completion>> = {
  validate: "files",
  completion: SHELLS,
};

/** What a string flag's value may be, by long name; a flag not listed takes free text. */
export const FLAG_VALUES: Readonly<Record<string, Completion>> = {
  config: "files",
  "token-file": "files",
  socket: "files",
  "log-level": LOG_LEVELS,
  "log-format": LOG_FORMATS,
  severity: SEVERITIES,
  collector: "collector-types",
};

const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;

type FlagRow<C extends Command> = (typeof COMMAND_FLAGS)[C] & typeof HELP_FLAG;

/** The parsed flags of command C: a string or a boolean by its row of COMMAND_FLAGS, absent when not given. */
type FlagsOf<C extends Command> = { -readonly [F in keyof FlagRow<C>]?: FlagRow<C>[F] extends { type: "string" } ? string : boolean };

/** Parses one command's flags; unknown flags and stray arguments are usage errors. */
export function parseFlags<C extends Command>(command: C, args: string[]) {
  return parseCommandLine(command, args).flags;
}

/** Parses one command's flags and operands (for the commands COMMAND_OPERANDS lists). */
export function parseCommandLine<C extends Command>(command: C, args: string[]): { flags: FlagsOf<C>; operands: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...COMMAND_FLAGS[command], ...HELP_FLAG },
      allowPositionals: COMMAND_OPERANDS[command] !== undefined,
      strict: true,
    });
    // parseArgs cannot see through the generic row; the cast restores what it parsed by
    return { flags: values as FlagsOf<C>, operands: positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}\n\n${HELP[command] ?? HELP.main}`);
  }
}

export function configPath(value: string | undefined): string {
  return value ?? process.env.TAPIO_CONFIG ?? DEFAULT_CONFIG;
}
