/**
 * The sandbox's identity side: an Aegis-like service reachable over real TLS on 127.0.0.1.
 *
 * - an OIDC issuer serving its JWKS over HTTPS (the IdP's signing key, plus a key registered
 *   for the auditor's token probes);
 * - for the mTLS endpoint: an ingress that terminates TLS, requires and verifies a client
 *   certificate against the deployment's client CA and forwards only the verified CN in
 *   x-ssl-client-cn, in front of a backend running AUTH_MODE=mtls with the enrolled list;
 * - for the OIDC endpoint: a TLS ingress in front of a backend running AUTH_MODE=oidc.
 *
 * Every certificate and key is generated here, at build time (nothing is committed), and the
 * auditor's client certificate, an unenrolled one and the probe signing key are written under
 * `identity/` for audit.yaml. Seeded violations change exactly one behaviour each (see
 * violations.ts for the findings each makes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';
import { mintCa, mintLeaf, type Minted } from '../sources/certs';
import { backendDecision, ingressDecision, type BackendConfig, type IngressMode } from './identity-auth';
import type { ViolationId } from './violations';

const DAY = 86_400_000;
export const IDENTITY_HEADER = 'x-ssl-client-cn';
export const PROBE_KID = 'aegis-audit-probe';
/** A kid that tries to run script wherever a report renders it (hostile builds, jwks-hs-key). */
export const HOSTILE_KID = 'legacy-hs"><script>window.__pwned=5</script>';

/** What the identity side is called in a deployment: pure, so the plan can declare findings before anything starts. */
export interface IdentityNames {
  /** The endpoint (and service) behind the mTLS ingress, and the one behind the OIDC ingress. */
  mtlsEndpoint: string;
  oidcEndpoint: string;
  /** The service the auth-mode-none violation falls to. */
  noneService: string;
  /** The JWKS URL; a placeholder until the issuer listens (buildSandbox passes the real one). */
  jwksUrl: string;
  idpKid: string;
  hsKid: string;
  audience: string;
  issuer: string;
  auditorCn: string;
  unenrolledCn: string;
}

function pick(services: readonly string[], preferred: string, offset: number): string {
  return services.includes(preferred) ? preferred : services[offset % services.length];
}

export function identityNames(seed: number | string, deployment: string, services: readonly string[], opts: { hostile?: boolean } = {}): IdentityNames {
  const h = createHash('sha256').update(`${seed}\0idp`).digest('hex');
  return {
    mtlsEndpoint: pick(services, 'api', 2),
    oidcEndpoint: pick(services, 'gateway', 1),
    noneService: pick(services, 'insight', 4),
    jwksUrl: `https://idp.${deployment}.invalid/.well-known/jwks.json`,
    idpKid: `idp-${h.slice(0, 12)}`,
    hsKid: opts.hostile ? HOSTILE_KID : 'legacy-hs256',
    audience: `https://api.${deployment}.aegis.example`,
    issuer: `https://idp.${deployment}.aegis.example`,
    auditorCn: 'aud-probe-7c1e',
    unenrolledCn: 'unenrolled-probe-3b9d',
  };
}

/** The auth settings each service's env file carries. */
export function authEnv(names: IdentityNames, services: readonly string[], selected: ReadonlySet<ViolationId>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const svc of services) {
    const oidc = svc === names.oidcEndpoint || svc === 'identity';
    const vars: Record<string, string> = {};
    if (selected.has('auth-mode-none') && svc === names.noneService) vars.AUTH_MODE = 'none';
    else if (oidc) {
      vars.AUTH_MODE = 'oidc';
      if (!(selected.has('oidc-unbound') && svc === names.oidcEndpoint)) {
        vars.OIDC_AUDIENCE = names.audience;
        vars.OIDC_ISSUER = names.issuer;
      }
    } else {
      vars.AUTH_MODE = 'mtls';
      vars.MTLS_ID_HEADER = IDENTITY_HEADER;
    }
    out[svc] = vars;
  }
  return out;
}

// ---------------------------------------------------------------- servers

export interface Listening {
  url: string;
  close(): Promise<void>;
}

