import { createHash } from 'node:crypto';
import check, { detectSecretsSecret, parseBaseline } from '../../checks/repo-secret-scan';
import { CheckTester, expectNoSecrets, runCase } from '../helpers/check-tester';
import { FakeRepoSource, FakeSecretStore, type FakeHolder, type FakeRepoFile } from '../fakes';
import { fakePrivatePem } from '../helpers/pem';
import { untrusted } from '../../src/core/untrusted';
import { sourceUnavailable } from '../../src/core/errors';

/** Deterministic token material, built at run time so the repository holds no secret-shaped text. */
function material(label: string, n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'): string {
  let out = '';
  for (let round = 0; out.length < n; round++) {
    for (const b of createHash('sha512').update(`${label}:${round}`).digest()) out += alphabet[b % alphabet.length];
  }
  return out.slice(0, n);
}
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const sha1 = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex');

const INTERNAL = 'in7ErnAl-s3cr3t+value/with==';
const JWT_KEY = 'Zt8rV2q0mXk5bP9wE1yH4sN7cL3fJ6aD';
const holders: FakeHolder[] = [
  { service: 'api', name: 'INTERNAL_SECRET', value: INTERNAL, provider: 'ssm' },
  { service: 'gateway', name: 'JWT_SECRET_KEY', value: JWT_KEY },
];

/** jwt.io's example token: detect-secrets' own baseline records its hashed_secret (header.payload.). */
const EXAMPLE_JWT_HP = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: '1234567890', name: 'John Doe', iat: 1516239022 })}`;
const EXAMPLE_JWT = `${EXAMPLE_JWT_HP}.${material('sig', 43)}`;
const AWS_ID = `AKIA${material('aws', 16, UPPER)}`;
const HOOK = `https://hooks.slack.com/services/T${material('t', 8, UPPER)}/B${material('b', 8, UPPER)}/${material('h', 24)}`;
const PEM = fakePrivatePem([material('pem-1', 64, B64), material('pem-2', 64, B64), material('pem-3', 24, B64) + '=='].join('\n'));
const PLANTED = [INTERNAL, JWT_KEY, EXAMPLE_JWT, AWS_ID, HOOK, ...PEM.split('\n').filter((l) => l.length > 40)];

const HOSTILE = `aegis:evil/${EXAMPLE_JWT}\u202e<script>\n${'x'.repeat(2000)}.py`;
const SOURCE_PY = 'import os\n\nJWT_SECRET_KEY = os.environ["JWT_SECRET_KEY"]\nINTERNAL_SECRET = os.environ.get("INTERNAL_SECRET")\n';
const FIXTURE_PY = `# a test fixture token\nTOKEN = "${EXAMPLE_JWT}"\n`;
const DOCS_MD = `# Setup\n\nExport an access key id such as ${AWS_ID} (an example) before running.\n`;

interface Entry {
  type: string;
  hashed_secret: string;
  line_number?: number;
  is_secret?: boolean | null;
}

function baseline(results: Record<string, Entry[]>, opts: { slim?: boolean } = {}): string {
  const full = Object.fromEntries(
    Object.entries(results).map(([file, list]) => [
      file,
      list.map((e) => ({ type: e.type, filename: file, hashed_secret: e.hashed_secret, is_verified: false, ...(opts.slim ? {} : { line_number: e.line_number ?? 1 }), ...(e.is_secret !== undefined ? { is_secret: e.is_secret } : {}) })),
    ]),
  );
  return JSON.stringify(
    {
      version: '1.5.0',
      plugins_used: [{ name: 'AWSKeyDetector' }, { name: 'JwtTokenDetector' }, { name: 'PrivateKeyDetector' }, { name: 'SlackDetector' }],
      filters_used: [{ path: 'detect-secrets.filters.heuristic.is_sequential_string' }],
      results: full,
      ...(opts.slim ? {} : { generated_at: '2026-11-20T09:00:00Z' }),
    },
    null,
    2,
  );
}

