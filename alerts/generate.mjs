#!/usr/bin/env node
// Writes the alert rules, their promtool tests and the PrometheusRule from the check registry:
// each check's severity, schedule and pagesOnFirstFailure decide its alerts, so a new check
// needs no hand-written row (src/outputs/alert-rules.ts has the rules and their timing).
//
//   npm run alerts                      rewrite the shipped files (builds first)
//   node alerts/generate.mjs [--runbook-base URL] [--keep-firing-for 5m] [--config audit.yaml --out DIR]
//
// --runbook-base  where the repository's docs are published (default: links are repository
//                 paths, docs/runbooks/<check>.md)
// --keep-firing-for  how long an alert on a check's result keeps firing once no replica exports
//                 it (default 5m): longer than a change of leader takes to reach the rules
//                 (queue.publish_interval + a scrape + an evaluation); a check that really
//                 recovers resolves that much later
// --config        a deployment's audit.yaml: its enabled checks, schedules and timeouts
// --out           write the three files into DIR instead of the shipped locations
//
// test/alerts/ fails when the shipped files differ from what this writes.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (!v || v.startsWith('--')) fail(`${name} needs a value`);
  return v;
}
function fail(message) {
  console.error(`alerts/generate.mjs: ${message}`);
  process.exit(2);
}

if (!existsSync(join(root, 'dist', 'src', 'outputs', 'alert-rules.js'))) fail('dist/ is missing or old: run `npm run build` first (npm run alerts does)');
const gen = require('../dist/src/outputs/alert-rules.js');
const { registry } = require('../dist/checks/index.js');

const runbookBase = arg('--runbook-base') ?? '';
const keepText = arg('--keep-firing-for');
let keepFiringFor;
if (keepText !== undefined) {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(keepText);
  keepFiringFor = m && keepText !== '' ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!(keepFiringFor >= 60) || keepFiringFor % 60 !== 0) fail(`--keep-firing-for ${keepText}: want whole minutes, at least 1m (e.g. 5m, 1h30m)`);
}
const configFile = arg('--config');
const out = arg('--out');
if (configFile && !out) fail('--config needs --out DIR (the shipped files follow the built-in defaults)');

let checks;
if (configFile) {
  const { loadConfig } = require('../dist/src/config/load.js');
  const { planChecks } = require('../dist/src/app/audit.js');
  let loaded;
  try {
    loaded = loadConfig(resolve(configFile), { registry });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  checks = planChecks(loaded, registry).map(({ check, timeoutMs }) =>
    gen.alertCheck(check.meta, { schedule: loaded.config.checks[check.meta.id]?.schedule, timeoutMs }),
  );
} else {
  checks = [...registry.values()].map((c) => gen.alertCheck(c.meta));
}

const opts = { runbookBase, keepFiringFor };
const files = out
  ? [
      [join(out, 'aegis-compliance.rules.yml'), gen.alertRulesYaml(checks, opts)],
      [join(out, 'aegis-compliance.test.yml'), gen.alertRulesTestsYaml(checks, opts, 'aegis-compliance.rules.yml')],
      [join(out, 'prometheusrule.yaml'), gen.prometheusRuleYaml(checks, opts)],
    ]
  : [
      [join(here, 'aegis-compliance.rules.yml'), gen.alertRulesYaml(checks, opts)],
      [join(here, 'tests', 'aegis-compliance.test.yml'), gen.alertRulesTestsYaml(checks, opts)],
      [join(root, 'docs', 'deploy', 'kubernetes', 'prometheusrule.yaml'), gen.prometheusRuleYaml(checks, opts)],
    ];
for (const [file, text] of files) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
console.log(`wrote alerts for ${checks.length} checks (runbook links: ${runbookBase || 'repository paths'}; keep_firing_for ${keepText ?? '5m'}):\n${files.map(([f]) => `  ${f}`).join('\n')}`);
