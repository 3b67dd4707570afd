/**
 * The endpoints source: probes the deployment's protected endpoints from outside, over real
 * TLS, the way a client (or an attacker) would — with no client certificate, the auditor's
 * enrolled one, a valid unenrolled one, or one from a throwaway CA — and fetches JSON Web Key
 * Sets over verified HTTPS. Certificates and keys come from files named in config; every key
 * read is registered with the run's scrubber. Nothing it reads from an endpoint (bodies,
 * headers) is kept: a probe's outcome is a TLS refusal or an HTTP status.
 *
 * An endpoint that cannot be reached, times out, or whose server certificate does not verify
 * throws a coded error naming the endpoint: its checks end in `error`, never `pass`.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type {
  ClientCertificate,
  EndpointSource,
  EndpointTarget,
  FetchedDocument,
  ProbeClient,
  ProbeOutcome,
  ProbeRequest,
  ServerCertificates,
  TokenSigner,
} from '../core/sources';
import type { KnownSecrets } from '../core/secret';
import type { EndpointsConfig } from '../config/schema';
import { AuditError, ErrorCodes, configError, sourceUnavailable } from '../core/errors';
import { guard, wrapSourceError } from './errors';
import { mintCa, mintLeaf, subjectOf } from './certs';

const SOURCE = 'endpoints';
/** A JWKS larger than this is not a key set anyone should serve. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** JWK members that are private key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Verification failures of the server's certificate on our side (the server is not who it claims). */
const SERVER_CERT_CODES = /^(CERT_|ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_SSL_WRONG_VERSION_NUMBER)/;

interface KeyPairFiles {
  cert: string;
  key: string;
  certFile: string;
}

interface Material {
  ca?: string[];
  enrolled?: KeyPairFiles;
  unenrolled?: KeyPairFiles;
}

/** The URL as it may be shown: no credentials, query string or fragment. */
export function displayUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

function describeTlsCode(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{3,80}$/.test(code)) return code;
  const msg = String((e as Error)?.message ?? '');
  const alert = /alert ([a-z ]{3,40})/i.exec(msg)?.[1];
  return alert ? `alert ${alert.trim()}` : 'connection reset';
}

function isServerCertError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && SERVER_CERT_CODES.test(code) && code !== 'ERR_SSL_WRONG_VERSION_NUMBER';
}

/** A TLS alert from the server, or the server dropping the connection once TCP was up. */
function isTlsRefusal(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  if (/^ERR_SSL_/.test(code) && /ALERT/.test(code)) return true;
  if (code === 'EPROTO' && /alert/i.test(String(err?.message ?? ''))) return true;
  return code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(String(err?.message ?? ''));
}

export class TlsEndpointSource implements EndpointSource {
  readonly #cfg: EndpointsConfig;
  readonly #known: KnownSecrets;
  readonly #targets: EndpointTarget[];
  #material?: Promise<Material>;
  #untrusted?: Promise<{ cert: string; key: string }>;
  #signer?: Promise<TokenSigner | undefined>;

