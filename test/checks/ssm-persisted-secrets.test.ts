import { createHash } from 'node:crypto';
import check from '../../checks/ssm-persisted-secrets';
import { CheckTester, DEFAULT_NOW } from '../helpers/check-tester';
import { FakeSecretStore } from '../fakes/secret-store';
import { FakeSsmSource, type FakeSsmCommand } from '../fakes/ssm-source';
import type { SsmParameterMeta } from '../../src/core/sources';
import { sourceUnavailable } from '../../src/core/errors';
const digest8 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

const INTERNAL = 'k3yM4t3rial-internal-0123456789abcdef';
const JWT = 'jwt-5ecret-value-ABCDEFGHIJKLMNOP';
const PADDED = 'c2VjcmV0LWludGVybmFsLXZhbHVlLTAxMjM0NTY3OA==';
const CMD = '11111111-2222-3333-4444-555555555555';
const CMD2 = '66666666-7777-8888-9999-000000000000';
const DAY = 86_400_000;
const ago = (ms: number) => new Date(DEFAULT_NOW.getTime() - ms).toISOString();

function store() {
  return new FakeSecretStore({
    holders: [
      { service: 'gateway', name: 'INTERNAL_SECRET', value: INTERNAL, provider: 'ssm' },
      { service: 'identity', name: 'INTERNAL_SECRET', value: INTERNAL, provider: 'ssm' },
      { service: 'identity', name: 'JWT_SECRET_KEY', value: JWT, provider: 'ssm' },
    ],
  });
}

const secureParams: SsmParameterMeta[] = [
  { name: '/aegis/test/gateway/INTERNAL_SECRET', type: 'SecureString' },
  { name: '/aegis/test/identity/JWT_SECRET_KEY', type: 'SecureString' },
  { name: '/aegis/test/gateway/LOG_LEVEL', type: 'String' },
];

const cleanDeploy: FakeSsmCommand = {
  commandId: CMD,
  requestedAt: ago(DAY),
  parameters: {
    commands: ['cd /opt/aegis && ./deploy.sh --env prod', 'export INTERNAL_SECRET={{ssm:/aegis/test/gateway/INTERNAL_SECRET}}', 'export JWT_SECRET_KEY=$JWT_FROM_AGENT'],
    INTERNAL_SECRET: ['{{ssm-secure:/aegis/test/gateway/INTERNAL_SECRET}}'],
    workingDirectory: [''],
  },
  outputs: [{ instanceId: 'i-0123456789abcdef0', output: 'deployed version 1.4.2\nall services healthy' }],
};

function sources(commands: FakeSsmCommand[], parameters = secureParams, opts: { historyMs?: number } = {}) {
  return () => ({ ssm: new FakeSsmSource({ commands, parameters, ...opts }), secrets: store() });
}

