// telemetry.otlp: defaults, located errors, header values never shown, and
// a change of it waiting for a restart (the exports themselves:
// test/metrics/otlp.test.ts).
import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { Duration } from "../../src/config/duration.ts";
import { printConfig } from "../../src/config/print.ts";
import { redactText, rememberSecrets } from "../../src/config/redact.ts";
import { otlpMetricsUrl } from "../../src/metrics/otlp.ts";
import { planReload } from "../../src/orchestrator/reload-plan.ts";
import { errors, load } from "./helpers.ts";

describe("telemetry.otlp", () => {
  test("off unless present; present, it pushes to the local collector every 30s, each export within 10s", () => {
    expect(load("http: {}").telemetry.otlp).toBeUndefined();
    expect(load("telemetry: { otlp: {} }").telemetry.otlp).toEqual({
      endpoint: "http://127.0.0.1:4318",
      interval: new Duration(30_000),
      timeout: new Duration(10_000),
      headers: {},
    });
  });

  test("the timeout defaults to the interval when that is shorter, and may not be longer", () => {
    expect(load("telemetry: { otlp: { interval: 2s } }").telemetry.otlp?.timeout).toEqual(new Duration(2_000));
    expect(errors("telemetry:\n  otlp:\n    interval: 5s\n    timeout: 6s\n")).toEqual(["test.yaml:4:5 telemetry.otlp.timeout: timeout (6s) must not be longer than interval (5s)"]);
  });

  test("every error at its key: the endpoint, header names and values, unknown keys", () => {
    expect(
      errors(
        [
          "telemetry:",
          "  otlp:",
          '    endpoint: "grpc://u:hunter2@collector:4317"',
          "    interval: 0",
          "    headers:",
          '      "bad name": x',
          "      X-Tenant: 42",
          '      X-Two-Lines: "a\\nb"',
          "    header: {}",
          "",
        ].join("\n"),
      ),
    ).toEqual([
      'test.yaml:3:15 telemetry.otlp.endpoint: expected an http:// or https:// URL like http://127.0.0.1:4318, got "grpc://u:***@collector:4317"',
      "test.yaml:4:15 telemetry.otlp.interval: expected a duration above 0 like 250ms, 30s, 5m or 1h, got 0",
      'test.yaml:6:7 telemetry.otlp.headers.bad name: "bad name" is not an HTTP header name (no spaces, ":" or other separators)',
      "test.yaml:7:17 telemetry.otlp.headers.X-Tenant: expected a string in quotes, got a number (not shown): YAML reads an unquoted secret such as 0123 as a number and may change it",
      "test.yaml:8:20 telemetry.otlp.headers.X-Two-Lines: expected a header value on one line (no line breaks)",
      'test.yaml:9:5 telemetry.otlp.header: unknown key "header" (did you mean "headers"?)',
    ]);
  });

  test("exports go to <endpoint>/v1/metrics, as with OTEL_EXPORTER_OTLP_ENDPOINT", () => {
    expect(otlpMetricsUrl("http://127.0.0.1:4318")).toBe("http://127.0.0.1:4318/v1/metrics");
    expect(otlpMetricsUrl("https://otlp.example.com/otlp/")).toBe("https://otlp.example.com/otlp/v1/metrics");
    expect(otlpMetricsUrl("https://otlp.example.com/v1/metrics")).toBe("https://otlp.example.com/v1/metrics");
  });

  test("print-config shows the header names, never their values; logs hide the credential ones", () => {
    const config = load('telemetry:\n  otlp:\n    endpoint: "https://u:p4ssw0rd-1@otlp.example.com"\n    headers: { Authorization: "Bearer header-secret-1", X-Api-Key: key-secret-22, X-Scope-OrgID: tenant-a }\n');
    const printed = printConfig(config);
    expect(parse(printed).telemetry.otlp).toEqual({
      endpoint: "https://u:***@otlp.example.com",
      interval: "30s",
      timeout: "10s",
      headers: { Authorization: "***", "X-Api-Key": "***", "X-Scope-OrgID": "***" },
    });
    for (const value of ["header-secret-1", "key-secret-22", "tenant-a", "p4ssw0rd-1"]) expect(printed).not.toContain(value);

    rememberSecrets(config);
    expect(redactText("sent Bearer header-secret-1 and key-secret-22 for tenant-a")).toBe("sent *** and *** for tenant-a");
  });

  test("a change of telemetry.otlp waits for a restart: the MeterProvider's readers are fixed", () => {
    const before = load("http: {}");
    const next = load("telemetry: { otlp: { endpoint: http://collector:4318 } }");
    expect(planReload(before, next, new Set()).needRestart).toEqual(["telemetry.otlp"]);
    expect(planReload(next, load("telemetry: { otlp: { endpoint: http://collector:4318, headers: { X-A: b } } }"), new Set()).needRestart).toEqual(["telemetry.otlp"]);
    expect(planReload(next, load("telemetry: { otlp: { endpoint: http://collector:4318 } }"), new Set()).needRestart).toEqual([]);
  });
});
