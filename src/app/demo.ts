/**
 * `aegis-audit demo`: builds a sandbox Aegis deployment on this machine, audits it exactly
 * as `run` would (same config loader, same sources, same checks), writes the reports, and
 * compares what it found with what the sandbox says it seeded. Every process it starts is
 * stopped before it returns, also on Ctrl-C.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { writeFileAtomic } from '../core/atomic-write';
import type { Registry } from '../core/registry';
import type { OutputFormat } from '../config/schema';
import type { Logger } from '../core/logger';
import type { KnownSecrets } from '../core/secret';
import { loadConfigFile } from '../config/load';
import { rebaseConfigPaths } from '../config/paths';
import { buildSandbox, type Sandbox } from '../sandbox/build';
import { listViolations, UnknownViolationError } from '../sandbox/violations';
import { AuditError, ErrorCodes } from '../core/errors';
import { auditAndWrite, type AuditAndWriteResult } from './run';
import { compareWithManifest, type ManifestComparison } from './compare';

/** What `demo` seeds when not told: a realistic mix, one or two problems per area. */
export const DEFAULT_DEMO_VIOLATIONS: readonly string[] = [
  'key-source-file',
  'historical-key-orphaned',
  'internal-secret-differs',
  'api-key-old',
  'bad-signature',
  'ssm-literal-secret',
  'vault-root-token',
  'vault-token-secret-ref',
  'model-artifact-error-body',
  'ingress-forwards-forged-header',
  'oidc-accepts-expired',
  'log-known-secret',
  'log-secret-shapes',
  'dev-fallback-secret',
  'pem-file-left',
  'repo-secret-committed',
];

export interface DemoOptions {
  out: string;
  seed?: number;
  rows?: number;
  violations?: 'default' | 'all' | 'none' | readonly string[];
  logger?: Logger;
  knownSecrets?: KnownSecrets;
  /** Use this Postgres server instead of starting an embedded one (tests). */
  adminUrl?: string;
  /** Seed hostile strings (script tags, attribute breakers) where they reach reports (browser tests). */
  hostile?: boolean;
  /** A stop request: the build stops between steps (stopping what it started) and throws the signal's reason. */
  signal?: AbortSignal;
  /** Run only these checks (the comparison then covers only their seeded violations). */
  only?: readonly string[];
  /** Which outputs to write (default: the demo config's, i.e. all). */
  formats?: readonly OutputFormat[];
}

export interface DemoResult extends AuditAndWriteResult {
  sandbox: Sandbox;
  configPath: string;
  /** Where the audit keeps its state (receipt-chain's checkpoint), as the config resolves it. */
  stateDir: string;
  comparison: ManifestComparison;
}

export function describeViolations(): string {
  const rows = listViolations().map((v) => `${v.id.padEnd(34)} ${v.check.padEnd(24)} ${v.description}`);
  return rows.join('\n') + '\n';
}

/**
 * Writes the sandbox's config to `<out>/audit.yaml` with its relative paths rebased, so the
 * file a newcomer sees is the one the audit used.
 */
async function writeDemoConfig(sandbox: Sandbox, out: string): Promise<string> {
  const raw = parse(await readFile(sandbox.configPath, 'utf8')) as unknown;
  rebaseConfigPaths(raw, dirname(sandbox.configPath), out);
  const target = join(out, 'audit.yaml');
  const header = [
    '# The config `aegis-audit demo` audited: the sandbox deployment under ./sandbox/.',
    '# Paths are relative to this file; the Postgres URL is the throwaway sandbox server.',
    '# Re-run the audit while the sandbox is up (demo --daemon) with: aegis-audit run --config audit.yaml',
    '# (from another shell, set AEGIS_SANDBOX_AWS_ACCESS_KEY_ID and AEGIS_SANDBOX_AWS_SECRET_ACCESS_KEY to any',
    '# non-empty value first: the sandbox emulators accept any credentials).',
  ].join('\n');
  await writeFileAtomic(target, `${header}\n${stringify(raw, { lineWidth: 0 })}`);
  return target;
}

/**
 * Builds the sandbox and audits it. The caller owns `result.sandbox` and must stop it
 * (runDemo's callers do so in a finally block; `demo --daemon` keeps it up).
 */
export async function startDemo(registry: Registry, opts: DemoOptions): Promise<DemoResult> {
  const out = resolve(opts.out);
  const selection = opts.violations === undefined || opts.violations === 'default' ? DEFAULT_DEMO_VIOLATIONS : opts.violations;
  let sandbox: Sandbox;
  try {
    sandbox = await buildSandbox({ dir: join(out, 'sandbox'), seed: opts.seed ?? 42, rows: opts.rows ?? 5000, violations: selection, adminUrl: opts.adminUrl, hostile: opts.hostile, signal: opts.signal });
  } catch (e) {
    if (e instanceof UnknownViolationError) throw new AuditError(ErrorCodes.USAGE, e.message);
    throw e;
  }
  try {
    const configPath = await writeDemoConfig(sandbox, out);
    const loaded = await loadConfigFile(configPath, { registry });
    const result = await auditAndWrite(loaded, loaded.registry, { out, only: opts.only, formats: opts.formats, logger: opts.logger, knownSecrets: opts.knownSecrets });
    const stateDir = loaded.config.state.postgres ? `postgres schema ${loaded.config.state.postgres.schema}` : (loaded.config.state.dir as string);
    const only = opts.only;
    const expected = only ? { violations: sandbox.manifest.violations.filter((v) => only.includes(v.check)) } : sandbox.manifest;
    return { ...result, sandbox, configPath, stateDir, comparison: compareWithManifest(result.report, expected) };
  } catch (e) {
    await sandbox.stop().catch(() => undefined);
    throw e;
  }
}

/** How state works, in the words a newcomer needs after the first run. */
export function describeState(stateDir: string): string {
  return (
    `state: ${stateDir}\n` +
    '  receipt-chain keeps a checkpoint there, bound to the chain it verified (server, database, table, first row):\n' +
    '  the next run verifies only new rows and re-verifies a slice of old ones (every row within 24h);\n' +
    '  another chain behind this config starts afresh with a note; `run --full` verifies everything again.\n'
  );
}

export function formatComparison(c: ManifestComparison): string {
  const lines = [`manifest: ${c.expected} seeded violation${c.expected === 1 ? '' : 's'}; the audit found ${c.expected - c.missed.length} of them and ${c.extra.length} other failing finding${c.extra.length === 1 ? '' : 's'}`];
  for (const m of c.missed) lines.push(`  missed: ${m.check} ${m.resource}`);
  for (const x of c.extra) lines.push(`  extra:  ${x.check} ${x.resource}`);
  return lines.join('\n') + '\n';
}
