// The Prometheus exporter reads the MeterProvider we build: both must come
// from one copy of @opentelemetry/sdk-metrics (two copies mean two sets of
// classes and twice the code in the binary). package.json pins the exporter
// and sdk-metrics to versions that agree; this catches an update that does not.
import { expect, test } from "bun:test";
import { createRequire } from "node:module";
import { dirname } from "node:path";

test("the Prometheus exporter uses the same @opentelemetry/sdk-metrics as the agent", () => {
  const fromAgent = createRequire(import.meta.url).resolve("@opentelemetry/sdk-metrics");
  const exporter = createRequire(import.meta.url).resolve("@opentelemetry/exporter-prometheus");
  const fromExporter = createRequire(exporter).resolve("@opentelemetry/sdk-metrics");
  expect(dirname(fromExporter)).toBe(dirname(fromAgent));
});