  constructor(cfg: EndpointsConfig, known: KnownSecrets) {
    this.#cfg = cfg;
    this.#known = known;
    this.#targets = Object.entries(cfg.targets).map(([name, t]) => ({
      name,
      url: displayUrl(t.url),
      service: t.service ?? name,
      probes: [...new Set(t.probes)],
      identityHeader: t.identity_header.toLowerCase(),
      oidc: { audience: t.oidc.audience, issuer: t.oidc.issuer, jwksUri: t.oidc.jwks_uri },
    }));
  }

  targets(): EndpointTarget[] {
    return this.#targets.map((t) => ({ ...t, probes: [...t.probes], oidc: { ...t.oidc } }));
  }

  hasClient(client: ProbeClient): boolean {
    if (client === 'enrolled') return Boolean(this.#cfg.client_cert_file);
    if (client === 'unenrolled') return Boolean(this.#cfg.unenrolled_cert_file);
    return true;
  }

  async #read(file: string, setting: string): Promise<string> {
    return guard(SOURCE, `reading ${setting} ${file}`, () => readFile(file, 'utf8'));
  }

  async #pair(certFile: string, keyFile: string, prefix: string): Promise<KeyPairFiles> {
    const [cert, key] = await Promise.all([this.#read(certFile, `${prefix}_cert_file`), this.#read(keyFile, `${prefix}_key_file`)]);
    this.#known.add(key);
    let x: X509Certificate;
    let k: KeyObject;
    try {
      x = new X509Certificate(cert);
    } catch {
      throw configError(`sources.endpoints.${prefix}_cert_file (${certFile}) is not a PEM certificate`);
    }
    try {
      k = createPrivateKey(key);
    } catch {
      throw configError(`sources.endpoints.${prefix}_key_file (${keyFile}) is not a PEM private key`);
    }
    if (!x.checkPrivateKey(k)) throw configError(`sources.endpoints.${prefix}_key_file (${keyFile}) is not the key of ${prefix}_cert_file (${certFile})`);
    return { cert, key, certFile };
  }

  #load(): Promise<Material> {
    this.#material ??= (async () => {
      const c = this.#cfg;
      const m: Material = {};
      if (c.ca_file) {
        const pem = await this.#read(c.ca_file, 'ca_file');
        if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw configError(`sources.endpoints.ca_file (${c.ca_file}) holds no PEM certificate`);
        m.ca = c.system_ca ? [...tls.rootCertificates, pem] : [pem];
      }
      if (c.client_cert_file && c.client_key_file) m.enrolled = await this.#pair(c.client_cert_file, c.client_key_file, 'client');
      if (c.unenrolled_cert_file && c.unenrolled_key_file) m.unenrolled = await this.#pair(c.unenrolled_cert_file, c.unenrolled_key_file, 'unenrolled');
      return m;
    })();
    return this.#material;
  }

  async clientCertificates(): Promise<ClientCertificate[]> {
    const m = await this.#load();
    const out: ClientCertificate[] = [];
    if (m.enrolled) out.push({ role: 'enrolled', pem: m.enrolled.cert, origin: m.enrolled.certFile });
    if (m.unenrolled) out.push({ role: 'unenrolled', pem: m.unenrolled.cert, origin: m.unenrolled.certFile });
    return out;
  }

  /** A client certificate from a CA generated for this run, with the enrolled certificate's subject. */
  #untrustedPair(): Promise<{ cert: string; key: string }> {
    this.#untrusted ??= (async () => {
      const m = await this.#load();
      const subject = m.enrolled ? subjectOf(m.enrolled.cert) : 'CN=aegis-audit-probe';
      const now = Date.now();
      const ca = await mintCa({ subject: 'CN=aegis-audit untrusted probe CA', notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) });
      const leaf = await mintLeaf({ issuer: ca.signer, subject, usage: 'client', notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) });
      return { cert: leaf.certPem, key: leaf.keyPem };
    })();
    return this.#untrusted;
  }

  #target(name: string): { t: EndpointTarget; url: URL; serverName?: string } {
    const t = this.#targets.find((x) => x.name === name);
    const raw = this.#cfg.targets[name];
    if (!t || !raw) throw configError(`no endpoint named '${name}' in sources.endpoints.targets`);
    const url = new URL(raw.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return { t, url, serverName: raw.server_name ?? (isIP(host) ? undefined : host) };
  }

  async #tlsOptions(client: ProbeClient, serverName: string | undefined): Promise<tls.ConnectionOptions> {
    const m = await this.#load();
    const o: tls.ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
    if (m.ca) o.ca = m.ca;
    if (serverName) o.servername = serverName;
    if (serverName) o.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(serverName, cert);
    if (client === 'enrolled' || client === 'unenrolled') {
      const pair = client === 'enrolled' ? m.enrolled : m.unenrolled;
      if (!pair) throw configError(`the ${client} probe needs sources.endpoints.${client === 'enrolled' ? 'client' : 'unenrolled'}_cert_file and _key_file`);
      o.cert = pair.cert;
      o.key = pair.key;
    } else if (client === 'untrusted') {
      const p = await this.#untrustedPair();
      o.cert = p.cert;
      o.key = p.key;
    }
    return o;
  }

  async serverCertificates(target: string, signal?: AbortSignal): Promise<ServerCertificates> {
    const { t, url, serverName } = this.#target(target);
    const client: ProbeClient = this.hasClient('enrolled') ? 'enrolled' : 'none';
    const opts = { ...(await this.#tlsOptions(client, serverName)), rejectUnauthorized: false };
    delete opts.checkServerIdentity;
    const what = `${t.name} (${t.url}): reading the server certificate`;
    return new Promise<ServerCertificates>((resolve, reject) => {
      const socket = tls.connect({ ...opts, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443) });
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), this.#cfg.timeout);
      const onAbort = () => socket.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      socket.once('secureConnect', () => {
        finish();
        const chain: string[] = [];
        const seen = new Set<string>();
        let cur: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
        while (cur && cur.raw && chain.length < 10) {
          const fp = cur.fingerprint256;
          if (seen.has(fp)) break;
          seen.add(fp);
          chain.push(new X509Certificate(cur.raw).toString());
          cur = cur.issuerCertificate;
        }
        let reason: string | undefined = socket.authorized ? undefined : String(socket.authorizationError ?? 'UNVERIFIED');
        if (!reason) {
          const peer = socket.getPeerCertificate();
          const err = tls.checkServerIdentity(serverName ?? url.hostname.replace(/^\[|\]$/g, ''), peer);
          if (err) reason = 'ERR_TLS_CERT_ALTNAME_INVALID';
        }
        socket.destroy();
        resolve({ chain, trusted: reason === undefined, ...(reason ? { reason: /^[A-Z0-9_]{3,80}$/.test(reason) ? reason : 'UNVERIFIED' } : {}) });
      });
      socket.once('error', (e) => {
        finish();
        reject(isTlsRefusal(e) ? sourceUnavailable(SOURCE, 'tls_refused', `${what}: the TLS handshake was refused (${describeTlsCode(e)})`) : wrapSourceError(SOURCE, what, e));
      });
    });
  }

  async probe(target: string, req: ProbeRequest): Promise<ProbeOutcome> {
    const { t, url, serverName } = this.#target(target);
    const opts = await this.#tlsOptions(req.client, serverName);
    const headers: Record<string, string> = { 'user-agent': 'aegis-audit (compliance probe)', ...req.headers };
    if (req.bearer !== undefined) headers.authorization = `Bearer ${req.bearer}`;
    const what = `${t.name} (${t.url}): ${req.client === 'none' ? 'request without a client certificate' : `request with the ${req.client} client certificate`}`;
    return new Promise<ProbeOutcome>((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        f();
      };
      let connected = false;
      const r = https.request({ ...opts, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), path: url.pathname, method: 'GET', headers, agent: false, signal: req.signal });
      r.setTimeout(this.#cfg.timeout, () => r.destroy(Object.assign(new Error(`no answer within ${this.#cfg.timeout} ms`), { code: 'ETIMEDOUT' })));
      r.on('socket', (s) => s.once('connect', () => (connected = true)));
      r.on('response', (res) => {
        // Only the status matters; the body is the endpoint's text and is never read.
        done(() => resolve({ kind: 'response', status: res.statusCode ?? 0 }));
        r.destroy();
      });
      r.on('error', (e) => {
        done(() => {
          if (isServerCertError(e)) {
            reject(new AuditError(ErrorCodes.SOURCE_UNAVAILABLE, `${SOURCE}: ${t.name} (${t.url}): the server certificate does not verify (${describeTlsCode(e)})`, { source: SOURCE, reason: 'untrusted_server' }));
          } else if (connected && isTlsRefusal(e)) {
            resolve({ kind: 'tls-refused', detail: describeTlsCode(e) });
          } else {
            reject(wrapSourceError(SOURCE, what, e));
          }
        });
      });
      r.end();
    });
  }

  async fetchJson(raw: string, signal?: AbortSignal): Promise<FetchedDocument> {
    const shown = displayUrl(raw);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw configError(`${SOURCE}: '${shown}' is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw configError(`${SOURCE}: ${shown}: only https (or http) URLs can be fetched`);
    const m = await this.#load();
    const what = `fetching ${shown}`;
    const text = await new Promise<string>((resolve, reject) => {
      const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json', 'user-agent': 'aegis-audit' }, agent: false, signal };
      if (url.protocol === 'https:') Object.assign(opts, { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(m.ca ? { ca: m.ca } : {}) });
      const r = (url.protocol === 'https:' ? https : http).request(url, opts);
      r.setTimeout(this.#cfg.timeout, () => r.destroy(Object.assign(new Error(`no answer within ${this.#cfg.timeout} ms`), { code: 'ETIMEDOUT' })));
      r.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          r.destroy();
          const reason = status === 404 ? 'not_found' : status === 401 || status === 403 ? 'forbidden' : status === 429 ? 'throttled' : status >= 500 ? 'server_error' : 'bad_status';
          reject(sourceUnavailable(SOURCE, reason, `${what}: HTTP ${status}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_DOCUMENT_BYTES) {
            r.destroy();
            reject(new AuditError(ErrorCodes.BAD_DATA, `${SOURCE}: ${what}: the document is larger than ${MAX_DOCUMENT_BYTES} bytes`, { source: SOURCE, reason: 'bad_data' }));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', (e) => reject(wrapSourceError(SOURCE, what, e)));
      });
      r.on('error', (e) => {
        if (isServerCertError(e)) reject(new AuditError(ErrorCodes.SOURCE_UNAVAILABLE, `${SOURCE}: ${what}: the server certificate does not verify (${describeTlsCode(e)})`, { source: SOURCE, reason: 'untrusted_server' }));
        else reject(wrapSourceError(SOURCE, what, e));
      });
      r.end();
    });
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return { url: shown, body: undefined, parseError: 'the body is not JSON' };
    }
    // A key set that publishes private members has made them public, but they are still never repeated.
    const keys = (body as { keys?: unknown })?.keys;
    if (Array.isArray(keys)) {
      for (const k of keys) {
        if (!k || typeof k !== 'object') continue;
        for (const m of PRIVATE_JWK_MEMBERS) {
          const v = (k as Record<string, unknown>)[m];
          if (typeof v === 'string') this.#known.add(v);
        }
      }
    }
    return { url: shown, body };
  }

  tokenSigner(): Promise<TokenSigner | undefined> {
    const file = this.#cfg.token_signing_key_file;
    if (!file) return Promise.resolve(undefined);
    this.#signer ??= (async () => {
      const pem = await this.#read(file, 'token_signing_key_file');
      this.#known.add(pem);
      let key: KeyObject;
      try {
        key = createPrivateKey(pem);
      } catch {
        throw configError(`sources.endpoints.token_signing_key_file (${file}) is not a PEM private key`);
      }
      const publicJwk = createPublicKey(key).export({ format: 'jwk' }) as Record<string, unknown>;
      const alg = signingAlg(key);
      if (!alg) throw configError(`sources.endpoints.token_signing_key_file (${file}): unsupported key type ${key.asymmetricKeyType ?? '?'} (RSA, EC P-256/P-384 or Ed25519)`);
      return {
        publicJwk,
        alg,
        origin: file,
        sign: (claims, header) => new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(key),
      };
    })();
    return this.#signer;
  }
}

function signingAlg(key: KeyObject): string | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'ec': {
      const crv = key.asymmetricKeyDetails?.namedCurve;
      return crv === 'prime256v1' ? 'ES256' : crv === 'secp384r1' ? 'ES384' : undefined;
    }
    case 'ed25519':
      return 'EdDSA';
    default:
      return undefined;
  }
}
