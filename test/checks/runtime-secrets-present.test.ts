import check from '../../checks/runtime-secrets-present';
import { CheckTester, runCase } from '../helpers/check-tester';
import { FakeVaultSource } from '../fakes/vault-source';
import { sourceUnavailable } from '../../src/core/errors';

const PUBKEY = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n';
const full = { oidc_jwks_uri: 'https://idp.example/.well-known/jwks.json', model_signing_pubkey: PUBKEY, 'clients/allowed': '["client-a","client-b"]' };
const vault = (kv: Record<string, Record<string, string>>, extra: ConstructorParameters<typeof FakeVaultSource>[0] = {}) => () => ({ vault: new FakeVaultSource({ kv, ...extra }) });
const PATH = 'secret/data/aegis/runtime';

CheckTester.run(check, {
  pass: [
    { name: 'every required field present', sources: vault({ 'aegis/runtime': full }) },
    { name: 'extra fields are fine', sources: vault({ 'aegis/runtime': { ...full, extra: 'x' } }) },
    {
      name: 'a configured runtime path and mount',
      sources: vault({ 'platform/rt': full }, { runtimePath: 'platform/rt', kvMount: 'kv' }),
    },
    {
      name: 'a custom required list',
      options: { required: ['oidc_jwks_uri'] },
      sources: vault({ 'aegis/runtime': { oidc_jwks_uri: 'https://idp.example/jwks' } }),
    },
  ],
  fail: [
    {
      name: 'the secret does not exist: one finding per field',
      sources: vault({}),
      findings: ['oidc_jwks_uri', 'model_signing_pubkey', 'clients/allowed'].map((field) => ({
        messageId: 'missing',
        resource: `path=${PATH},field=${field}`,
        severity: 'critical' as const,
        message: new RegExp(`^Runtime secret field ${field} is absent \\(the secret does not exist\\) at secret/data/aegis/runtime\\.$`),
        evidence: { secretExists: false },
      })),
    },
    {
      name: 'a field absent and another empty',
      sources: vault({ 'aegis/runtime': { oidc_jwks_uri: full.oidc_jwks_uri, 'clients/allowed': '' } }),
      findings: [
        { messageId: 'missing', resource: `path=${PATH},field=model_signing_pubkey`, message: /is absent at/ },
        { messageId: 'missing', resource: `path=${PATH},field=clients/allowed`, message: /^Runtime secret field clients\/allowed is empty at secret\/data\/aegis\/runtime\.$/, evidence: { fieldPresent: true } },
      ],
    },
    {
      name: 'the path option overrides the source',
      options: { path: 'aegis/runtime-v2' },
      sources: vault({ 'aegis/runtime': full, 'aegis/runtime-v2': { ...full, model_signing_pubkey: '' } }),
      findings: [{ messageId: 'missing', resource: 'path=secret/data/aegis/runtime-v2,field=model_signing_pubkey' }],
    },
  ],
  error: [
    {
      name: 'vault sealed is an error, not missing secrets',
      sources: () => ({ vault: new FakeVaultSource({ kv: { 'aegis/runtime': full } }).fail('readKv', sourceUnavailable('vault', 'sealed', 'Vault is sealed')) }),
      error: /^vault: Vault is sealed$/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'access denied names the path',
      sources: () => ({
        vault: new FakeVaultSource().fail('readKv', sourceUnavailable('vault', 'forbidden', `reading ${PATH}: access denied: permission denied`)),
      }),
      error: /^vault: reading secret\/data\/aegis\/runtime: access denied/,
    },
  ],
});

test('reads the runtime path once', async () => {
  const v = new FakeVaultSource({ kv: { 'aegis/runtime': full } });
  await runCase(check, { name: 'r', sources: { vault: v } });
  expect(v.reads).toEqual(['aegis/runtime']);
});
