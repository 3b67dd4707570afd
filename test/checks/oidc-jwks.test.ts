import { createHash, generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, generateSecret, type JWK } from 'jose';
import check from '../../checks/oidc-jwks';
import { CheckTester, runCase } from '../helpers/check-tester';
import { FakeEndpointSource, tokenKey, type FakeEndpoint, type FakeEndpointData, type TokenKey } from '../fakes/endpoint-source';
import { FakeSecretStore } from '../fakes';
import { FakeVaultSource } from '../fakes/vault-source';
import type { OidcBackend } from '../../src/sandbox/identity-auth';
import { ErrorCodes, sourceUnavailable } from '../../src/core/errors';
import type { Sources } from '../../src/core/sources';

const JWKS = 'https://idp.test/.well-known/jwks.json';
const AUD = 'https://api.test';
const ISS = 'https://idp.test';

/** Keys made at run time (no committed key material): the IdP's, the auditor's probe key, extras. */
interface Keys {
  idp: TokenKey;
  probe: TokenKey;
  ec: JWK;
  weak: JWK;
  hs: JWK;
  idpPrivate: JWK;
}
let K: Keys;
beforeAll(async () => {
  const [idp, probe] = await Promise.all([tokenKey('idp-1'), tokenKey('aegis-audit-probe')]);
  const ec = await generateKeyPair('ES256', { extractable: true });
  // jose refuses to make a key this small; Node does not.
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const hs = await generateSecret('HS256', { extractable: true });
  K = {
    idp,
    probe,
    ec: { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' },
    weak: { ...(weak.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak-1', alg: 'RS256' },
    hs: { ...(await exportJWK(hs)), kid: 'hs-1', alg: 'HS256' },
    idpPrivate: { ...(await exportJWK((await import('node:crypto')).createPrivateKey(idp.privateKey.export({ format: 'pem', type: 'pkcs8' })))), kid: 'idp-1', alg: 'RS256' },
  };
}, 30_000);

const publicSet = () => ({ keys: [K.idp.publicJwk, K.probe.publicJwk, K.ec] });
const backend = (over: Partial<OidcBackend> = {}) => ({ mode: 'oidc', enrolled: [], oidc: { keys: [K.idp.publicJwk, K.probe.publicJwk], audience: AUD, issuer: ISS, ...over } });
const gateway = (over: Partial<FakeEndpoint> = {}, oidc: Partial<OidcBackend> = {}): FakeEndpoint => ({
  name: 'gateway',
  probes: ['oidc'],
  backend: backend(oidc),
  oidc: { audience: AUD, issuer: ISS },
  ...over,
});

interface Setup {
  set?: unknown;
  endpoints?: () => FakeEndpoint[];
  signer?: 'probe' | 'none';
  vault?: Record<string, string> | null;
  env?: Record<string, string>;
  data?: Partial<FakeEndpointData>;
}
const src =
  (s: Setup = {}) =>
  (): Sources => {
    const endpoints = new FakeEndpointSource({
      endpoints: s.endpoints?.() ?? [gateway()],
      documents: { [JWKS]: s.set === undefined ? publicSet() : typeof s.set === 'function' ? (s.set as () => unknown)() : s.set },
      signer: s.signer === 'none' ? null : K.probe,
      ...s.data,
    });
    const out: Sources = { endpoints };
    if (s.vault !== null) out.vault = new FakeVaultSource({ kv: { 'aegis/runtime': s.vault ?? { oidc_jwks_uri: JWKS } }, settings: ['oidc_jwks_uri'] });
    if (s.env) out.secrets = new FakeSecretStore({ holders: Object.entries(s.env).map(([service, value]) => ({ service, name: 'OIDC_JWKS_URI', value, setting: true })) });
    return out;
  };
const key = (kid: string, rule: string) => `jwks=${JWKS},kid=${kid},rule=${rule}`;
const probe = (name: string) => `endpoint=gateway,probe=${name}`;

/** Probe tokens are dated by the run's clock and judged by the endpoint's: both are the real clock here. */
const onRealClock = <T extends { pass: object[]; fail: object[]; error: object[] }>(t: T): T => {
  const now = new Date();
  return { ...t, pass: t.pass.map((c) => ({ now, ...c })), fail: t.fail.map((c) => ({ now, ...c })), error: t.error.map((c) => ({ now, ...c })) };
};

CheckTester.run(check, onRealClock({
  pass: [
    {
      name: 'a public set (RSA and EC) and an endpoint that refuses every bad token',
      sources: src(),
      verify: (r) => expect(r.measurements).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'oidc_jwks_sets', value: 1 })])),
    },
    { name: 'only the key set, when no endpoint is opted in to token probes', sources: src({ endpoints: () => [{ name: 'api', probes: ['mtls'], ingress: 'required', backend: { mode: 'mtls', enrolled: ['x'] } }] }) },
    { name: 'the JWKS URI from a service env file', sources: src({ vault: null, env: { gateway: JWKS } }) },
    {
      name: 'without a probe signing key the signed probes are a note, the others still run',
      sources: src({ signer: 'none' }),
      notes: [{ messageId: 'probesNotRun', resource: probe('signed-tokens'), message: /the expired, other-audience and other-issuer probes were not run: no probe signing key is configured/ }],
    },
    {
      name: 'a probe key missing from the set is a note, not a pass of those probes',
      sources: src({ set: () => ({ keys: [K.idp.publicJwk] }), endpoints: () => [gateway({}, { keys: [K.idp.publicJwk] })] }),
      notes: [{ messageId: 'probesNotRun', resource: probe('signed-tokens'), message: /the probe signing key is not in the endpoint's JWKS/ }],
    },
  ],
  fail: [
    {
      name: 'a private RSA key in the set',
      sources: src({ set: () => ({ keys: [K.idpPrivate, K.probe.publicJwk] }) }),
      findings: [{ messageId: 'privateKey', resource: key('idp-1', 'private'), severity: 'critical', message: /^Key idp-1 in the JWKS at https:\/\/idp\.test\/\.well-known\/jwks\.json publishes private key material \(d, p, q, dp, dq, qi\): anyone can sign/ }],
    },
    {
      name: 'a symmetric HS256 key in the set',
      sources: src({ set: () => ({ keys: [...publicSet().keys, K.hs] }) }),
      findings: [{ messageId: 'symmetricKey', resource: key('hs-1', 'symmetric'), severity: 'critical' }],
    },
    {
      name: 'alg none and HS256 declared on asymmetric keys',
      sources: src({ set: () => ({ keys: [{ ...K.idp.publicJwk, alg: 'none' }, { ...K.ec, alg: 'HS256' }, K.probe.publicJwk] }) }),
      findings: [
        { messageId: 'forbiddenAlg', resource: key('idp-1', 'alg'), message: /declares alg none/ },
        { messageId: 'forbiddenAlg', resource: key('ec-1', 'alg'), message: /declares alg HS256/ },
      ],
    },
    {
      name: 'an RSA key under 2048 bits',
      sources: src({ set: () => ({ keys: [...publicSet().keys, K.weak] }) }),
      findings: [{ messageId: 'weakRsa', resource: key('weak-1', 'rsa-size'), severity: 'high', message: /is an RSA key of 1024 bits; at least 2048 are required\.$/, evidence: { bits: 1024 } }],
    },
    {
      name: 'a kid used twice',
      sources: src({ set: () => ({ keys: [...publicSet().keys, { ...K.ec, kid: 'idp-1' }] }) }),
      findings: [{ messageId: 'duplicateKid', resource: key('idp-1', 'duplicate-kid'), message: /kid idp-1 appears 2 times/ }],
    },
    {
      name: 'a key whose members are not a key, and a hostile kid bounded in the message',
      sources: src({ set: () => ({ keys: [...publicSet().keys, { kty: 'RSA', kid: `<img src=x onerror=alert(1)>${'k'.repeat(300)}`, e: 'AQAB' }] }) }),
      findings: [
        {
          messageId: 'invalidKey',
          // Through the untrusted gate: bounded in the resource (a digest keeps long kids apart), shorter in the message.
          resource: `jwks=${JWKS},kid=${JSON.stringify(`<img src=x onerror=alert(1)>${'k'.repeat(99)}…~${createHash('sha256').update(`<img src=x onerror=alert(1)>${'k'.repeat(300)}`).digest('hex').slice(0, 8)}`)},rule=invalid`,
          message: /^Key <img src=x onerror=alert\(1\)>k{35}… in the JWKS at .* is not a usable JWK: its members do not form a public key of its type\.$/,
        },
      ],
    },
    { name: 'not JSON', sources: src({ set: { parseError: 'the body is not JSON' }, endpoints: () => [] }), findings: [{ messageId: 'invalidSet', resource: `jwks=${JWKS}`, message: /is not a usable JSON Web Key Set: the body is not JSON\.$/ }] },
    { name: 'no keys array', sources: src({ set: { keys: 'none' }, endpoints: () => [] }), findings: [{ messageId: 'invalidSet', resource: `jwks=${JWKS}`, message: /no "keys" array/ }] },
    { name: 'an empty set', sources: src({ set: { keys: [] }, endpoints: () => [] }), findings: [{ messageId: 'invalidSet', resource: `jwks=${JWKS}`, message: /holds no keys/ }] },
    {
      name: 'a JWKS URI over plain HTTP',
      sources: () => {
        const http = 'http://idp.test/jwks.json';
        return { endpoints: new FakeEndpointSource({ endpoints: [], documents: { [http]: { keys: [K.idp.publicJwk] } } }), vault: new FakeVaultSource({ kv: { 'aegis/runtime': { oidc_jwks_uri: http } }, settings: ['oidc_jwks_uri'] }) };
      },
      findings: [{ messageId: 'notHttps', resource: 'jwks=http://idp.test/jwks.json,rule=https', severity: 'high' }],
    },
    {
      name: 'a service that accepts unsigned and expired tokens',
      sources: src({ endpoints: () => [gateway({}, { acceptAlgNone: true, acceptExpired: true })] }),
      findings: [
        { messageId: 'tokenAccepted', resource: probe('alg-none'), severity: 'critical', message: /^gateway \(https:\/\/gateway\.test:8443\/v1\/predict\): probe alg-none \(an unsigned token \(alg: none\) naming a kid of the set\) was accepted with HTTP 200; it must be refused with 401\.$/ },
        { messageId: 'tokenAccepted', resource: probe('expired'), severity: 'critical' },
      ],
    },
    {
      name: 'a service without audience and issuer accepts tokens meant for others',
      sources: src({ endpoints: () => [gateway({}, { audience: undefined, issuer: undefined })] }),
      findings: [
        { messageId: 'tokenAccepted', resource: probe('other-audience') },
        { messageId: 'tokenAccepted', resource: probe('other-issuer') },
      ],
    },
    {
      name: 'an endpoint without authentication accepts everything',
      sources: src({ endpoints: () => [gateway({ backend: { mode: 'none', enrolled: [] } })] }),
      findings: ['no-token', 'expired', 'other-audience', 'other-issuer', 'unknown-key', 'alg-none'].map((p) => ({ messageId: 'tokenAccepted', resource: probe(p) })),
    },
    {
      name: 'a valid probe token refused: the signed probes prove nothing and are not run',
      sources: src({ endpoints: () => [gateway({}, { keys: [K.idp.publicJwk] })] }),
      findings: [{ messageId: 'validRefused', resource: probe('valid-token'), severity: 'high', message: /refused with HTTP 401: the endpoint does not trust the probe key/ }],
      verify: (r) => expect(r.findings).toHaveLength(1),
    },
    {
      name: 'a 400 or 500 to a bad token is not the 401 the runbook expects',
      sources: src({ endpoints: () => [gateway({ override: (r) => (r.bearer?.endsWith('.') ? { kind: 'response', status: 500 } : undefined) })] }),
      findings: [{ messageId: 'tokenUnexpected', resource: probe('alg-none'), severity: 'medium', message: /got HTTP 500, not 401\.$/ }],
    },
  ],
  error: [
    {
      name: 'no JWKS URI anywhere',
      sources: src({ vault: {}, endpoints: () => [] }),
      error: /no JWKS URI to check: none of OIDC_JWKS_URI \(service env\), oidc_jwks_uri \(the Vault runtime secret\)/,
      code: ErrorCodes.CONFIG,
    },
    {
      name: 'an unreachable JWKS is an error; the endpoint probes still report',
      sources: src({ set: sourceUnavailable('endpoints', 'connection_refused', `fetching ${JWKS}: connection refused`), endpoints: () => [gateway({}, { acceptAlgNone: true })] }),
      error: /^endpoints: fetching https:\/\/idp\.test\/\.well-known\/jwks\.json: connection refused$/,
      code: ErrorCodes.SOURCE_UNAVAILABLE,
      verify: (r) => expect(r.findings.map((f) => f.resource)).toContain(probe('signed-tokens')),
    },
    {
      name: 'Vault down while reading the runtime secret',
      sources: () => ({ endpoints: new FakeEndpointSource({ endpoints: [] }), vault: new FakeVaultSource().fail('readKv', sourceUnavailable('vault', 'sealed', 'Vault is sealed')) }),
      error: /^vault: Vault is sealed$/,
    },
  ],
}));