CheckTester.run(check, {
  pass: [
    { name: 'references only, secure parameters, clean output', sources: sources([cleanDeploy]) },
    { name: 'no deploy commands in the window', sources: sources([]) },
    {
      name: 'a literal older than the history window is not read',
      sources: sources([{ ...cleanDeploy, requestedAt: ago(40 * DAY), parameters: { INTERNAL_SECRET: [INTERNAL] } }]),
    },
    {
      name: 'other documents are not deploys',
      sources: sources([{ ...cleanDeploy, documentName: 'AWS-RunShellScript', parameters: { commands: [`echo ${INTERNAL}`] } }]),
    },
    {
      name: 'the source history window is honoured',
      sources: sources([{ ...cleanDeploy, requestedAt: ago(3 * DAY), parameters: { JWT_SECRET_KEY: [JWT] } }], secureParams, { historyMs: 2 * DAY }),
    },
    {
      name: 'short values that happen to equal nothing secret are fine',
      sources: sources([{ ...cleanDeploy, parameters: { commands: ['systemctl restart aegis-gateway'], API_KEY_HEADER: ['{{ssm:/aegis/test/api/header}}'] } }]),
    },
  ],
  fail: [
    {
      name: 'a secret-named parameter with a literal value',
      sources: sources([{ ...cleanDeploy, parameters: { ...cleanDeploy.parameters, JWT_SECRET_KEY: ['not-a-known-value-but-literal'] } }]),
      findings: [
        {
          messageId: 'literalSecret',
          resource: `command=${CMD},parameter=JWT_SECRET_KEY`,
          severity: 'critical',
          message: new RegExp(`Deploy command ${CMD} \\(${ago(DAY).replace(/[.]/g, '\\.')}\\) carries a literal secret in parameter JWT_SECRET_KEY: a secret-named parameter holds a value`),
          evidence: { command: CMD, parameter: 'JWT_SECRET_KEY', requestedAt: ago(DAY) },
        },
      ],
      secrets: ['not-a-known-value-but-literal'],
    },
    {
      name: 'a known secret value inside the commands string, found by fingerprint',
      sources: sources([{ ...cleanDeploy, parameters: { commands: [`./deploy.sh --internal "${INTERNAL}" --env prod`] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=commands`, message: /the value of INTERNAL_SECRET appears in it/ }],
    },
    {
      name: 'a known secret after = in an export',
      sources: sources([{ ...cleanDeploy, parameters: { commands: [`export JWT=${JWT}`] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=commands`, message: /the value of JWT_SECRET_KEY appears in it/ }],
    },
    {
      name: 'a secret-named assignment with an unknown literal inside commands',
      sources: sources([{ ...cleanDeploy, parameters: { commands: ['export DB_PASSWORD=hunter2hunter2 && ./deploy.sh'] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=commands`, message: /DB_PASSWORD is assigned a literal value/ }],
      secrets: ['hunter2hunter2'],
    },
    {
      // Left of `=` here is not a variable name but a URL carrying the password: the message must not echo it.
      name: 'a secret-named assignment that is not a variable name is reported without echoing it',
      sources: sources([{ ...cleanDeploy, parameters: { commands: ['./migrate.sh --db mysql://app:MyPasswordIs42xyz@db/app?sslmode=require'] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=commands`, message: /: a secret-named assignment holds a literal value\.$/ }],
      secrets: ['MyPasswordIs42xyz'],
    },
    {
      name: 'long parameter names are bounded in messages and resources, kept distinct by a digest',
      sources: sources([{ ...cleanDeploy, parameters: { ['SECRET_' + 'X'.repeat(2000)]: ['literal-value-here'] } }], [
        ...secureParams,
        { name: '/aegis/test/api/' + 'Y'.repeat(1900) + '_TOKEN', type: 'String' },
      ]),
      findings: [
        { messageId: 'literalSecret', resource: `command=${CMD},parameter=SECRET_${'X'.repeat(192)}…~${digest8('SECRET_' + 'X'.repeat(2000))}`, message: /parameter SECRET_X+…: a secret-named parameter/ },
        { messageId: 'notSecureString', resource: `parameter=/aegis/test/api/${'Y'.repeat(183)}…~${digest8('/aegis/test/api/' + 'Y'.repeat(1900) + '_TOKEN')}`, message: /^Parameter \/aegis\/test\/api\/Y+… is named like a secret/ },
      ],
      secrets: ['literal-value-here'],
      verify: (r) => {
        for (const f of r.findings) expect(f.message.length).toBeLessThan(400);
      },
    },
    {
      name: 'a known value under an innocent parameter name',
      sources: sources([{ ...cleanDeploy, parameters: { config: [INTERNAL] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=config` }],
    },
    {
      name: 'secret-named parameters that are not SecureString',
      sources: sources([cleanDeploy], [
        ...secureParams,
        { name: '/aegis/test/api/INTERNAL_SECRET', type: 'String' },
        { name: '/aegis/test/api/GROQ_API_KEY', type: 'StringList' },
      ]),
      findings: [
        { messageId: 'notSecureString', resource: 'parameter=/aegis/test/api/INTERNAL_SECRET', severity: 'high', message: /is stored as String, not SecureString/ },
        { messageId: 'notSecureString', resource: 'parameter=/aegis/test/api/GROQ_API_KEY', severity: 'high' },
      ],
    },
    {
      name: 'a known secret echoed in command output',
      sources: sources([
        cleanDeploy,
        { commandId: CMD2, requestedAt: ago(2 * DAY), parameters: {}, outputs: [{ instanceId: 'i-0fedcba9876543210', output: `loaded INTERNAL_SECRET=${INTERNAL}\nok` }] },
      ]),
      findings: [
        {
          messageId: 'secretInOutput',
          resource: `command=${CMD2},instance=i-0fedcba9876543210`,
          message: /Output of deploy command .* on i-0fedcba9876543210 contains the value of INTERNAL_SECRET\./,
        },
      ],
    },
    {
      // Generated secrets are often base64 with `=` padding: splitting tokens on `=` must not cut the value.
      name: 'a base64 secret with padding echoed after NAME= in output, and passed under an innocent name',
      sources: () => ({
        ssm: new FakeSsmSource({
          parameters: secureParams,
          commands: [
            { commandId: CMD, requestedAt: ago(DAY), parameters: { config: [`--peer-auth=${PADDED}`] } },
            { commandId: CMD2, requestedAt: ago(2 * DAY), parameters: {}, outputs: [{ instanceId: 'i-0fedcba9876543210', output: `loaded INTERNAL_SECRET=${PADDED}\nok` }] },
          ],
        }),
        secrets: new FakeSecretStore({ holders: [{ service: 'gateway', name: 'INTERNAL_SECRET', value: PADDED, provider: 'ssm' }] }),
      }),
      findings: [
        { messageId: 'literalSecret', resource: `command=${CMD},parameter=config`, message: /the value of INTERNAL_SECRET appears in it/ },
        { messageId: 'secretInOutput', resource: `command=${CMD2},instance=i-0fedcba9876543210` },
      ],
    },
    {
      name: 'custom name patterns',
      options: { secret_name_patterns: ['*CREDENTIAL*'] },
      sources: sources([{ ...cleanDeploy, parameters: { SERVICE_CREDENTIAL: ['plain-credential-text'] } }]),
      findings: [{ messageId: 'literalSecret', resource: `command=${CMD},parameter=SERVICE_CREDENTIAL` }],
      secrets: ['plain-credential-text'],
    },
  ],
  error: [
    {
      name: 'SSM unreachable while listing commands',
      sources: () => ({ ssm: new FakeSsmSource({ commands: [cleanDeploy] }).fail('commands', sourceUnavailable('ssm', 'throttled', 'listing commands of aegis-deploy: throttled (gave up after retries)')), secrets: store() }),
      error: /^ssm: listing commands of aegis-deploy: throttled/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the secret store failing is an error, not a pass',
      sources: () => ({ ssm: new FakeSsmSource({ commands: [cleanDeploy] }), secrets: store().fail('holders') }),
      error: /^secrets: .*connection refused/,
    },
    {
      name: 'output unreadable',
      sources: () => ({ ssm: new FakeSsmSource({ commands: [cleanDeploy] }).fail('outputs'), secrets: store() }),
      error: /^ssm: outputs: connection refused/,
    },
  ],
});

describe('ssm-persisted-secrets details', () => {
  test('reads the deploy document over the default 30-day history', async () => {
    const { runCase } = await import('../helpers/check-tester');
    const ssm = new FakeSsmSource({ commands: [cleanDeploy] });
    const out = await runCase(check, { name: 'q', sources: { ssm, secrets: store() } });
    expect(out.result.status).toBe('pass');
    expect(ssm.queries).toEqual([{ documentName: 'aegis-deploy', since: new Date(DEFAULT_NOW.getTime() - 30 * DAY) }]);
  });

  test('without the secrets source the check is skipped, never passed', async () => {
    const { runCase } = await import('../helpers/check-tester');
    const out = await runCase(check, { name: 's', sources: { ssm: new FakeSsmSource() } });
    expect(out.result.status).toBe('skipped');
    expect(out.result.error).toMatch(/source 'secrets' is not configured/);
  });
});