const REVIEWED: Record<string, Entry[]> = {
  'tests/fixtures/tokens.py': [{ type: 'JSON Web Token', hashed_secret: sha1(`${EXAMPLE_JWT_HP}.`), line_number: 2, is_secret: false }],
  'docs/setup.md': [{ type: 'AWS Access Key', hashed_secret: sha1(AWS_ID), line_number: 3, is_secret: false }],
};
const TREE: Record<string, FakeRepoFile> = {
  'aegis:aegis/settings.py': SOURCE_PY,
  'aegis:tests/fixtures/tokens.py': FIXTURE_PY,
  'aegis:docs/setup.md': DOCS_MD,
};

const repo = (files: Record<string, FakeRepoFile>, baselines: ConstructorParameters<typeof FakeRepoSource>[1] = { aegis: baseline(REVIEWED) }, chunkBytes?: number) => () => ({
  repo: new FakeRepoSource(files, baselines, { chunkBytes }),
  secrets: new FakeSecretStore({ holders }),
});
const measure = (name: string) => (r: { measurements?: { name: string; value: number }[] }) => r.measurements?.find((m) => m.name === name)?.value;
const file = (p: string) => untrusted.id(`aegis:${p}`);
const res = (parts: Record<string, string>) =>
  Object.entries(parts)
    .map(([k, v]) => `${k}=${/[,=\s"]/.test(v) ? JSON.stringify(v) : v}`)
    .join(',');