test('the token probes: what each sends, in order, and that a valid token precedes the signed ones', async () => {
  const ep = new FakeEndpointSource({ endpoints: [gateway()], documents: { [JWKS]: publicSet() }, signer: K.probe });
  await runCase(check, { name: 'order', sources: { endpoints: ep, vault: new FakeVaultSource({ kv: { 'aegis/runtime': { oidc_jwks_uri: JWKS } }, settings: ['oidc_jwks_uri'] }) }, now: new Date() });
  const { decodeJwt, decodeProtectedHeader } = await import('jose');
  const sent = ep.requests.map((r) => (r.bearer ? { h: decodeProtectedHeader(r.bearer), c: decodeJwt(r.bearer) } : null));
  expect(sent).toHaveLength(7);
  expect(sent[0]?.c.aud).toBe(AUD); // the valid token
  expect(sent[1]).toBeNull(); // no token
  expect((sent[2]?.c.exp ?? 0) * 1000).toBeLessThan(Date.now());
  expect(sent[3]?.c.aud).not.toBe(AUD);
  expect(sent[4]?.c.iss).not.toBe(ISS);
  expect(sent[5]?.h).toMatchObject({ alg: 'RS256', kid: 'aegis-audit-probe' }); // a foreign key under a known kid
  expect(sent[6]?.h).toMatchObject({ alg: 'none', kid: 'aegis-audit-probe' });
  expect(ep.requests.every((r) => r.client === 'none')).toBe(true);
});
