import check, { parseEnrolledList } from '../../checks/auth-mode';
import { CheckTester } from '../helpers/check-tester';
import { FakeSecretStore, type FakeHolder } from '../fakes';
import { FakeVaultSource } from '../fakes/vault-source';
import { sourceUnavailable } from '../../src/core/errors';

const SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight'];
const RUNTIME = 'secret/data/aegis/runtime';
/** A known mode is an enumerated setting the check may show; anything else stays planted for the canary. */
const isMode = (v: string) => ['none', 'oidc', 'mtls'].includes(v.trim().toLowerCase());
const oidc = (service: string, extra: Partial<Record<'OIDC_AUDIENCE' | 'OIDC_ISSUER' | 'OIDC_JWKS_URI', string | null>> = {}): FakeHolder[] => {
  const v = { OIDC_AUDIENCE: 'https://api.example', OIDC_ISSUER: 'https://idp.example', ...extra };
  return [
    { service, name: 'AUTH_MODE', value: 'oidc', setting: true },
    ...Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([name, value]) => ({ service, name, value: value as string })),
  ];
};
const mtls = (service: string, mode = 'mtls'): FakeHolder[] => [{ service, name: 'AUTH_MODE', value: mode, setting: isMode(mode) }];
const good: FakeHolder[] = [...oidc('identity'), ...oidc('gateway'), ...mtls('api'), ...mtls('audit'), ...mtls('insight')];
const runtime = (fields: Record<string, string> = { oidc_jwks_uri: 'https://idp.example/jwks.json', 'clients/allowed': '["client-a","client-b"]' }) => fields;
const sources = (holders: FakeHolder[], kv: Record<string, Record<string, string>> | null = { 'aegis/runtime': runtime() }) => () => ({
  secrets: new FakeSecretStore({ services: SERVICES, holders }),
  vault: new FakeVaultSource({ kv: kv ?? {} }),
});
const without = (holders: FakeHolder[], service: string, name: string) => holders.filter((h) => !(h.service === service && h.name === name));

