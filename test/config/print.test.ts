import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { Duration } from "../../src/config/duration.ts";
import { printConfig } from "../../src/config/print.ts";
import { isSecretKey, redactSecrets } from "../../src/config/redact.ts";
import { load } from "./helpers.ts";

describe("printConfig", () => {
  const config = load(
    [
      "orchestrator:",
      "  shutdown_timeout: 1m30s",
      "nats:",
      "  url: nats://${NATS_USER}:${NATS_PASS}@nats:4222",
      "  tls: {ca_file: /etc/ca.pem}",
      "collectors:",
      "  files:",
      "    config: {paths: /var/log, api_token: abc}",
      "",
    ].join("\n"),
    { NATS_USER: "tapio", NATS_PASS: "hunter2" },
  );
  const printed = printConfig(config);
  const shown = parse(printed);

  test("shows defaults, expanded values and durations in their notation", () => {
    expect(shown.orchestrator).toEqual({
      workers: 4,
      batch_size: 512,
      buffer: { type: "memory", max_events: 10_000, max_bytes: 67_108_864, when_full: "block" },
      log_level: "info",
      shutdown_timeout: "90s",
      health_interval: "30s",
      once_timeout: "1m",
      restart_backoff: { initial: "1s", max: "1m" },
    });
    expect(shown.nats.stream).toEqual({ name: "TAPIO_EVENTS", max_age: "0s", max_bytes: -1, replicas: 1, duplicate_window: "2m" });
    expect(shown.nats.timeout).toBe("5s");
  });

  test("hides secrets but not the paths of secret files", () => {
    expect(printed).not.toContain("hunter2");
    expect(shown.nats.password).toBe("***");
    expect(shown.nats.username).toBe("tapio");
    // the URL's credentials moved to username and password
    expect(shown.nats.url).toEqual(["nats://nats:4222"]);
    expect(shown.nats.tls.ca_file).toBe("/etc/ca.pem");
    expect(shown.collectors.files.config).toEqual({ paths: ["/var/log"], api_token: "***" });
  });

  test("is valid YAML that starts with an explanation", () => {
    expect(printed.startsWith("# effective configuration")).toBe(true);
  });

  test("does not change the config", () => {
    expect(config.nats.password).toBe("hunter2");
    expect(config.orchestrator.shutdown_timeout).toBeInstanceOf(Duration);
  });
});

describe("redactSecrets", () => {
  test("secret key names", () => {
    for (const key of ["token", "password", "api_token", "Admin_Password", "client_secret", "secret", "SECRETS"]) expect(isSecretKey(key)).toBe(true);
    for (const key of ["creds_file", "nkey_seed_file", "secret_file", "token_file", "username", "tokens", "passwords"]) expect(isSecretKey(key)).toBe(false);
  });

  test("nested values, lists and url credentials", () => {
    const timeout = new Duration(5000);
    expect(
      redactSecrets({
        a: { token: "t", list: [{ password: "p" }, "nats://tok@h:4222"], timeout },
        secret_file: "/s",
        empty_token: null,
        servers: ["tls://u:p@h:1", "nats://h:2"],
      }),
    ).toEqual({
      a: { token: "***", list: [{ password: "***" }, "nats://***@h:4222"], timeout },
      secret_file: "/s",
      empty_token: null,
      servers: ["tls://u:***@h:1", "nats://h:2"],
    });
  });

  test("keeps non-plain objects as they are", () => {
    const duration = new Duration(1000);
    expect((redactSecrets({ d: duration }) as { d: unknown }).d).toBe(duration);
  });
});
