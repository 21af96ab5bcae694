// Writes prometheus-rules.rules.yaml (a plain Prometheus rules file) from the
// groups of prometheus-rules.yaml (the PrometheusRule), so the alerts are
// written once. Run: bun deploy/monitoring/rules-file.ts
// test/deploy/alerts.test.ts fails when the committed file differs from this output.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";

export const MONITORING = import.meta.dir;
export const PROMETHEUS_RULE = join(MONITORING, "prometheus-rules.yaml");
export const RULES_FILE = join(MONITORING, "prometheus-rules.rules.yaml");

const HEADER = `# Generated from prometheus-rules.yaml by \`bun deploy/monitoring/rules-file.ts\`: edit that file.
# For Prometheus without the operator: list this file under rule_files in prometheus.yml.
`;

/** The text of the plain rules file: the PrometheusRule's spec.groups. */
export function rulesFileText(): string {
  const rule = parse(readFileSync(PROMETHEUS_RULE, "utf8"));
  return HEADER + stringify({ groups: rule.spec.groups }, { lineWidth: 0 });
}

if (import.meta.main) writeFileSync(RULES_FILE, rulesFileText());
