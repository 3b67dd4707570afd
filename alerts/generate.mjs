#!/usr/bin/env node
// Writes alerts/aegis-compliance.rules.yml and alerts/tests/aegis-compliance.test.yml from the
// table below, so every check's alert and its promtool tests stay alike.
//   node alerts/generate.mjs [--runbook-base https://your.host/aegis-audit]
// test/alerts/ checks the result against the check registry (ids, severities, `for` versus
// each check's schedule, runbooks): a check added to checks/index.ts needs a row here.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const argBase = process.argv.indexOf('--runbook-base');
/** Where docs/runbooks/<check>.md and docs/deploy/README.md are published. Change it here (or with --runbook-base). */
const RUNBOOK_BASE = argBase > 0 ? process.argv[argBase + 1] : 'https://aegis-audit.example';

// id, the check's severity (critical pages; the rest open a ticket), `for` (>= two runs of its schedule)
const CHECKS = [
  ['auth-failure-spike', 'high', '15m'],
  ['auth-mode', 'critical', '30m'],
  ['credential-age', 'medium', '2h'],
  ['dev-fallback-secrets', 'critical', '1h'],
  ['historical-keys', 'critical', '30m'],
  ['internal-secret-drift', 'high', '30m'],
  ['model-artifact-signature', 'critical', '2h'],
  ['mtls-enforced', 'critical', '30m'],
  ['oidc-jwks', 'critical', '30m'],
  ['pem-files-at-rest', 'high', '2h'],
  ['receipt-chain', 'critical', '30m'],
  ['runtime-secrets-present', 'critical', '30m'],
  ['secrets-in-logs', 'critical', '30m'],
  ['signing-key-fingerprint', 'critical', '30m'],
  ['signing-key-source', 'critical', '30m'],
  ['ssm-persisted-secrets', 'critical', '30m'],
  ['static-vault-token', 'critical', '2h'],
  ['vault-token-hygiene', 'high', '2h'],
];
const STALE_AFTER_SECONDS = 10800; // 3 h: longer than two runs of any check scheduled at least every 90 min

const camel = (id) => id.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
const alertName = (id) => `AegisCompliance${camel(id)}Failing`;
const minutes = (d) => {
  const m = /^(\d+)([mh])$/.exec(d);
  return Number(m[1]) * (m[2] === 'h' ? 60 : 1);
};
const runbook = (id) => `${RUNBOOK_BASE}/docs/runbooks/${id}.md`;
const deployDoc = (anchor) => `${RUNBOOK_BASE}/docs/deploy/README.md#${anchor}`;
const pageSeverity = (sev) => (sev === 'critical' ? 'critical' : 'warning');
const q = (s) => JSON.stringify(s);

const checkDescription = (id) =>
  `Check ${id} (check severity {{ $labels.check_severity }}) reports {{ $value }} finding(s) on {{ $labels.instance }}. The findings, with resources and remediation, are on the auditor's /report.`;

function checkRule([id, sev, forDur]) {
  return `      - alert: ${alertName(id)}
        expr: |
          aegis_compliance_findings{check="${id}"} > 0
            and on (instance, job, check)
          aegis_compliance_check_status{check="${id}", status="fail"} == 1
        for: ${forDur}
        labels:
          severity: ${pageSeverity(sev)}
          check: ${id}
        annotations:
          summary: ${q(`Compliance check ${id} is failing`)}
          description: ${q(checkDescription(id))}
          runbook_url: ${runbook(id)}
`;
}

