import check from '../../checks/mtls-enforced';
import { CheckTester, runCase } from '../helpers/check-tester';
import { FakeEndpointSource, type FakeEndpoint, type FakeEndpointData } from '../fakes/endpoint-source';
import type { BackendConfig } from '../../src/sandbox/identity-auth';
import { AuditError, ErrorCodes, sourceUnavailable } from '../../src/core/errors';

const ENROLLED = 'svc-auditor';
const mtlsBackend = (enrolled: string[] = [ENROLLED, 'client-b']): BackendConfig => ({ mode: 'mtls', enrolled });
const api = (over: Partial<FakeEndpoint> = {}): FakeEndpoint => ({ name: 'api', probes: ['mtls'], ingress: 'required', backend: mtlsBackend(), ...over });
const src = (data: Partial<FakeEndpointData> & { endpoints?: FakeEndpoint[] } = {}) => () => ({ endpoints: new FakeEndpointSource({ endpoints: [api()], ...data }) });
const probe = (name: string) => `endpoint=api,probe=${name}`;
/** The fake mints certificates against the real clock, so the cases that judge dates run on it too. */
const NOW = new Date();

CheckTester.run(check, {
  pass: [
    {
      name: 'an ingress that requires and verifies client certificates, in front of an mtls service',
      sources: src(),
      verify: (r) => expect(r.measurements).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'mtls_probes', value: 5 })])),
    },
    { name: 'without client certificates configured, the refusal probes still run', sources: src({ client: null, unenrolled: false }) },
    { name: 'the TLS layer refusing is enforcement too', sources: src({ endpoints: [api({ override: (r) => (r.client === 'none' || r.client === 'untrusted' ? { kind: 'tls-refused', detail: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' } : undefined) })] }) },
    { name: 'appRefusalIsEnough accepts the application refusing what the ingress let through', options: { appRefusalIsEnough: true }, sources: src({ endpoints: [api({ ingress: 'optional' })] }) },
    { name: 'a target without the mtls probe is not probed', sources: src({ endpoints: [api(), { name: 'gateway', probes: ['oidc'], backend: { mode: 'oidc', enrolled: [] } }] }) },
    { name: 'a target filter', options: { targets: ['api'] }, sources: src({ endpoints: [api(), api({ name: 'review', ingress: 'forward-header' })] }) },
  ],
  fail: [
    {
      name: 'ssl_verify_client optional with the header passed through: the forged header is admitted',
      sources: src({ endpoints: [api({ ingress: 'forward-header' })] }),
      findings: [
        { messageId: 'admitted', resource: probe('forged-header'), severity: 'critical', message: /^api \(https:\/\/api\.test:8443\/v1\/predict\): probe forged-header \(a request without a client certificate carrying a forged x-ssl-client-cn header\) was admitted with HTTP 200\./, evidence: { status: 200 } },
        { messageId: 'pastIngress', resource: probe('no-cert'), severity: 'high', message: /reached the application, which refused it with HTTP 401/ },
      ],
    },
    {
      name: 'ssl_verify_client optional with the header replaced: the application alone refuses',
      sources: src({ endpoints: [api({ ingress: 'optional' })] }),
      findings: [{ messageId: 'pastIngress', resource: probe('no-cert'), severity: 'high' }],
    },
    {
      name: 'no ingress at all in front of AUTH_MODE=none: everything is admitted',
      sources: src({ endpoints: [api({ ingress: undefined, backend: { mode: 'none', enrolled: [] } })] }),
      findings: [
        { messageId: 'admitted', resource: probe('no-cert'), severity: 'critical', message: /Anyone who can reach it is served/ },
        { messageId: 'admitted', resource: probe('untrusted-ca'), severity: 'critical', message: /Anyone can mint such a certificate/ },
        { messageId: 'admitted', resource: probe('forged-header'), severity: 'critical' },
        { messageId: 'admitted', resource: probe('unenrolled'), severity: 'critical' },
      ],
    },
    {
      name: 'an empty enrolled list admits the unenrolled certificate',
      sources: src({ endpoints: [api({ backend: mtlsBackend([]) })] }),
      findings: [{ messageId: 'admitted', resource: probe('unenrolled'), message: /The enrolled list is empty/ }],
    },
    {
      name: 'the enrolled certificate refused: the refusals prove nothing',
      sources: src({ endpoints: [api({ backend: mtlsBackend(['client-b']) })] }),
      findings: [{ messageId: 'enrolledRefused', resource: probe('enrolled'), severity: 'high', message: /probe enrolled .* was refused with HTTP 403/ }],
    },
    {
      name: 'unexpected answers are named with what was expected',
      sources: src({ endpoints: [api({ override: (r) => (r.client === 'untrusted' ? { kind: 'response', status: 502 } : r.client === 'unenrolled' ? { kind: 'response', status: 401 } : undefined) })] }),
      findings: [
        { messageId: 'unexpected', resource: probe('untrusted-ca'), severity: 'medium', message: /got HTTP 502, not a TLS refusal or HTTP 400\.$/ },
        { messageId: 'unexpected', resource: probe('unenrolled'), severity: 'medium', message: /got HTTP 401, not HTTP 403\.$/ },
      ],
    },
    {
      name: 'the server certificate does not verify: not probed, named',
      sources: src({ endpoints: [api({ untrustedServer: 'CERT_HAS_EXPIRED' })] }),
      findings: [{ messageId: 'serverUntrusted', resource: 'endpoint=api,probe=server-certificate', severity: 'high', message: /does not verify against the configured CA bundle \(CERT_HAS_EXPIRED\), so the endpoint was not probed/ }],
      verify: () => undefined,
    },
    {
      name: 'a server certificate expiring in 5 days, another already expired',
      now: NOW,
      sources: src({ endpoints: [api({ server: { cn: 'api.internal', from: -25, to: 5 } }), api({ name: 'review', server: { cn: 'review.internal', from: -40, to: -1 } })] }),
      findings: [
        { messageId: 'certExpiring', resource: 'endpoint=api,certificate=server,rule=expiry', severity: 'high', message: /^The server certificate of api \(https:\/\/api\.test:8443\/v1\/predict\) expires on \d{4}-\d\d-\d\d, in 5 day\(s\) \(the warning threshold is 14d\)\.$/ },
        { messageId: 'certExpired', resource: 'endpoint=review,certificate=server,rule=expiry', severity: 'critical' },
      ],
    },
    {
      name: 'a 10-year leaf and the Aegis development subjects',
      sources: src({ endpoints: [api({ server: { cn: 'localhost', from: -10, to: 3640, issuerCn: 'Aegis-Local-CA' } })] }),
      findings: [
        { messageId: 'certLongLived', resource: 'endpoint=api,certificate=server,rule=lifetime', severity: 'medium', message: /is valid for 3650 days .* longer than the 90d allowed for leaf certificates/ },
        { messageId: 'certDevSubject', resource: 'endpoint=api,certificate=server,rule=dev-subject', severity: 'high', message: /has the Aegis development subject CN=localhost/ },
        { messageId: 'certDevSubject', resource: 'endpoint=api,certificate=chain-1,rule=dev-subject', message: /Certificate 1 of the chain .* has the Aegis development subject CN=Aegis-Local-CA/ },
      ],
    },
    {
      name: "the auditor's own client certificate: aegis-client, a year long",
      now: NOW,
      sources: src({ client: { cn: 'aegis-client', from: -1, to: 364 }, enrolledCn: 'aegis-client', endpoints: [api({ backend: mtlsBackend(['aegis-client']) })] }),
      findings: [
        { messageId: 'certLongLived', resource: 'certificate=client,rule=lifetime', message: /^The auditor's enrolled client certificate \(\/etc\/aegis-audit\/client\.crt\) is valid for 365 days/ },
        { messageId: 'certDevSubject', resource: 'certificate=client,rule=dev-subject' },
      ],
    },
    {
      name: 'stricter policy options',
      now: NOW,
      options: { maxLeafLifetime: '20d', expiryWarning: '21d' },
      sources: src(),
      findings: [
        { messageId: 'certLongLived', resource: 'endpoint=api,certificate=server,rule=lifetime' },
        { messageId: 'certExpiring', resource: 'endpoint=api,certificate=server,rule=expiry' },
        { messageId: 'certLongLived', resource: 'certificate=client,rule=lifetime' },
      ],
    },
  ],
  error: [
    {
      name: 'no target lists the mtls probe',
      sources: src({ endpoints: [{ name: 'gateway', probes: ['oidc'], backend: { mode: 'oidc', enrolled: [] } }] }),
      error: /no endpoint to probe: no target under sources\.endpoints\.targets lists the 'mtls' probe/,
      code: ErrorCodes.CONFIG,
    },
    {
      name: 'an unknown target in the filter',
      options: { targets: ['nope'] },
      sources: src(),
      error: /options\.targets: no endpoint named 'nope'/,
    },
    {
      name: 'an unreachable endpoint is an error, never a pass — and the reachable one still reports',
      sources: src({
        endpoints: [api({ ingress: 'forward-header' }), api({ name: 'review', override: () => sourceUnavailable('endpoints', 'connection_refused', 'review (https://review.test:8443/v1/predict): request without a client certificate: connection refused') })],
      }),
      error: /^endpoints: review \(https:\/\/review\.test:8443\/v1\/predict\): request without a client certificate: connection refused$/,
      code: ErrorCodes.SOURCE_UNAVAILABLE,
      verify: (r) => {
        expect(r.findings.map((f) => f.resource).sort()).toEqual([probe('forged-header'), probe('no-cert')]);
        expect(r.sourceErrors).toEqual([{ source: 'endpoints', reason: 'connection_refused' }]);
      },
    },
    {
      name: 'a timeout names the endpoint',
      sources: src({ endpoints: [api({ override: () => new AuditError(ErrorCodes.SOURCE_UNAVAILABLE, 'endpoints: api (https://api.test:8443/v1/predict): request with the enrolled client certificate: timed out: no answer within 5000 ms', { source: 'endpoints', reason: 'timeout' }) })] }),
      error: /api .*timed out/,
    },
  ],
});

test('the probes each endpoint gets, in order', async () => {
  const ep = new FakeEndpointSource({ endpoints: [api()] });
  await runCase(check, { name: 'order', sources: { endpoints: ep } });
  expect(ep.requests.map((r) => [r.client, r.headers ?? null])).toEqual([
    ['none', null],
    ['untrusted', null],
    ['none', { 'x-ssl-client-cn': ENROLLED }],
    ['enrolled', null],
    ['unenrolled', null],
  ]);
});
