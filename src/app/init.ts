/**
 * `aegis-audit init`: a commented starter audit.yaml for the sources found where the auditor
 * runs — environment variables that name the audit database, AWS, Vault and Prometheus, and
 * the Aegis default paths of logs, env files and PEM keys. Values from the environment are
 * written as `${VAR}` references, never copied: a database URL or token never lands in the
 * file. Sources not found stay in the file as commented examples.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Detected {
  deployment: string;
  services: string[];
  /** The environment variable holding the audit database URL. */
  postgresEnv?: string;
  awsRegionEnv?: string;
  vault?: { addressEnv: string; tokenEnv?: string; tokenFile?: string; namespaceEnv?: string; caFileEnv?: string };
  prometheusEnv?: string;
  logFiles: Record<string, string>;
  envFiles: Record<string, string>;
  pemFiles: { receipt?: string; root?: string };
  /** What was found, for the message after writing. */
  found: string[];
}

const DEFAULT_SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight'];
const POSTGRES_VARS = ['AUDIT_DATABASE_URL', 'AEGIS_AUDIT_DATABASE_URL', 'DATABASE_URL'];
const VAULT_TOKEN_FILES = ['/var/run/secrets/vault-token', '/vault/secrets/token'];

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
const has = (env: NodeJS.ProcessEnv, name: string) => typeof env[name] === 'string' && env[name] !== '';

/**
 * Looks at the environment and at the Aegis default paths under `root` (`/`, or where a
 * deployment's volumes are mounted).
 */
export function detectSources(env: NodeJS.ProcessEnv, root = '/', deployment?: string): Detected {
  const found: string[] = [];
  const d: Detected = { deployment: deployment ?? env.AEGIS_ENV ?? 'prod', services: [...DEFAULT_SERVICES], logFiles: {}, envFiles: {}, pemFiles: {}, found };
  d.postgresEnv = POSTGRES_VARS.find((v) => has(env, v));
  if (d.postgresEnv) found.push(`postgres (${d.postgresEnv})`);
  d.awsRegionEnv = ['AWS_REGION', 'AWS_DEFAULT_REGION'].find((v) => has(env, v));
  if (d.awsRegionEnv) found.push(`AWS SSM and CloudWatch Logs (${d.awsRegionEnv})`);
  if (has(env, 'VAULT_ADDR')) {
    const tokenFile = VAULT_TOKEN_FILES.map((f) => join(root, f)).find(isFile);
    d.vault = {
      addressEnv: 'VAULT_ADDR',
      ...(has(env, 'VAULT_TOKEN') ? { tokenEnv: 'VAULT_TOKEN' } : { tokenFile: tokenFile ?? join(root, VAULT_TOKEN_FILES[0]) }),
      ...(has(env, 'VAULT_NAMESPACE') ? { namespaceEnv: 'VAULT_NAMESPACE' } : {}),
      ...(has(env, 'VAULT_CACERT') ? { caFileEnv: 'VAULT_CACERT' } : {}),
    };
    found.push('vault (VAULT_ADDR)');
  }
  d.prometheusEnv = ['PROMETHEUS_URL'].find((v) => has(env, v));
  if (d.prometheusEnv) found.push(`prometheus (${d.prometheusEnv})`);

  const logRoot = join(root, 'var/log/aegis');
  if (isDir(logRoot)) {
    for (const s of readdirSync(logRoot).sort()) if (isDir(join(logRoot, s))) d.logFiles[s] = join(logRoot, s, '*.jsonl');
    if (Object.keys(d.logFiles).length) found.push(`log files (${Object.keys(d.logFiles).join(', ')})`);
  }
  const envRoot = join(root, 'run/aegis');
  if (isDir(envRoot)) {
    for (const f of readdirSync(envRoot).sort()) if (f.endsWith('.env') && isFile(join(envRoot, f))) d.envFiles[f.slice(0, -4)] = join(envRoot, f);
    if (Object.keys(d.envFiles).length) found.push(`env files (${Object.keys(d.envFiles).join(', ')})`);
  }
  for (const key of ['receipt', 'root'] as const) {
    const p = join(root, 'data/keys', `${key}-signing.pem`);
    if (isFile(p)) d.pemFiles[key] = p;
  }
  if (d.pemFiles.receipt || d.pemFiles.root) found.push('PEM key files');
  for (const s of [...Object.keys(d.logFiles), ...Object.keys(d.envFiles)]) if (!d.services.includes(s)) d.services.push(s);
  return d;
}

const q = (s: string) => JSON.stringify(s);

function mapLines(m: Record<string, string>, indent: string): string[] {
  return Object.entries(m).map(([k, v]) => `${indent}${k}: ${q(v)}`);
}