const META = `  - name: aegis-compliance-auditor
    rules:
      - alert: AegisComplianceAuditorAbsent
        expr: absent(up{job="aegis-audit"})
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "No aegis-audit target is being scraped"
          description: "Prometheus has no target for job {{ $labels.job }}: nothing audits the deployment, and no compliance alert can fire."
          runbook_url: ${deployDoc('auditor-absent-or-down')}
      - alert: AegisComplianceAuditorDown
        expr: up{job="aegis-audit"} == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "The aegis-audit daemon does not answer scrapes"
          description: "The aegis-audit target {{ $labels.instance }} has not answered scrapes for 5 minutes: its compliance results are unknown."
          runbook_url: ${deployDoc('auditor-absent-or-down')}
      - alert: AegisComplianceNoLeader
        expr: max by (job) (aegis_compliance_leader) == 0
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "No aegis-audit replica holds the leader lock"
          description: "Every aegis-audit replica of job {{ $labels.job }} stands by: no replica runs checks."
          runbook_url: ${deployDoc('no-leader')}
      - alert: AegisComplianceResultsStale
        expr: |
          (time() - aegis_compliance_check_last_success_timestamp_seconds) > ${STALE_AFTER_SECONDS}
            and on (instance, job) aegis_compliance_leader == 1
            unless on (instance, job, check) aegis_compliance_check_status{status="skipped"} == 1
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "A compliance check has not been evaluated for hours"
          description: "Check {{ $labels.check }} on {{ $labels.instance }} was last evaluated {{ $value | humanizeDuration }} ago: its status is unknown."
          runbook_url: ${deployDoc('results-stale')}
      - alert: AegisComplianceCheckErroring
        expr: aegis_compliance_check_status{status="error", check_severity="critical"} == 1
        for: 30m
        labels:
          severity: critical
        annotations:
          summary: "A critical compliance check cannot be evaluated"
          description: "Check {{ $labels.check }} on {{ $labels.instance }} has ended in error for 30 minutes (source down, timeout or bad data): the control it proves is unverified."
          runbook_url: ${deployDoc('check-erroring')}
      - alert: AegisComplianceCheckErroring
        expr: aegis_compliance_check_status{status="error", check_severity!="critical"} == 1
        for: 30m
        labels:
          severity: warning
        annotations:
          summary: "A compliance check cannot be evaluated"
          description: "Check {{ $labels.check }} on {{ $labels.instance }} has ended in error for 30 minutes (source down, timeout or bad data): the control it proves is unverified."
          runbook_url: ${deployDoc('check-erroring')}
      - alert: AegisComplianceSourceDown
        expr: aegis_compliance_source_up == 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: "A source the auditor reads is failing"
          description: "Source {{ $labels.source }} has failed for 15 minutes on {{ $labels.instance }}; checks that read it end in error."
          runbook_url: ${deployDoc('source-down')}
`;

const rules = `# Generated by alerts/generate.mjs — edit the table there, then run: node alerts/generate.mjs
# Runbook base: ${RUNBOOK_BASE} (node alerts/generate.mjs --runbook-base https://your.host/aegis-audit)
groups:
  - name: aegis-compliance-checks
    rules:
${CHECKS.map(checkRule).join('')}${META}`;

// ------------------------------------------------------------------------------ promtool tests

const T = 'instance="auditor:9464", job="aegis-audit"';
const ALAB = { instance: 'auditor:9464', job: 'aegis-audit' };
const yamlMap = (o, indent) =>
  Object.entries(o)
    .map(([k, v]) => `${' '.repeat(indent)}${k}: ${q(v)}`)
    .join('\n');

function checkTest([id, sev, forDur]) {
  const f = minutes(forDur);
  // fails from minute 5 on; evaluated just before and just after `for` has elapsed
  const before = 5 + f - 1;
  const after = 5 + f + 1;
  const n = after + 5;
  const exp = {
    labels: { severity: pageSeverity(sev), check: id, check_severity: sev, ...ALAB },
    annotations: {
      summary: `Compliance check ${id} is failing`,
      description: checkDescription(id).replace('{{ $labels.check_severity }}', sev).replace('{{ $value }}', '3').replace('{{ $labels.instance }}', ALAB.instance),
      runbook_url: runbook(id),
    },
  };
  return `  # ${id}: failing for less than ${forDur} is quiet, longer pages; a passing check never fires
  - interval: 1m
    input_series:
      - series: 'aegis_compliance_check_status{check="${id}", check_severity="${sev}", status="fail", ${T}}'
        values: '0x4 1x${n}'
      - series: 'aegis_compliance_findings{check="${id}", check_severity="${sev}", ${T}}'
        values: '0x4 3x${n}'
      - series: 'aegis_compliance_check_status{check="${id}", check_severity="${sev}", status="pass", ${T}}'
        values: '1x4 0x${n}'
    alert_rule_test:
      - eval_time: ${before}m
        alertname: ${alertName(id)}
        exp_alerts: []
      - eval_time: ${after}m
        alertname: ${alertName(id)}
        exp_alerts:
          - exp_labels:
${yamlMap(exp.labels, 14)}
            exp_annotations:
${yamlMap(exp.annotations, 14)}
  - interval: 1m
    input_series:
      - series: 'aegis_compliance_check_status{check="${id}", check_severity="${sev}", status="fail", ${T}}'
        values: '0x${n}'
      - series: 'aegis_compliance_findings{check="${id}", check_severity="${sev}", ${T}}'
        values: '0x${n}'
      - series: 'aegis_compliance_check_status{check="${id}", check_severity="${sev}", status="error", ${T}}'
        values: '1x${n}'
    alert_rule_test:
      - eval_time: ${after}m
        alertname: ${alertName(id)}
        exp_alerts: []
`;
}

const tests = `# Generated by alerts/generate.mjs. promtool test rules alerts/tests/*.yml
rule_files:
  - ../aegis-compliance.rules.yml
evaluation_interval: 1m
tests:
${CHECKS.map(checkTest).join('')}`;

writeFileSync(join(here, 'aegis-compliance.rules.yml'), rules);
writeFileSync(join(here, 'tests', 'aegis-compliance.test.yml'), tests);
console.log(`wrote ${CHECKS.length} check alerts and their tests (runbook base ${RUNBOOK_BASE})`);