CheckTester.run(check, {
  pass: [
    { name: 'oidc outside, mtls inside, enrolled list set', sources: sources(good), verify: (r) => expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'auth_mode_enrolled_clients', value: 2 })) },
    { name: 'modes are read case-insensitively, as Aegis lowercases them', sources: sources([...oidc('identity'), ...oidc('gateway'), ...mtls('api', 'MTLS'), ...mtls('audit', ' mtls '), ...mtls('insight', 'Mtls')]) },
    { name: 'a newline list of enrolled clients', sources: sources(good, { 'aegis/runtime': runtime({ oidc_jwks_uri: 'https://x/j', 'clients/allowed': 'client-a\nclient-b\n' }) }) },
    { name: 'only oidc: no enrolled list needed', sources: sources([...oidc('identity'), ...oidc('gateway'), ...oidc('api'), ...oidc('audit'), ...oidc('insight')], { 'aegis/runtime': runtime({ oidc_jwks_uri: 'https://x/j' }) }) },
    { name: 'the JWKS URI may come from the env instead of the runtime secret', sources: sources([...oidc('identity', { OIDC_JWKS_URI: 'https://x/j' }), ...oidc('gateway', { OIDC_JWKS_URI: 'https://x/j' }), ...mtls('api'), ...mtls('audit'), ...mtls('insight')], { 'aegis/runtime': runtime({ 'clients/allowed': 'client-a' }) }) },
    { name: 'a services option narrows the judgement', options: { services: ['api'] }, sources: sources(mtls('api')) },
    { name: 'holders in two providers that agree', sources: sources([...good, { service: 'api', name: 'AUTH_MODE', value: 'mtls', provider: 'ssm', setting: true }]) },
  ],
  fail: [
    {
      name: 'AUTH_MODE=none',
      sources: sources([...without(good, 'insight', 'AUTH_MODE'), ...mtls('insight', 'none')]),
      findings: [{ messageId: 'modeNone', resource: 'service=insight', severity: 'critical', message: /^Service insight runs AUTH_MODE=none \(\/run\/aegis\/insight\.env\): it authenticates no request\.$/ }],
    },
    {
      name: 'AUTH_MODE unset is none',
      sources: sources(without(good, 'audit', 'AUTH_MODE')),
      findings: [{ messageId: 'modeUnset', resource: 'service=audit', severity: 'critical', message: /no AUTH_MODE in env_file: Aegis then runs with none/ }],
    },
    {
      name: 'one provider says none while the env says mtls: the weakest decides',
      sources: sources([...good, { service: 'api', name: 'AUTH_MODE', value: 'none', provider: 'ssm', setting: true }]),
      findings: [{ messageId: 'modeNone', resource: 'service=api', message: /\(ssm:\/aegis\/test\/api\/AUTH_MODE\)/ }],
    },
    {
      name: 'an unknown mode fails closed (500) but is still wrong; its text is never echoed',
      sources: sources([...without(good, 'api', 'AUTH_MODE'), ...mtls('api', `jwt<script>${'x'.repeat(200)}\n`)]),
      findings: [{ messageId: 'modeInvalid', resource: 'service=api', severity: 'high', message: /^Service api has an AUTH_MODE Aegis does not know \(212 characters, \/run\/aegis\/api\.env\): every request answers 500/ }],
    },
    {
      name: 'a mode the deployment does not allow',
      options: { allowed: ['mtls'] },
      sources: sources([...mtls('identity'), ...oidc('gateway'), ...mtls('api'), ...mtls('audit'), ...mtls('insight')]),
      findings: [{ messageId: 'modeWeak', resource: 'service=gateway', severity: 'high' }],
    },
    {
      name: 'an empty JSON list admits every client',
      sources: sources(good, { 'aegis/runtime': runtime({ oidc_jwks_uri: 'https://x/j', 'clients/allowed': '[]' }) }),
      findings: [
        { messageId: 'enrolledEmpty', resource: `path=${RUNTIME},field=clients/allowed`, severity: 'critical', message: /is empty, and api, audit, insight run AUTH_MODE=mtls: Aegis then admits every client\.$/, evidence: { fieldPresent: true, mtlsServices: ['api', 'audit', 'insight'] } },
      ],
    },
    {
      name: 'a list of separators only is empty too',
      sources: sources(mtls('api'), { 'aegis/runtime': runtime({ 'clients/allowed': ' , ,\n' }) }),
      options: { services: ['api'] },
      findings: [{ messageId: 'enrolledEmpty', resource: `path=${RUNTIME},field=clients/allowed`, message: /and api runs AUTH_MODE=mtls/ }],
    },
    {
      name: 'the enrolled list field is absent',
      sources: sources(good, { 'aegis/runtime': runtime({ oidc_jwks_uri: 'https://x/j' }) }),
      findings: [{ messageId: 'enrolledEmpty', resource: `path=${RUNTIME},field=clients/allowed`, message: /is absent, and/ }],
    },
    {
      name: 'the runtime secret does not exist',
      sources: sources(good, null),
      findings: [
        { messageId: 'enrolledEmpty', resource: `path=${RUNTIME},field=clients/allowed`, message: /absent \(the secret does not exist\)/ },
        { messageId: 'oidcSettingMissing', resource: 'service=identity,setting=OIDC_JWKS_URI' },
        { messageId: 'oidcSettingMissing', resource: 'service=gateway,setting=OIDC_JWKS_URI', message: /answers 500 "OIDC not configured"/ },
      ],
    },
    {
      name: 'oidc without audience and issuer',
      sources: sources([...oidc('identity'), ...oidc('gateway', { OIDC_AUDIENCE: null, OIDC_ISSUER: null }), ...mtls('api'), ...mtls('audit'), ...mtls('insight')]),
      findings: [
        { messageId: 'oidcSettingMissing', resource: 'service=gateway,setting=OIDC_AUDIENCE', severity: 'high', message: /without OIDC_AUDIENCE: tokens issued for any other audience are accepted/ },
        { messageId: 'oidcSettingMissing', resource: 'service=gateway,setting=OIDC_ISSUER', severity: 'high' },
      ],
    },
    {
      name: 'an enrolled list in another path and field',
      options: { enrolledPath: 'clients', enrolledField: 'allowed' },
      sources: sources(good, { 'aegis/runtime': runtime(), clients: { allowed: '' } }),
      findings: [{ messageId: 'enrolledEmpty', resource: 'path=secret/data/clients,field=allowed' }],
    },
  ],
  error: [
    {
      name: 'Vault down is an error, not an empty enrolled list',
      sources: () => ({ secrets: new FakeSecretStore({ services: SERVICES, holders: good }), vault: new FakeVaultSource().fail('readKv', sourceUnavailable('vault', 'connection_refused', 'reading secret/data/aegis/runtime: connection refused')) }),
      error: /^vault: reading secret\/data\/aegis\/runtime: connection refused$/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the secret store down is an error',
      sources: () => ({ secrets: new FakeSecretStore({ holders: good }).fail('holders', sourceUnavailable('secrets', 'not_found', 'reading env file /run/aegis/api.env: not found')), vault: new FakeVaultSource() }),
      error: /^secrets: reading env file/,
    },
  ],
});

test('without Vault the check is skipped: the enrolled list and runtime JWKS URI live there', async () => {
  const { runCase } = await import('../helpers/check-tester');
  const { result } = await runCase(check, { name: 'no vault', sources: { secrets: new FakeSecretStore({ holders: good }) } });
  expect(result.status).toBe('skipped');
  expect(result.error).toMatch(/source 'vault' is not configured/);
});

test('the enrolled list parses as Aegis parses it', () => {
  expect(parseEnrolledList('["a", "b"]')).toEqual(['a', 'b']);
  expect(parseEnrolledList('[1, ""]')).toEqual(['1', '']);
  expect(parseEnrolledList('a, b\nc')).toEqual(['a', 'b', 'c']);
  expect(parseEnrolledList('[]')).toEqual([]);
  expect(parseEnrolledList(undefined)).toEqual([]);
  expect(parseEnrolledList('{"allowed":["a"]}')).toEqual(['{"allowed":["a"]}']);
});