/** The starter file. Every source found is active; the others are commented examples. */
export function starterConfig(d: Detected): string {
  const L: string[] = [
    '# aegis-audit configuration, written by `aegis-audit init`.',
    '# Every key: docs/configuration.md (or `aegis-audit config reference`); what the auditor expects',
    '# to find at these places: docs/aegis-formats.md. Check it with `aegis-audit config validate`.',
    '# Secrets never go in this file: it names where they are (${VAR} reads an environment variable).',
    '',
    `deployment: ${q(d.deployment)}`,
    `services: [${d.services.join(', ')}]`,
    '',
    'sources:',
  ];
  L.push('  # The audit database: chain, roots, historical keys, API keys (a read-only role is enough).');
  if (d.postgresEnv) L.push('  postgres:', `    url: "\${${d.postgresEnv}}"`);
  else L.push('  # postgres:', '  #   url: "${AUDIT_DATABASE_URL}"');
  L.push('');

  L.push('  # Logs: signing_key_loaded and auth_failure events, one JSON object per line.');
  const hasFiles = Object.keys(d.logFiles).length > 0;
  if (hasFiles || d.awsRegionEnv) {
    L.push('  logs:');
    if (hasFiles) L.push('    files:', ...mapLines(d.logFiles, '      '));
    else L.push('    # files: { audit: "/var/log/aegis/audit/*.jsonl", gateway: "/var/log/aegis/gateway/*.jsonl" }');
    if (d.awsRegionEnv && !hasFiles) {
      L.push('    cloudwatch:', `      region: "\${${d.awsRegionEnv}}"`, '      groups:', ...d.services.map((s) => `        ${s}: ${q(`/aegis/${d.deployment}/${s}`)}`));
    } else {
      L.push(`    # cloudwatch: { region: eu-west-1, groups: { audit: /aegis/${d.deployment}/audit } }`);
    }
    L.push('    window: 24h');
  } else {
    L.push('  # logs:', '  #   files: { audit: "/var/log/aegis/audit/*.jsonl", gateway: "/var/log/aegis/gateway/*.jsonl" }', '  #   window: 24h');
  }
  L.push('');

  L.push('  # Secrets, compared by keyed fingerprint and never shown: env files, PEM files, SSM, Vault.');
  const secretLines: string[] = [];
  if (Object.keys(d.envFiles).length) secretLines.push('    env_files:', ...mapLines(d.envFiles, '      '));
  else secretLines.push('    # env_files: { audit: /run/aegis/audit.env, gateway: /run/aegis/gateway.env }');
  if (d.pemFiles.receipt || d.pemFiles.root) secretLines.push('    pem_files:', ...mapLines(d.pemFiles as Record<string, string>, '      '));
  else secretLines.push('    # pem_files: { receipt: /data/keys/receipt-signing.pem, root: /data/keys/root-signing.pem }');
  if (d.awsRegionEnv) secretLines.push('    ssm:', `      region: "\${${d.awsRegionEnv}}"`, `      path: ${q(`/aegis/${d.deployment}`)}`, '      deploy_document: aegis-deploy');
  else secretLines.push(`    # ssm: { region: eu-west-1, path: /aegis/${d.deployment}, deploy_document: aegis-deploy }`);
  if (d.vault) {
    secretLines.push('    vault:', `      address: "\${${d.vault.addressEnv}}"`);
    if (d.vault.tokenEnv) secretLines.push(`      token_env: ${d.vault.tokenEnv}        # the variable's name, not its value`);
    else secretLines.push(`      token_file: ${q(d.vault.tokenFile as string)}`);
    if (d.vault.namespaceEnv) secretLines.push(`      namespace: "\${${d.vault.namespaceEnv}}"`);
    if (d.vault.caFileEnv) secretLines.push(`      ca_file: "\${${d.vault.caFileEnv}}"`);
    secretLines.push('      kv_mount: secret');
  } else secretLines.push('    # vault: { address: "https://vault:8200", token_file: /var/run/secrets/vault-token, kv_mount: secret }');
  const anySecrets = secretLines.some((l) => !l.trimStart().startsWith('#'));
  L.push(anySecrets ? '  secrets:' : '  # secrets:', ...secretLines.map((l) => (anySecrets || l.trimStart().startsWith('#') ? l : `  # ${l.trim()}`)));
  L.push('');

  L.push('  # Prometheus: aegis_auth_failures_total, when no logs are configured.');
  if (d.prometheusEnv) L.push('  prometheus:', `    url: "\${${d.prometheusEnv}}"`);
  else L.push('  # prometheus: { url: "http://prometheus:9090" }');
  L.push(
    '',
    '# Per-check settings (`aegis-audit explain <check>` lists the options):',
    '# checks:',
    '#   auth-failure-spike: { options: { window: 15m, max_failures: 50 } }',
    '#   credential-age: { enabled: false }',
    '',
    '# waivers: waivers.yaml',
    '# attestations: attestations.yaml',
    'outputs: { dir: reports }',
    'state: { dir: state }',
    '',
  );
  // With nothing found every source is a comment: `sources:` alone would be null.
  const body = L.join('\n');
  const active = Boolean(d.postgresEnv || d.awsRegionEnv || d.prometheusEnv) || hasFiles || anySecrets;
  return active ? body : body.replace(/^sources:$/m, 'sources: {}   # nothing found: uncomment and fill in what applies');
}