function closeServer(server: http.Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

async function listen(server: http.Server, scheme: 'http' | 'https', path = ''): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { url: `${scheme}://127.0.0.1:${port}${path}`, close: closeServer(server) };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An Aegis service: answers from AUTH_MODE, the forwarded identity and the bearer token. Plain HTTP on loopback, behind an ingress. */
export async function startBackend(cfg: BackendConfig & { identityHeader?: string }): Promise<Listening> {
  const name = (cfg.identityHeader ?? IDENTITY_HEADER).toLowerCase();
  const server = http.createServer((req, res) => {
    req.resume();
    void backendDecision(cfg, header(req, name), header(req, 'authorization')).then((d) => {
      res.writeHead(d.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(d.status === 200 ? { ok: true } : { detail: d.detail }));
    });
  });
  return listen(server, 'http');
}

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export interface IngressOptions {
  certPem: string;
  keyPem: string;
  /** Client CA; with it the ingress asks for client certificates and applies `mode`. */
  clientCa?: string;
  mode?: IngressMode;
  backend: string;
  identityHeader?: string;
}

/** A TLS-terminating reverse proxy to `backend`, forwarding the verified client CN the way nginx is told to. */
export async function startIngress(o: IngressOptions): Promise<Listening> {
  const name = (o.identityHeader ?? IDENTITY_HEADER).toLowerCase();
  const backend = new URL(o.backend);
  const server = https.createServer(
    { cert: o.certPem, key: o.keyPem, minVersion: 'TLSv1.2', ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
    (req, res) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v;
      if (o.clientCa) {
        const sock = req.socket as TLSSocket;
        const peer = sock.getPeerCertificate();
        const present = Boolean(peer && Object.keys(peer).length > 0);
        const decision = ingressDecision(o.mode ?? 'required', { present, verified: sock.authorized, cn: present ? peer.subject?.CN?.toString() : undefined }, header(req, name));
        if ('status' in decision) {
          req.resume();
          res.writeHead(decision.status, { 'content-type': 'text/html', connection: 'close' });
          res.end(`<html><head><title>${decision.status} Bad Request</title></head><body><center>${decision.body}</center></body></html>\n`);
          return;
        }
        delete headers[name];
        if (decision.identity !== undefined) headers[name] = decision.identity;
      }
      const up = http.request({ host: backend.hostname, port: backend.port, path: req.url, method: req.method, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    },
  );
  return listen(server, 'https', '');
}

// ---------------------------------------------------------------- certificates

export interface IdentityCertificates {
  ca: Minted;
  server: (cn: string, notBefore: Date, notAfter: Date) => Promise<Minted>;
  client: (cn: string, notBefore: Date, notAfter: Date) => Promise<Minted>;
}

/** A deployment CA and issuers of server (with IP SAN 127.0.0.1: Node refuses an IP URL without one) and client certificates. */
export async function identityCertificates(deployment: string, now = Date.now()): Promise<IdentityCertificates> {
  const ca = await mintCa({ subject: `CN=Aegis ${deployment} internal CA,O=aegis-sandbox`, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now + 335 * DAY) });
  return {
    ca,
    server: (cn, notBefore, notAfter) => mintLeaf({ issuer: ca.signer, subject: `CN=${cn},O=aegis-sandbox`, usage: 'server', dns: [cn], ips: ['127.0.0.1'], notBefore, notAfter }),
    client: (cn, notBefore, notAfter) => mintLeaf({ issuer: ca.signer, subject: `CN=${cn},O=aegis-sandbox`, usage: 'client', notBefore, notAfter }),
  };
}

// ---------------------------------------------------------------- the whole side

export interface IdentityOptions {
  names: IdentityNames;
  deployment: string;
  selected: ReadonlySet<ViolationId>;
  /** The enrolled list as the services read it (after the Vault violations). */
  enrolled: readonly string[];
  /** The sandbox folder: files go to `<dir>/identity/`. */
  dir: string;
}

export interface IdentitySandbox {
  jwksUrl: string;
  urls: { mtls: string; oidc: string; issuer: string };
  /** `sources.endpoints` for audit.yaml (paths relative to the sandbox folder). */
  configFragment: Record<string, unknown>;
  secretValues: string[];
  stop(): Promise<void>;
}

export async function startIdentitySandbox(o: IdentityOptions): Promise<IdentitySandbox> {
  const { names, selected: has } = { names: o.names, selected: o.selected };
  const now = Date.now();
  const at = (days: number) => new Date(now + days * DAY);
  const certs = await identityCertificates(o.deployment, now);
  const host = (svc: string) => `${svc}.${o.deployment}.aegis.internal`;
  const [mtlsServer, oidcServer, idpServer, auditor, unenrolled] = await Promise.all([
    has.has('cert-expiring') ? certs.server(host(names.mtlsEndpoint), at(-25), at(5)) : certs.server(host(names.mtlsEndpoint), at(-10), at(20)),
    certs.server(host(names.oidcEndpoint), at(-10), at(20)),
    certs.server(`idp.${o.deployment}.aegis.internal`, at(-10), at(20)),
    has.has('cert-long-lived') ? certs.client(names.auditorCn, at(-30), at(3620)) : certs.client(names.auditorCn, at(-5), at(25)),
    certs.client(names.unenrolledCn, at(-5), at(25)),
  ]);

  // ---- the issuer's keys: its own signing key, and the key registered for the auditor's probes
  const [idp, probe] = await Promise.all([generateKeyPair('RS256', { modulusLength: 2048, extractable: true }), generateKeyPair('RS256', { modulusLength: 2048, extractable: true })]);
  const idpPublic: JWK = { ...(await exportJWK(idp.publicKey)), kid: names.idpKid, alg: 'RS256', use: 'sig' };
  const probePublic: JWK = { ...(await exportJWK(probe.publicKey)), kid: PROBE_KID, alg: 'RS256', use: 'sig' };
  const idpPrivate = await exportJWK(idp.privateKey);
  const served: JWK[] = [has.has('jwks-private-key') ? { ...idpPrivate, kid: names.idpKid, alg: 'RS256', use: 'sig' } : idpPublic, probePublic];
  const hsSecret = randomBytes(32).toString('base64url');
  if (has.has('jwks-hs-key')) served.push({ kty: 'oct', kid: names.hsKid, alg: 'HS256', use: 'sig', k: hsSecret });
  const probePem = await exportPKCS8(probe.privateKey);

  const running: Listening[] = [];
  try {
    const idpHttps = https.createServer({ cert: idpServer.certPem, key: idpServer.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      req.resume();
      const path = (req.url ?? '').split('?')[0];
      if (path === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
        res.end(JSON.stringify({ keys: served }));
      } else if (path === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: names.issuer, jwks_uri: `${issuer.url}/.well-known/jwks.json` }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    const issuer = await listen(idpHttps, 'https');
    running.push(issuer);
    const jwksUrl = `${issuer.url}/.well-known/jwks.json`;

    const oidcUnbound = has.has('oidc-unbound');
    const [mtlsBackend, oidcBackend] = await Promise.all([
      startBackend({ mode: 'mtls', enrolled: o.enrolled }),
      startBackend({
        mode: 'oidc',
        enrolled: [],
        oidc: {
          keys: [idpPublic, probePublic],
          ...(oidcUnbound ? {} : { audience: names.audience, issuer: names.issuer }),
          acceptAlgNone: has.has('oidc-accepts-alg-none'),
          acceptExpired: has.has('oidc-accepts-expired'),
        },
      }),
    ]);
    running.push(mtlsBackend, oidcBackend);
    const mode: IngressMode = has.has('ingress-forwards-forged-header') ? 'forward-header' : has.has('ingress-accepts-no-cert') ? 'optional' : 'required';
    const [mtlsIngress, oidcIngress] = await Promise.all([
      startIngress({ certPem: mtlsServer.certPem, keyPem: mtlsServer.keyPem, clientCa: certs.ca.certPem, mode, backend: mtlsBackend.url }),
      startIngress({ certPem: oidcServer.certPem, keyPem: oidcServer.keyPem, backend: oidcBackend.url }),
    ]);
    running.push(mtlsIngress, oidcIngress);

    // ---- the auditor's files
    const dir = join(o.dir, 'identity');
    await mkdir(dir, { recursive: true });
    const files: Record<string, [string, boolean]> = {
      'ca.pem': [certs.ca.certPem, false],
      'auditor.crt': [auditor.certPem, false],
      'auditor.key': [auditor.keyPem, true],
      'unenrolled.crt': [unenrolled.certPem, false],
      'unenrolled.key': [unenrolled.keyPem, true],
      'oidc-probe-key.pem': [probePem, true],
    };
    for (const [f, [text, secret]] of Object.entries(files)) {
      await writeFile(join(dir, f), text, { mode: secret ? 0o600 : 0o644 });
      if (secret) await chmod(join(dir, f), 0o600);
    }
    const urls = { mtls: `${mtlsIngress.url}/v1/predict`, oidc: `${oidcIngress.url}/v1/predict`, issuer: issuer.url };
    const configFragment = {
      ca_file: 'identity/ca.pem',
      client_cert_file: 'identity/auditor.crt',
      client_key_file: 'identity/auditor.key',
      unenrolled_cert_file: 'identity/unenrolled.crt',
      unenrolled_key_file: 'identity/unenrolled.key',
      token_signing_key_file: 'identity/oidc-probe-key.pem',
      timeout: '5s',
      targets: {
        [names.mtlsEndpoint]: { url: urls.mtls, probes: ['mtls'] },
        [names.oidcEndpoint]: { url: urls.oidc, probes: ['oidc'], oidc: { audience: names.audience, issuer: names.issuer } },
      },
    };
    const secretValues = [
      auditor.keyPem,
      unenrolled.keyPem,
      probePem,
      mtlsServer.keyPem,
      oidcServer.keyPem,
      idpServer.keyPem,
      certs.ca.keyPem,
      hsSecret,
      ...['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => String((idpPrivate as unknown as Record<string, unknown>)[m] ?? '')).filter((v) => v !== ''),
    ];
    let stopped = false;
    return {
      jwksUrl,
      urls,
      configFragment,
      secretValues,
      async stop() {
        if (stopped) return;
        stopped = true;
        await Promise.all(running.map((r) => r.close()));
      },
    };
  } catch (e) {
    await Promise.all(running.map((r) => r.close().catch(() => undefined)));
    throw e;
  }
}
