// The exporters read the MeterProvider we build: they must come from one copy
// of @opentelemetry/sdk-metrics with it (two copies mean two sets of classes
// and twice the code in the binary). package.json pins the exporters and
// sdk-metrics to versions that agree; this catches an update that does not.
import { expect, test } from "bun:test";
import { createRequire } from "node:module";
import { dirname } from "node:path";

for (const exporter of ["@opentelemetry/exporter-prometheus", "@opentelemetry/exporter-metrics-otlp-http"]) {
  test(`${exporter} uses the same @opentelemetry/sdk-metrics as the agent`, () => {
    const fromAgent = createRequire(import.meta.url).resolve("@opentelemetry/sdk-metrics");
    const fromExporter = createRequire(createRequire(import.meta.url).resolve(exporter)).resolve("@opentelemetry/sdk-metrics");
    expect(dirname(fromExporter)).toBe(dirname(fromAgent));
  });
}