CheckTester.run(check, {
  pass: [
    {
      name: 'a tree whose only secret-shaped tokens are reviewed false positives in the baseline',
      sources: repo(TREE),
      secrets: PLANTED,
      verify: (r) => {
        expect(measure('repo_false_positives')(r)).toBe(2);
        expect(measure('repo_files_scanned')(r)).toBe(3);
        expect(measure('repo_bytes_scanned')(r)).toBe(SOURCE_PY.length + Buffer.byteLength(FIXTURE_PY) + DOCS_MD.length);
      },
    },
    {
      name: 'the same tree read 3 bytes at a time (every line cut across chunks)',
      sources: repo(TREE, undefined, 3),
      secrets: PLANTED,
      verify: (r) => expect(measure('repo_false_positives')(r)).toBe(2),
    },
    {
      name: 'a slim baseline (no line numbers, no generated_at) and reviewed entries of files no longer there',
      sources: repo(TREE, { aegis: baseline({ ...REVIEWED, 'old/removed.py': [{ type: 'Secret Keyword', hashed_secret: sha1('gone'), is_secret: false }] }, { slim: true }) }),
      secrets: PLANTED,
    },
    {
      name: 'a binary file is not searched, even holding a secret value',
      sources: repo({ ...TREE, 'aegis:assets/logo.png': Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13]), Buffer.from(`${INTERNAL}\n`)]) }),
      secrets: PLANTED,
      verify: (r) => expect(measure('repo_files_binary')(r)).toBe(1),
    },
    {
      name: 'without a secrets source only shapes are looked for (a note says so)',
      sources: () => ({ repo: new FakeRepoSource({ 'aegis:aegis/settings.py': `DEFAULT = "${INTERNAL}"\n` }, { aegis: baseline({}) }) }),
      secrets: PLANTED,
      notes: [{ messageId: 'noKnownValues', resource: 'source=secrets', severity: 'info' }],
    },
    {
      name: 'files the walk did not hand on (too large, a symlink out of the root) are a note',
      sources: repo({ ...TREE, 'aegis:data/dump.sql': { skipped: 'larger than 16777216 bytes (40000000 bytes)' }, 'aegis:link': { skipped: 'symlink pointing outside the tree: not followed' } }),
      secrets: PLANTED,
      notes: [{ messageId: 'unscanned', resource: 'root=aegis,unscanned=files', severity: 'info', message: /2 file\(s\) of root aegis were not scanned \(the first: data\/dump\.sql, larger than/ }],
    },
    {
      name: 'a detector left out by options does not look',
      sources: repo({ 'aegis:notify.sh': `curl -X POST ${HOOK}\n` }, { aegis: baseline({}) }),
      options: { detectors: ['jwt', 'private-key'] },
      secrets: PLANTED,
    },
  ],
  fail: [
    {
      name: 'a live secret value committed in a settings file (critical), found across 3-byte chunks at its line',
      sources: repo({ ...TREE, 'aegis:aegis/settings.py': `${SOURCE_PY}\nFALLBACK_INTERNAL = "${INTERNAL}"  # TODO remove\n` }, undefined, 3),
      secrets: PLANTED,
      findings: [
        {
          messageId: 'knownValue',
          resource: res({ file: file('aegis/settings.py'), detector: 'known-secret', secret: 'INTERNAL_SECRET' }),
          severity: 'critical',
          message: /^File aegis:aegis\/settings\.py holds the value of INTERNAL_SECRET at line 6 \(1 occurrence\(s\)\)\.$/,
          evidence: { detector: 'known-secret', lines: [6], occurrences: 1 },
        },
      ],
    },
    {
      name: 'a live value the baseline calls a false positive is reported all the same',
      sources: repo(
        { 'aegis:conf/dev.env': `JWT_SECRET_KEY=${JWT_KEY}\n` },
        { aegis: baseline({ 'conf/dev.env': [{ type: 'Secret Keyword', hashed_secret: sha1(JWT_KEY), is_secret: false }] }) },
      ),
      secrets: PLANTED,
      findings: [
        {
          messageId: 'knownValue',
          resource: res({ file: file('conf/dev.env'), detector: 'known-secret', secret: 'JWT_SECRET_KEY' }),
          message: /the baseline marks it a false positive, but it is the live value/,
          evidence: { baseline: 'marked false positive' },
        },
      ],
    },
    {
      name: 'a secret shape not in the baseline (high); a false positive recorded for another file does not cover it',
      sources: repo({ ...TREE, 'aegis:scripts/notify.sh': `#!/bin/sh\ncurl -X POST ${HOOK}\ncurl -X POST ${HOOK}\n`, 'aegis:tests/other.py': FIXTURE_PY }),
      secrets: PLANTED,
      findings: [
        { messageId: 'shape', resource: res({ file: file('scripts/notify.sh'), detector: 'slack-webhook' }), severity: 'high', evidence: { lines: [2, 3], occurrences: 2 } },
        { messageId: 'shape', resource: res({ file: file('tests/other.py'), detector: 'jwt' }), severity: 'high', message: /holds a JSON Web Token at line 2/ },
      ],
    },
    {
      name: 'an entry with no audit decision is reported, and so is the token it records',
      sources: repo(
        { ...TREE, 'aegis:scripts/notify.sh': `curl -X POST ${HOOK}\n` },
        { aegis: baseline({ ...REVIEWED, 'scripts/notify.sh': [{ type: 'Slack Token', hashed_secret: sha1(HOOK), line_number: 1 }] }) },
      ),
      secrets: PLANTED,
      findings: [
        { messageId: 'baselineUnreviewed', resource: res({ file: file('scripts/notify.sh'), baseline: 'unreviewed' }), severity: 'medium', message: /lists 1 potential secret\(s\) in aegis:scripts\/notify\.sh \(Slack Token\) with no audit decision/, evidence: { lines: [1] } },
        { messageId: 'shape', resource: res({ file: file('scripts/notify.sh'), detector: 'slack-webhook' }) },
      ],
    },
    {
      name: 'is_secret: null is no decision either',
      sources: repo(TREE, { aegis: baseline({ ...REVIEWED, 'old.py': [{ type: 'Secret Keyword', hashed_secret: sha1('x'), is_secret: null }] }) }),
      secrets: PLANTED,
      findings: [{ messageId: 'baselineUnreviewed', resource: res({ file: file('old.py'), baseline: 'unreviewed' }) }],
    },
    {
      name: 'an entry audited as a real secret (is_secret: true) is a committed secret',
      sources: repo(TREE, { aegis: baseline({ ...REVIEWED, 'deploy/old.env': [{ type: 'Secret Keyword', hashed_secret: sha1('old-value'), is_secret: true }] }) }),
      secrets: PLANTED,
      findings: [{ messageId: 'baselineSecret', resource: res({ file: file('deploy/old.env'), baseline: 'secret' }), severity: 'high', message: /records 1 real secret\(s\) in aegis:deploy\/old\.env \(Secret Keyword\)/ }],
    },
    {
      name: 'no baseline: its absence is a finding, and nothing is a reviewed false positive',
      sources: repo(TREE, {}),
      secrets: PLANTED,
      findings: [
        { messageId: 'baselineMissing', resource: res({ baseline: 'aegis:.secrets.baseline' }), severity: 'medium', message: /Root aegis has no detect-secrets baseline at \.secrets\.baseline/ },
        { messageId: 'shape', resource: res({ file: file('tests/fixtures/tokens.py'), detector: 'jwt' }) },
        { messageId: 'shape', resource: res({ file: file('docs/setup.md'), detector: 'aws-access-key-id' }) },
      ],
    },
    {
      name: 'a baseline that is not JSON names where (line and column)',
      sources: repo({ 'aegis:a.py': 'x = 1\n' }, { aegis: '{\n  "version": "1.5.0",\n  "results": {},\n}\n' }),
      findings: [
        { messageId: 'baselineUnusable', resource: res({ baseline: 'aegis:.secrets.baseline' }), severity: 'medium', message: /cannot be used: not valid JSON \(PropertyNameExpected\) \(line 4, column 1\)/, evidence: { line: 4, column: 1 } },
      ],
    },
    {
      name: 'a baseline entry of the wrong shape names the field by its path, not its value',
      sources: repo({ 'aegis:a.py': 'x = 1\n' }, { aegis: JSON.stringify({ version: '1.5.0', results: { 'a.py': [{ type: 'Secret Keyword', hashed_secret: INTERNAL, is_verified: false }] } }) }),
      secrets: PLANTED,
      findings: [{ messageId: 'baselineUnusable', resource: res({ baseline: 'aegis:.secrets.baseline' }), message: /results\["a\.py"\]\[0\]\.hashed_secret is not a SHA-1 hex digest \(line 1, column \d+\)/ }],
    },
    {
      name: 'a baseline without results, or not an object',
      sources: repo({ 'aegis:a.py': 'x = 1\n', 'other:b.py': 'y = 2\n' }, { aegis: '{"version": "1.5.0"}', other: '[1, 2]' }),
      findings: [
        { messageId: 'baselineUnusable', resource: res({ baseline: 'aegis:.secrets.baseline' }), message: /results is missing/ },
        { messageId: 'baselineUnusable', resource: res({ baseline: 'other:.secrets.baseline' }), message: /the baseline is a list, not a JSON object/ },
      ],
    },
    {
      name: 'an unreadable baseline',
      sources: repo({ 'aegis:a.py': 'x = 1\n' }, { aegis: { unreadable: 'not UTF-8 text' } }),
      findings: [{ messageId: 'baselineUnreadable', resource: res({ baseline: 'aegis:.secrets.baseline' }), message: /cannot be read: not UTF-8 text/ }],
    },
    {
      name: 'a private key whose armor and body fall in different chunks is found once, at the armor line',
      sources: repo({ 'aegis:deploy/key.pem': `# leftover\n${PEM}\n` }, { aegis: baseline({}) }, 7),
      secrets: PLANTED,
      findings: [{ messageId: 'shape', resource: res({ file: file('deploy/key.pem'), detector: 'private-key' }), evidence: { lines: [2], occurrences: 1 } }],
    },
    {
      name: 'a hostile file name (a secret shape, control characters, markup, 2 000 characters) reaches the finding only through the gate',
      sources: repo({ [HOSTILE]: `k = "${AWS_ID}"\n` }, { aegis: baseline({}) }),
      secrets: PLANTED,
      findings: [{ messageId: 'shape', resource: res({ file: untrusted.id(HOSTILE), detector: 'aws-access-key-id' }), message: /^File aegis:evil\/.{0,170} holds an AWS access key id at line 1/ }],
      verify: (r) => {
        expect(JSON.stringify(r)).not.toContain('<script>\u202e');
        expect(r.findings[0].message.length).toBeLessThan(400);
      },
    },
  ],
  error: [
    {
      name: 'a root that cannot be walked is an error, never a pass',
      sources: () => ({ repo: new FakeRepoSource({ 'aegis:a.py': 'x\n' }, { aegis: baseline({}) }).fail('files', sourceUnavailable('repo', 'not_found', 'root aegis (/srv/aegis) is not a directory')) }),
      error: /root aegis \(\/srv\/aegis\) is not a directory/,
    },
    {
      name: 'a baseline that cannot be read for an I/O reason is an error',
      sources: () => ({ repo: new FakeRepoSource({ 'aegis:a.py': 'x\n' }, { aegis: baseline({}) }).fail('baseline') }),
      error: /connection refused/,
    },
  ],
});

