import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Duration } from "../../src/config/duration.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { errors, load, testRegistry } from "./helpers.ts";

const fixtures = join(import.meta.dir, "../fixtures/config");

describe("defaults", () => {
  test("an empty mapping gets every default", () => {
    const config = load("orchestrator:\n");
    expect(config.orchestrator).toEqual({
      workers: 4,
      batch_size: 512,
      buffer: { type: "memory", max_events: 10_000, max_bytes: 67_108_864, when_full: "block" },
      log_level: "info",
      shutdown_timeout: new Duration(30_000),
      health_interval: new Duration(30_000),
      once_timeout: new Duration(60_000),
      restart_backoff: { initial: new Duration(1000), max: new Duration(60_000) },
    });
    expect(config.nats).toEqual({
      url: ["nats://127.0.0.1:4222"],
      subject: "tapio.events",
      mode: "jetstream",
      stream: { name: "TAPIO_EVENTS", max_age: new Duration(0), max_bytes: -1, replicas: 1, duplicate_window: new Duration(120_000) },
      name: "tapio-collectors",
      inbox_prefix: "_INBOX",
      max_reconnects: -1,
      reconnect_wait: new Duration(2000),
      timeout: new Duration(5000),
      max_in_flight: 256,
      circuit_breaker: { failure_threshold: 5, open_for: new Duration(5000), probe_timeout: new Duration(10_000) },
    });
    expect(config.spool).toEqual({
      enabled: true,
      path: "/var/lib/tapio-collectors/spool.db",
      max_bytes: 1024 ** 3,
      when_full: "block",
      spill_after: new Duration(2000),
    });
    expect(config.collectors).toEqual({});
  });

  test("defaults are Duration instances", () => {
    expect(load("nats: {}\n").orchestrator.shutdown_timeout).toBeInstanceOf(Duration);
  });

  test("optional settings stay absent", () => {
    const { nats } = load("nats:\n  mode: core\n");
    for (const key of ["token", "username", "password", "nkey_seed_file", "creds_file", "tls"]) expect(nats).not.toHaveProperty(key);
  });

  test("a collector without config gets its factory's defaults", () => {
    const config = load("collectors:\n  synthetic:\n");
    expect(config.collectors).toEqual({
      synthetic: { enabled: true, config: { rate: 10, burst: 1, interval: new Duration(1000), type: "synthetic.event" } },
    });
  });

  test("collectors not named in the file are left out", () => {
    expect(Object.keys(load("collectors:\n  synthetic: {enabled: false}\n").collectors)).toEqual(["synthetic"]);
  });

  test("an empty tls section enables TLS with defaults", () => {
    expect(load("nats:\n  tls:\n").nats.tls).toEqual({ insecure_skip_verify: false });
  });
});

