/**
 * The endpoints source over real TLS on 127.0.0.1: the sandbox's identity side (mTLS ingress,
 * OIDC ingress, issuer) and a few deliberately broken servers. Probes see what a client sees;
 * an unreachable, silent or unverifiable endpoint is a coded error naming it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointsSchema } from '../../src/config/schema';
import { KnownSecrets } from '../../src/core/secret';
import { isAuditError } from '../../src/core/errors';
import { TlsEndpointSource } from '../../src/sources/endpoints';
import { identityCertificates, identityNames, startIdentitySandbox, type IdentitySandbox } from '../../src/sandbox/identity';
import type { ViolationId } from '../../src/sandbox/violations';

const DAY = 86_400_000;
let dir: string;
let idp: IdentitySandbox;
const names = identityNames(1, 'src-test', ['identity', 'gateway', 'api', 'audit', 'insight']);
const servers: { close(): void }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'endpoints-src-'));
  idp = await startIdentitySandbox({ names, deployment: 'src-test', selected: new Set<ViolationId>(['jwks-private-key']), enrolled: [names.auditorCn], dir });
}, 60_000);

afterAll(async () => {
  await idp?.stop();
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function source(over: Record<string, unknown> = {}, known = new KnownSecrets()): TlsEndpointSource {
  const f = idp.configFragment as Record<string, unknown>;
  const abs = (p: unknown) => join(dir, String(p));
  const cfg = endpointsSchema.parse({
    ca_file: abs(f.ca_file),
    client_cert_file: abs(f.client_cert_file),
    client_key_file: abs(f.client_key_file),
    unenrolled_cert_file: abs(f.unenrolled_cert_file),
    unenrolled_key_file: abs(f.unenrolled_key_file),
    token_signing_key_file: abs(f.token_signing_key_file),
    timeout: '2s',
    targets: { api: { url: idp.urls.mtls, probes: ['mtls'] }, gateway: { url: idp.urls.oidc, probes: ['oidc'] } },
    ...over,
  });
  return new TlsEndpointSource(cfg, known);
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; reason?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return isAuditError(e) ? { code: e.code, reason: e.reason, message: e.message } : { message: String(e) };
  }
  throw new Error('expected a rejection');
}

test('probes see what a client sees at an nginx-like mTLS ingress', async () => {
  const ep = source();
  expect(await ep.probe('api', { client: 'none' })).toEqual({ kind: 'response', status: 400 });
  expect(await ep.probe('api', { client: 'untrusted' })).toEqual({ kind: 'response', status: 400 });
  expect(await ep.probe('api', { client: 'none', headers: { 'x-ssl-client-cn': names.auditorCn } })).toEqual({ kind: 'response', status: 400 });
  expect(await ep.probe('api', { client: 'enrolled' })).toEqual({ kind: 'response', status: 200 });
  expect(await ep.probe('api', { client: 'unenrolled' })).toEqual({ kind: 'response', status: 403 });
  expect(await ep.probe('gateway', { client: 'none' })).toEqual({ kind: 'response', status: 401 });
  const server = await ep.serverCertificates('api');
  expect(server.trusted).toBe(true);
  expect(server.chain.length).toBeGreaterThanOrEqual(1);
  expect(server.chain[0]).toMatch(/^-----BEGIN CERTIFICATE-----/);
  expect((await ep.clientCertificates()).map((c) => c.role)).toEqual(['enrolled', 'unenrolled']);
});

test('a JWKS is fetched over verified HTTPS, and its private members become known secrets', async () => {
  const known = new KnownSecrets();
  const doc = await source({}, known).fetchJson(idp.jwksUrl);
  expect(doc.url).toBe(idp.jwksUrl);
  const keys = (doc.body as { keys: Record<string, string>[] }).keys;
  const d = keys.find((k) => k.d)?.d as string;
  expect(d).toBeDefined();
  expect(known.scrub(`x ${d} y`)).toBe('x [redacted] y');
});

test('the key files are secrets of the run, and a key that does not match its certificate is a config error', async () => {
  const known = new KnownSecrets();
  const ep = source({}, known);
  await ep.clientCertificates();
  expect(known.size).toBeGreaterThan(0);
  const f = idp.configFragment as Record<string, string>;
  const bad = source({ client_key_file: join(dir, f.unenrolled_key_file) });
  const e = await rejection(bad.clientCertificates());
  expect(e).toMatchObject({ code: 'AUDIT_ERR_CONFIG' });
  expect(e.message).toMatch(/client_key_file \(.*unenrolled\.key\) is not the key of client_cert_file/);
});

test('unreachable, silent and unverifiable endpoints are coded errors naming the endpoint', async () => {
  // A port nothing listens on.
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
  // A server that accepts TCP and never speaks.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  servers.push(silent);
  const silentPort = (silent.address() as net.AddressInfo).port;
  // A TLS server whose certificate comes from another CA.
  const other = await identityCertificates('other');
  const leaf = await other.server('api.other', new Date(Date.now() - DAY), new Date(Date.now() + DAY));
  const stranger = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_q, s) => s.end('ok'));
  await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', () => r()));
  servers.push(stranger);
  const strangerPort = (stranger.address() as net.AddressInfo).port;

  const ep = source({
    targets: {
      down: { url: `https://127.0.0.1:${closed}/v1/predict`, probes: ['mtls'] },
      silent: { url: `https://127.0.0.1:${silentPort}/v1/predict`, probes: ['mtls'] },
      stranger: { url: `https://127.0.0.1:${strangerPort}/v1/predict`, probes: ['mtls'] },
    },
  });
  const down = await rejection(ep.probe('down', { client: 'none' }));
  expect(down).toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', reason: 'connection_refused' });
  expect(down.message).toMatch(new RegExp(`^endpoints: down \\(https://127\\.0\\.0\\.1:${closed}/v1/predict\\): request without a client certificate: connection refused`));
  const t0 = Date.now();
  const slow = await rejection(ep.probe('silent', { client: 'enrolled' }));
  expect(slow).toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', reason: 'timeout' });
  expect(Date.now() - t0).toBeLessThan(10_000);
  const untrusted = await rejection(ep.probe('stranger', { client: 'none' }));
  expect(untrusted).toMatchObject({ reason: 'untrusted_server' });
  expect(untrusted.message).toMatch(/stranger .*the server certificate does not verify \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
  expect(await ep.serverCertificates('stranger')).toMatchObject({ trusted: false, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
});

test('a TLS server that requires a certificate refuses at the TLS layer', async () => {
  const ca = (await identityCertificates('strict'));
  const leaf = await ca.server('strict', new Date(Date.now() - DAY), new Date(Date.now() + DAY));
  const strict = https.createServer({ cert: leaf.certPem, key: leaf.keyPem, ca: ca.ca.certPem, requestCert: true, rejectUnauthorized: true }, (_q, s) => s.end('ok'));
  await new Promise<void>((r) => strict.listen(0, '127.0.0.1', () => r()));
  servers.push(strict);
  const caFile = join(dir, 'strict-ca.pem');
  writeFileSync(caFile, ca.ca.certPem);
  const ep = source({ ca_file: caFile, targets: { strict: { url: `https://127.0.0.1:${(strict.address() as net.AddressInfo).port}/`, probes: ['mtls'] } } });
  const o = await ep.probe('strict', { client: 'none' });
  expect(o.kind).toBe('tls-refused');
});

test('JWKS documents: a non-2xx answer, an oversized body and a non-JSON body', async () => {
  const big = 'x'.repeat(1024 * 1024 + 10);
  const srv = http.createServer((req, res) => {
    if (req.url?.startsWith('/404')) res.writeHead(404).end('nope');
    else if (req.url === '/big') res.writeHead(200).end(big);
    else res.writeHead(200).end('<html>not json</html>');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  servers.push(srv);
  const base = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  const ep = source();
  expect(await rejection(ep.fetchJson(`${base}/404?token=abc`))).toMatchObject({ reason: 'not_found', message: `endpoints: fetching ${base}/404: HTTP 404` });
  expect(await rejection(ep.fetchJson(`${base}/big`))).toMatchObject({ code: 'AUDIT_ERR_BAD_DATA' });
  expect(await ep.fetchJson(`${base}/html`)).toEqual({ url: `${base}/html`, body: undefined, parseError: 'the body is not JSON' });
});