describe('detect-secrets compatibility', () => {
  test("a private key's hashed_secret is the SHA-1 of its plugin's denylist text, as in detect-secrets' own baseline", () => {
    const label = ['BEGIN', 'RSA', 'PRIVATE', 'KEY'].join(' ');
    const pem = `-----${label}-----\n${material('x', 64, B64)}`;
    expect(sha1(detectSecretsSecret('private-key', pem, ''))).toBe('be4fc4886bd949b369d5e092eb87494f12e57e5b');
    const pgp = ['BEGIN', 'PGP', 'PRIVATE', 'KEY', 'BLOCK'].join(' ');
    expect(sha1(detectSecretsSecret('private-key', `-----${pgp}-----`, ''))).toBe('4ada9713ec27066b2ffe0b7bd9c9c8d635dc4ab2');
  });

  test("a JWT's hashed_secret is of header.payload. (the signature matches lazily), as detect-secrets records jwt.io's example", () => {
    expect(sha1(detectSecretsSecret('jwt', EXAMPLE_JWT, ''))).toBe('d6b66ddd9ea7dbe760114bfe9a97352a5e139134');
  });

  test("a Slack webhook's secret keeps its https://, an AWS secret key is its 40 characters, a bearer token drops the scheme", () => {
    const path = HOOK.slice('https://'.length);
    expect(detectSecretsSecret('slack-webhook', path, 'POST https://')).toBe(HOOK);
    const awsSecret = material('aws-secret', 40);
    expect(detectSecretsSecret('aws-secret-access-key', `aws_secret_access_key = "${awsSecret}`.replace('"', ''), '')).toBe(awsSecret);
    expect(detectSecretsSecret('bearer-token', `Bearer ${awsSecret}`, '')).toBe(awsSecret);
  });

  test('parseBaseline reads the detect-secrets format: entries, audit decisions, slim mode, the entry filename over the key', () => {
    const text = JSON.stringify({
      version: '1.5.0',
      plugins_used: [],
      filters_used: [],
      results: {
        './a.py': [
          { type: 'Secret Keyword', filename: './a.py', hashed_secret: sha1('a'), is_verified: false, line_number: 3, is_secret: false },
          { type: 'Private Key', filename: './a.py', hashed_secret: sha1('b').toUpperCase(), is_verified: false },
        ],
        'b.py': [{ type: 'JSON Web Token', filename: 'c.py', hashed_secret: sha1('c'), is_verified: true, is_secret: true }],
      },
    });
    expect(parseBaseline(text)).toEqual({
      ok: true,
      version: '1.5.0',
      entries: [
        { file: 'a.py', type: 'Secret Keyword', hashedSecret: sha1('a'), lineNumber: 3, isSecret: false },
        { file: 'a.py', type: 'Private Key', hashedSecret: sha1('b') },
        { file: 'c.py', type: 'JSON Web Token', hashedSecret: sha1('c'), isSecret: true },
      ],
    });
    expect(parseBaseline('{"version": 1, "results": {}}')).toEqual({ ok: false, problem: 'version is a number, not a string', line: 1, column: 13 });
    expect(parseBaseline('')).toMatchObject({ ok: false, line: 1, column: 1 });
  });
});

test('no planted value, nor a piece of it, reaches a finding of a run that finds them all', async () => {
  const outcome = await runCase(check, {
    name: 'canary',
    sources: repo(
      {
        'aegis:a.env': `INTERNAL_SECRET=${INTERNAL}\nJWT_SECRET_KEY="${JWT_KEY}"\n`,
        'aegis:b.py': `T = "${EXAMPLE_JWT}"\nK = "${AWS_ID}"\nH = "${HOOK}"\n`,
        'aegis:c.pem': `${PEM}\n`,
      },
      { aegis: baseline({ 'b.py': [{ type: 'AWS Access Key', hashed_secret: sha1(AWS_ID) }] }) },
      5,
    ),
  });
  expect(outcome.result.status).toBe('fail');
  expect(outcome.result.findings.length).toBe(7);
  expectNoSecrets(outcome, PLANTED);
  // Nor the SHA-1 the baseline compares by.
  const text = JSON.stringify(outcome.result);
  for (const s of PLANTED) expect(text).not.toContain(sha1(s));
});