describe("values", () => {
  test("a full file", async () => {
    const config = await loadConfigFile(join(fixtures, "full.yaml"), testRegistry(), {});
    expect(config.orchestrator).toEqual({
      workers: 8,
      batch_size: 512,
      buffer: { type: "memory", max_events: 50_000, max_bytes: 128 * 1024 * 1024, when_full: "block" },
      log_level: "debug",
      shutdown_timeout: new Duration(90_000),
      health_interval: new Duration(30_000),
      once_timeout: new Duration(60_000),
      restart_backoff: { initial: new Duration(500), max: new Duration(30_000) },
    });
    expect(config.nats).toEqual({
      url: ["nats://nats-0.nats:4222", "tls://nats-1.nats:4222", "nats-2.nats:4222"],
      subject: "tapio.events.node",
      mode: "core",
      stream: { name: "TAPIO", max_age: new Duration(86_400_000), max_bytes: 1_000_000_000, replicas: 3, duplicate_window: new Duration(60_000) },
      name: "tapio-node-1",
      inbox_prefix: "_INBOX",
      max_reconnects: 10,
      reconnect_wait: new Duration(1000),
      timeout: new Duration(10_000),
      max_in_flight: 1024,
      circuit_breaker: { failure_threshold: 5, open_for: new Duration(5000), probe_timeout: new Duration(10_000) },
      creds_file: "/etc/nats/tapio.creds",
      tls: { ca_file: "/etc/nats/ca.pem", cert_file: "/etc/nats/cert.pem", key_file: "/etc/nats/key.pem", insecure_skip_verify: false },
    });
    expect(config.collectors).toEqual({
      synthetic: { enabled: false, config: { rate: 2.5, burst: 1, interval: new Duration(250), type: "synthetic.event" } },
      files: { enabled: true, config: { paths: ["/var/log/a.log", "/var/log/b.log"] } },
    });
  });

  test("a url string becomes a list", () => {
    expect(load("nats:\n  url: nats://a:4222\n").nats.url).toEqual(["nats://a:4222"]);
  });

  test("a collector's string-or-list setting becomes a list", () => {
    expect(load("collectors:\n  files:\n    config: {paths: /var/log/x}\n").collectors.files?.config).toEqual({ paths: ["/var/log/x"] });
  });

  test("byte sizes: decimal and binary units, -1 for unlimited", () => {
    expect(load("orchestrator: {buffer_bytes: 512KB}\n").orchestrator.buffer.max_bytes).toBe(512_000);
    expect(load("orchestrator: {buffer_bytes: 64MiB}\n").orchestrator.buffer.max_bytes).toBe(67_108_864);
    expect(load("orchestrator: {buffer: {max_bytes: 1G}}\n").orchestrator.buffer.max_bytes).toBe(1_000_000_000);
    expect(load("nats: {stream: {max_bytes: -1}}\n").nats.stream.max_bytes).toBe(-1);
  });

  test("buffer_size and buffer_bytes are the short forms of buffer.max_events and buffer.max_bytes", () => {
    expect(load("orchestrator: {buffer_size: 500, buffer: {type: disk, when_full: drop_oldest}}\n").orchestrator.buffer).toEqual({
      type: "disk",
      max_events: 500,
      max_bytes: 67_108_864,
      when_full: "drop_oldest",
    });
    expect(errors("orchestrator:\n  buffer_size: 5\n  buffer: {max_events: 6}\n")).toEqual([
      "test.yaml:2:3 orchestrator.buffer_size: buffer_size is the short form of buffer.max_events; set only one",
    ]);
    expect(errors("orchestrator:\n  buffer: {type: tape}\n")[0]).toContain('orchestrator.buffer.type: expected one of memory, disk, got "tape"');
  });

  test("max_age: 0 needs no unit", () => {
    expect(load("nats: {stream: {max_age: 0}}\n").nats.stream.max_age).toEqual(new Duration(0));
  });

  test("max_age and duplicate_window may be 0", () => {
    const { stream } = load("nats: {stream: {max_age: 0s, duplicate_window: 0}}\n").nats;
    expect([stream.max_age, stream.duplicate_window]).toEqual([new Duration(0), new Duration(0)]);
  });

  test("anchors and aliases resolve", () => {
    const config = load("nats:\n  timeout: &t 7s\n  reconnect_wait: *t\n");
    expect(config.nats.reconnect_wait).toEqual(new Duration(7000));
  });

  test("username with password, one method", () => {
    const { nats } = load("nats:\n  username: u\n  password: p\n");
    expect([nats.username, nats.password]).toEqual(["u", "p"]);
  });
});

