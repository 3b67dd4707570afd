/**
 * The sandbox deployment's repository checkout: a few source files, a config file, docs, a
 * test fixture and a script, with the detect-secrets baseline a reviewed repository keeps —
 * two false positives (a fixture JWT, an example AWS key id in the docs) audited as such. The
 * repo-secret-scan violations change it the way repositories go wrong: a production secret
 * pasted in as a default, a new secret-shaped token whose baseline entry nobody audited, and
 * no baseline at all. Pure: the files follow from the seed, the secret value and the
 * selection, so the manifest can name every finding.
 */
import { createHash } from 'node:crypto';
import { derivedBytes } from './prng';
import type { ViolationId } from './violations';

/** The root's name in the config (findings name files as `aegis:<path>`), and its folder. */
export const REPO_ROOT = 'aegis';
export const REPO_DIR = 'repo';
export const REPO_BASELINE = '.secrets.baseline';

/** Where the violations are, as the findings name them (paths inside the root). */
export const REPO_FILES = Object.freeze({
  committed: 'aegis/config/settings.py',
  unreviewed: 'scripts/notify-release.sh',
  fixtureJwt: 'tests/fixtures/tokens.py',
  docsAwsKey: 'docs/setup.md',
});

export interface RepoTree {
  /** Path inside the root → content. */
  files: Record<string, string>;
  /** The secret-shaped and secret values written (for the canary). */
  secrets: string[];
}

export interface RepoTreeOptions {
  seed: number;
  /** The deployed INTERNAL_SECRET (what `repo-secret-committed` pastes into the settings). */
  internalSecret: string;
  selected: ReadonlySet<ViolationId>;
  now: Date;
}

const sha1 = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex');
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function repoTree(o: RepoTreeOptions): RepoTree {
  const has = (id: ViolationId) => o.selected.has(id);
  const b32 = (label: string, n: number) => [...derivedBytes(o.seed, label, n)].map((b) => B32[b % 32]).join('');
  const jwtHeaderPayload = [
    Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url'),
    Buffer.from(JSON.stringify({ sub: 'fixture-user', aud: 'aegis-test', iat: 1700000000 })).toString('base64url'),
  ].join('.');
  const fixtureJwt = `${jwtHeaderPayload}.${derivedBytes(o.seed, 'repo-fixture-jwt', 32).toString('base64url')}`;
  const docsAwsKey = `AKIA${b32('repo-docs-aws-key', 16)}`;
  const webhook = `https://hooks.slack.com/services/T${b32('repo-slack-team', 8)}/B${b32('repo-slack-bot', 10)}/${derivedBytes(o.seed, 'repo-slack-hook', 18).toString('base64url').replace(/[-_]/g, 'x')}`;
  // The webhook's secret part (its scheme and host are public text).
  const secrets = [fixtureJwt, docsAwsKey, webhook.slice(webhook.indexOf('/services/') + '/services/'.length), o.internalSecret];

  const files: Record<string, string> = {
    'README.md': '# aegis\n\nThe Aegis services. Local setup: docs/setup.md. Secrets come from the environment or Vault, never from this repository.\n',
    'aegis/__init__.py': '',
    [REPO_FILES.committed]: [
      'import os',
      '',
      'AUTH_MODE = os.environ.get("AUTH_MODE", "oidc")',
      'JWT_SECRET_KEY = os.environ["JWT_SECRET_KEY"]',
      has('repo-secret-committed') ? `INTERNAL_SECRET = os.environ.get("INTERNAL_SECRET", "${o.internalSecret}")` : 'INTERNAL_SECRET = os.environ["INTERNAL_SECRET"]',
      'VAULT_ADDR = os.environ.get("VAULT_ADDR", "https://vault.aegis.svc:8200")',
      '',
    ].join('\n'),
    'aegis/api/app.py': ['from aegis.config import settings', '', '', 'def create_app():', '    return {"auth_mode": settings.AUTH_MODE}', ''].join('\n'),
    'config/aegis.yaml': ['auth:', '  mode: oidc', '  audience: aegis-gateway', 'secrets:', '  backend: vault', '  internal_secret: ${INTERNAL_SECRET}', ''].join('\n'),
    [REPO_FILES.fixtureJwt]: ['# A token for the auth tests: signed with a throwaway test key, accepted by nothing deployed.', `EXPIRED_TOKEN = "${fixtureJwt}"`, ''].join('\n'),
    [REPO_FILES.docsAwsKey]: ['# Local setup', '', `Configure the AWS CLI with your own credentials (the docs use the example key id ${docsAwsKey}).`, ''].join('\n'),
    [REPO_FILES.unreviewed]: [
      '#!/bin/sh',
      'set -eu',
      has('repo-baseline-unreviewed') ? `curl -fsS -X POST -d "{\\"text\\": \\"released $1\\"}" ${webhook}` : 'curl -fsS -X POST -d "{\\"text\\": \\"released $1\\"}" "$SLACK_WEBHOOK_URL"',
      '',
    ].join('\n'),
    '.gitignore': '.env\n*.pem\n',
    // A binary file, which the scan does not search.
    'docs/logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]).toString('latin1'),
  };

  if (!has('repo-baseline-missing')) {
    const entry = (file: string, type: string, secret: string, line: number, isSecret?: boolean) => ({
      type,
      filename: file,
      hashed_secret: sha1(secret),
      is_verified: false,
      line_number: line,
      ...(isSecret !== undefined ? { is_secret: isSecret } : {}),
    });
    const results: Record<string, unknown[]> = {
      [REPO_FILES.docsAwsKey]: [entry(REPO_FILES.docsAwsKey, 'AWS Access Key', docsAwsKey, 3, false)],
      ...(has('repo-baseline-unreviewed') ? { [REPO_FILES.unreviewed]: [entry(REPO_FILES.unreviewed, 'Slack Token', webhook, 3)] } : {}),
      // detect-secrets hashes a JWT as header.payload. (its signature part matches lazily).
      [REPO_FILES.fixtureJwt]: [entry(REPO_FILES.fixtureJwt, 'JSON Web Token', `${jwtHeaderPayload}.`, 2, false)],
    };
    files[REPO_BASELINE] =
      JSON.stringify(
        {
          version: '1.5.0',
          plugins_used: [{ name: 'AWSKeyDetector' }, { name: 'Base64HighEntropyString', limit: 4.5 }, { name: 'JwtTokenDetector' }, { name: 'KeywordDetector', keyword_exclude: '' }, { name: 'PrivateKeyDetector' }, { name: 'SlackDetector' }],
          filters_used: [{ path: 'detect_secrets.filters.allowlist.is_line_allowlisted' }, { path: 'detect_secrets.filters.common.is_baseline_file', filename: REPO_BASELINE }],
          results,
          generated_at: new Date(o.now.getTime() - 3 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
        null,
        2,
      ) + '\n';
  }
  return { files, secrets };
}