describe("errors", () => {
  test("a value of the wrong type", () => {
    expect(errors("orchestrator:\n  workers: abc\n")).toEqual([
      'test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got "abc"',
    ]);
  });

  test("out of range", () => {
    expect(errors("orchestrator:\n  workers: 65\n")).toEqual(["test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got 65"]);
    expect(errors("nats:\n  max_reconnects: -2\n")).toEqual(["test.yaml:2:19 nats.max_reconnects: expected an integer of at least -1, got -2"]);
  });

  test("an inbox prefix must be literal subject tokens: the agent subscribes to <prefix>.<unique>.*", () => {
    expect(load("nats:\n  inbox_prefix: _INBOX_tapio.node\n").nats.inbox_prefix).toBe("_INBOX_tapio.node");
    expect(errors("nats:\n  inbox_prefix: _INBOX.>\n")).toEqual([
      'test.yaml:2:17 nats.inbox_prefix: expected a NATS subject prefix like _INBOX_tapio (tokens separated by ".", no spaces, "*" or ">"), got "_INBOX.>"',
    ]);
  });

  test("a mapping where a value belongs, and a list where a mapping belongs", () => {
    expect(errors("nats:\n  subject: {a: 1}\n  stream: [x]\n")).toEqual([
      'test.yaml:2:12 nats.subject: expected a NATS subject prefix like tapio.events (tokens separated by ".", no spaces, "*" or ">"), got a mapping',
      "test.yaml:3:11 nats.stream: expected a mapping, got a list",
    ]);
  });

  test("an empty value", () => {
    expect(errors("orchestrator:\n  log_level:\n")).toEqual([
      "test.yaml:2:13 orchestrator.log_level: expected one of trace, debug, info, warn, error, fatal, got null",
    ]);
  });

  test("an unknown key, with a suggestion, at the key", () => {
    expect(errors("orchestrator:\n  buffer_size: 10\n  wokers: 4\n")).toEqual([
      'test.yaml:3:3 orchestrator.wokers: unknown key "wokers" (did you mean "workers"?)',
    ]);
  });

  test("an unknown key with nothing close lists the known keys", () => {
    expect(errors("nats:\n  stream:\n    flavour: x\n")).toEqual([
      'test.yaml:3:5 nats.stream.flavour: unknown key "flavour" (known keys: name, max_age, max_bytes, replicas, duplicate_window)',
    ]);
  });

  test("every unknown key of a mapping is reported", () => {
    expect(errors("orchestrator: {wrkers: 1, log_lvl: info}\n")).toEqual([
      'test.yaml:1:16 orchestrator.wrkers: unknown key "wrkers" (did you mean "workers"?)',
      'test.yaml:1:27 orchestrator.log_lvl: unknown key "log_lvl" (did you mean "log_level"?)',
    ]);
  });

  test("nats under orchestrator, as the old design had it", () => {
    expect(errors("orchestrator:\n  nats:\n    url: nats://x:4222\n")).toEqual([
      'test.yaml:2:3 orchestrator.nats: unknown key "nats": nats settings go at the top level, not under orchestrator',
    ]);
  });

  test("a misspelled top-level section", () => {
    expect(errors("collector:\n  synthetic: {}\n")).toEqual(['test.yaml:1:1 collector: unknown key "collector" (did you mean "collectors"?)']);
  });

  test("an unknown collector, with a suggestion", () => {
    expect(errors("collectors:\n  synthtic:\n    enabled: true\n")).toEqual([
      'test.yaml:2:3 collectors.synthtic: unknown collector "synthtic" (did you mean "synthetic"?)',
    ]);
    expect(errors("collectors:\n  kafka: {}\n")).toEqual(['test.yaml:2:3 collectors.kafka: unknown collector "kafka" (known collectors: files, synthetic)']);
  });

  test("errors inside a collector's config", () => {
    expect(errors("collectors:\n  synthetic:\n    config:\n      rate: -1\n      intervl: 1s\n")).toEqual([
      "test.yaml:4:13 collectors.synthetic.config.rate: expected a number from 0 to 1000, got -1",
      'test.yaml:5:7 collectors.synthetic.config.intervl: unknown key "intervl" (did you mean "interval"?)',
    ]);
  });

  test("a missing required key, at the enclosing mapping", () => {
    expect(errors("collectors:\n  files:\n    config:\n      api_token: x\n")).toEqual([
      'test.yaml:3:5 collectors.files.config.paths: missing required key "paths"',
    ]);
    expect(errors("collectors:\n  files:\n")).toEqual(['test.yaml:2:3 collectors.files.config.paths: missing required key "paths"']);
  });

  test("username without password, at the one present", () => {
    expect(errors("nats:\n  url: nats://a:4222\n  username: tapio\n")).toEqual([
      "test.yaml:3:3 nats.username: username is set without password; set both or neither",
    ]);
    expect(errors("nats:\n  password: x\n")).toEqual(["test.yaml:2:3 nats.password: password is set without username; set both or neither"]);
  });

  test("two authentication methods", () => {
    expect(errors("nats:\n  token: t\n  creds_file: /etc/x.creds\n")).toEqual([
      "test.yaml:3:3 nats.creds_file: set only one authentication method, found token, creds_file",
    ]);
  });

  test("cert_file without key_file", () => {
    expect(errors("nats:\n  tls:\n    cert_file: /c.pem\n")).toEqual(["test.yaml:3:5 nats.tls.cert_file: cert_file is set without key_file; set both or neither"]);
  });

  test("restart backoff initial longer than max", () => {
    expect(errors("orchestrator:\n  restart_backoff: {initial: 2m}\n")).toEqual([
      "test.yaml:2:21 orchestrator.restart_backoff.initial: initial (2m) must not be longer than max (1m)",
    ]);
  });

  test("a bad duration", () => {
    expect(errors("orchestrator:\n  shutdown_timeout: 30 seconds\n  restart_backoff:\n    max: 30\n")).toEqual([
      'test.yaml:2:21 orchestrator.shutdown_timeout: expected a duration above 0 like 250ms, 30s, 5m or 1h, got "30 seconds"',
      "test.yaml:4:10 orchestrator.restart_backoff.max: expected a duration above 0 like 250ms, 30s, 5m or 1h, got 30",
    ]);
  });

  test("a zero duration where 0 would break things", () => {
    const yaml = [
      "orchestrator:",
      "  shutdown_timeout: 0s",
      "  restart_backoff: {initial: 0, max: 0ms}",
      "nats:",
      "  timeout: 0s",
      "  reconnect_wait: 0",
      "  circuit_breaker:",
      "    open_for: 0m",
      "    probe_timeout: 0h",
      "spool:",
      "  spill_after: 0s",
      "",
    ].join("\n");
    const expected = "expected a duration above 0 like 250ms, 30s, 5m or 1h";
    expect(errors(yaml)).toEqual([
      `test.yaml:2:21 orchestrator.shutdown_timeout: ${expected}, got "0s"`,
      `test.yaml:3:30 orchestrator.restart_backoff.initial: ${expected}, got 0`,
      `test.yaml:3:38 orchestrator.restart_backoff.max: ${expected}, got "0ms"`,
      `test.yaml:5:12 nats.timeout: ${expected}, got "0s"`,
      `test.yaml:6:19 nats.reconnect_wait: ${expected}, got 0`,
      `test.yaml:8:15 nats.circuit_breaker.open_for: ${expected}, got "0m"`,
      `test.yaml:9:20 nats.circuit_breaker.probe_timeout: ${expected}, got "0h"`,
      `test.yaml:11:16 spool.spill_after: ${expected}, got "0s"`,
    ]);
  });

  test("a bad byte size", () => {
    expect(errors("orchestrator:\n  buffer_bytes: 12 parsecs\n")).toEqual([
      'test.yaml:2:17 orchestrator.buffer_bytes: expected a byte size like 512KB, 64MiB or 1GB (at least 1 bytes), got "12 parsecs"',
    ]);
  });

  test("a bad url: in a list at its item, as a string at the string", () => {
    expect(errors("nats:\n  url:\n    - nats://a:4222\n    - http://b:80\n")).toEqual([
      'test.yaml:4:7 nats.url.1: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "http://b:80"',
    ]);
    expect(errors("nats:\n  url: just-a-host\n")).toEqual([
      'test.yaml:2:8 nats.url: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "just-a-host"',
    ]);
    expect(errors("nats:\n  url: []\n")).toEqual(["test.yaml:2:8 nats.url: expected at least one NATS server URL, got an empty list"]);
    expect(errors("nats:\n  url: 4222\n")).toEqual(["test.yaml:2:8 nats.url: expected a string or a list of strings, got 4222"]);
  });

  test("a bad subject", () => {
    for (const subject of ["tapio..events", "tapio.*", "tapio.>", '"tapio events"', ".tapio"]) {
      expect(errors(`nats:\n  subject: ${subject}\n`)[0]).toStartWith("test.yaml:2:12 nats.subject: expected a NATS subject prefix");
    }
  });

  test("a bad stream name and mode", () => {
    expect(errors("nats:\n  mode: streaming\n  stream: {name: tapio.events}\n")).toEqual([
      'test.yaml:2:9 nats.mode: expected one of core, jetstream, got "streaming"',
      'test.yaml:3:18 nats.stream.name: expected a stream name without spaces, ".", "*", ">", "/" or "\\", got "tapio.events"',
    ]);
  });

  test("an empty file", () => {
    const expected = ["test.yaml:1:1 (root): the file is empty; expected a mapping with orchestrator, nats and collectors"];
    expect(errors("")).toEqual(expected);
    expect(errors("# nothing here yet\n\n# still nothing\n")).toEqual(expected);
  });

  test("a YAML syntax error", () => {
    expect(errors("orchestrator:\n  workers: 4\n nats: [\n")).toEqual([
      "test.yaml:3:1 (root): invalid YAML: All mapping items must start at the same column",
      "test.yaml:3:8 (root): invalid YAML: this [ list is never closed: a ] is missing",
    ]);
  });

  test("a duplicate key", () => {
    expect(errors("orchestrator:\n  workers: 1\n  workers: 2\n")).toEqual(['test.yaml:3:3 orchestrator.workers: duplicate key "workers"']);
  });

  test("a top level that is not a mapping", () => {
    expect(errors("- orchestrator\n- nats\n")).toEqual([
      "test.yaml:1:1 (root): the top level must be a mapping with orchestrator, nats and collectors, got a list",
    ]);
    expect(errors("just text\n")).toEqual([
      'test.yaml:1:1 (root): the top level must be a mapping with orchestrator, nats and collectors, got "just text"',
    ]);
  });

  test("a self-referencing alias", () => {
    expect(errors("nats:\n  url: &u [*u]\n")).toEqual(["test.yaml:2:12 nats.url.0: alias *u refers to itself"]);
  });

  test("keys that are not plain scalars, or collide once read as text", () => {
    expect(errors("orchestrator:\n  ? [a, b]\n  : 1\n")).toEqual(["test.yaml:2:5 orchestrator: keys must be plain words, not empty, lists or mappings"]);
    expect(errors('collectors:\n  1: {}\n  "1": {}\n')).toEqual(['test.yaml:3:3 collectors.1: duplicate key "1"']);
  });

  test("exponential alias expansion stops with one error", () => {
    const yaml = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "",
    ].join("\n");
    const found = errors(yaml);
    expect(found).toHaveLength(1);
    // located at the alias being expanded, which may sit inside an anchored node
    expect(found[0]).toMatch(/^test\.yaml:\d+:\d+ d(\.\d+)+: more than 1000 alias expansions$/);
  });

  test("several errors at once, in file order", async () => {
    const failure = await loadConfigFile(join(fixtures, "errors.yaml"), testRegistry(), {}).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConfigError);
    const error = failure as ConfigError;
    const file = join(fixtures, "errors.yaml");
    expect(error.format().split("\n")).toEqual([
      `${file}:4:3 orchestrator.wokers: unknown key "wokers" (did you mean "workers"?)`,
      `${file}:5:14 orchestrator.log_level: expected one of trace, debug, info, warn, error, fatal, got "verbose"`,
      `${file}:8:8 nats.url: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "localhost"`,
      `${file}:9:3 nats.username: username is set without password; set both or neither`,
      // at the second method in the order token, username/password, nkey_seed_file, creds_file
      `${file}:9:3 nats.username: set only one authentication method, found token, username/password`,
      `${file}:14:20 collectors.synthetic.config.rate: expected a number from 0 to 1000, got "fast"`,
      `${file}:15:3 collectors.synthetik: unknown collector "synthetik" (did you mean "synthetic"?)`,
    ]);
    expect(error.issues.map((i) => i.line)).toEqual([4, 5, 8, 9, 9, 14, 15]);
    expect(error.issues[0]).toEqual({
      file,
      line: 4,
      column: 3,
      path: "orchestrator.wokers",
      message: 'unknown key "wokers" (did you mean "workers"?)',
    });
    expect(error.message).toBe(error.format());
    expect(error.name).toBe("ConfigError");
  });

  test("an unreadable file", async () => {
    const failure = await loadConfigFile(join(fixtures, "missing.yaml"), testRegistry(), {}).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConfigError);
    const error = failure as ConfigError;
    expect(error.issues).toHaveLength(1);
    expect(error.format()).toStartWith(`${join(fixtures, "missing.yaml")}: cannot read: ENOENT`);
    expect(error.format()).not.toContain("\n");
  });
});
