/**
 * An in-memory EndpointSource whose endpoints decide requests with the same functions as the
 * sandbox's real ingress and Aegis-like backend (src/sandbox/identity-auth.ts), so a table
 * case says "an ingress with ssl_verify_client optional in front of an mtls backend" rather
 * than scripting status codes. Certificates are minted on first use; nothing is committed.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { ClientCertificate, EndpointSource, EndpointTarget, FetchedDocument, ProbeClient, ProbeOutcome, ProbeRequest, ServerCertificates, TokenSigner } from '../../src/core/sources';
import { backendDecision, ingressDecision, type BackendConfig, type IngressMode } from '../../src/sandbox/identity-auth';
import { mintCa, mintLeaf } from '../../src/sources/certs';

const DAY = 86_400_000;

export interface CertSpec {
  cn: string;
  /** Days from now (negative: in the past). */
  from: number;
  to: number;
  issuerCn?: string;
}

export interface FakeEndpoint {
  name: string;
  probes: ('mtls' | 'oidc')[];
  /** With a client CA: how the ingress treats client certificates; undefined: TLS only, headers pass. */
  ingress?: IngressMode;
  backend: BackendConfig;
  server?: CertSpec;
  /** The server chain does not verify (a code such as CERT_HAS_EXPIRED). */
  untrustedServer?: string;
  oidc?: EndpointTarget['oidc'];
  service?: string;
  /** Replace the decision of a probe (an outage, a TLS refusal). */
  override?: (req: ProbeRequest) => ProbeOutcome | Error | undefined;
}

export interface FakeEndpointData {
  endpoints: FakeEndpoint[];
  enrolledCn?: string;
  unenrolledCn?: string;
  /** The auditor's client certificate; undefined: none configured. */
  client?: CertSpec | null;
  unenrolled?: boolean;
  /** URL → JSON body, an Error (fetch fails), or a `{ parseError }`. */
  documents?: Record<string, unknown>;
  signer?: TokenKey | null;
}

/** A key pair for signing test tokens, made at run time. */
export interface TokenKey {
  privateKey: KeyObject;
  publicJwk: JWK;
  kid: string;
}

export async function tokenKey(kid: string, alg = 'RS256'): Promise<TokenKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const pk = createPrivateKey(await exportPKCS8(privateKey));
  const pub = (await exportJWK(createPublicKey(pk))) as JWK;
  return { privateKey: pk, publicJwk: { ...pub, kid, alg, use: 'sig' }, kid };
}

export async function signWith(k: TokenKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: k.kid, ...header }).sign(k.privateKey);
}

const at = (days: number) => new Date(Date.now() + days * DAY);

export class FakeEndpointSource implements EndpointSource {
  readonly #d: FakeEndpointData;
  readonly requests: { target: string; client: ProbeClient; bearer?: string; headers?: Record<string, string> }[] = [];
  #pems?: Promise<{ server: Map<string, string[]>; client?: string; unenrolled?: string }>;

  constructor(data: FakeEndpointData) {
    this.#d = data;
  }

  targets(): EndpointTarget[] {
    return this.#d.endpoints.map((e) => ({
      name: e.name,
      url: `https://${e.name}.test:8443/v1/predict`,
      service: e.service ?? e.name,
      probes: e.probes,
      identityHeader: 'x-ssl-client-cn',
      oidc: e.oidc ?? {},
    }));
  }

  #mint(): Promise<{ server: Map<string, string[]>; client?: string; unenrolled?: string }> {
    this.#pems ??= (async () => {
      const cas = new Map<string, Awaited<ReturnType<typeof mintCa>>>();
      const ca = async (cn: string) => {
        let c = cas.get(cn);
        if (!c) cas.set(cn, (c = await mintCa({ subject: `CN=${cn}`, notBefore: at(-30), notAfter: at(335) })));
        return c;
      };
      const leaf = async (s: CertSpec, usage: 'server' | 'client') => {
        const issuer = await ca(s.issuerCn ?? 'Test Internal CA');
        return [(await mintLeaf({ issuer: issuer.signer, subject: `CN=${s.cn}`, usage, notBefore: at(s.from), notAfter: at(s.to) })).certPem, issuer.certPem];
      };
      const server = new Map<string, string[]>();
      for (const e of this.#d.endpoints) server.set(e.name, await leaf(e.server ?? { cn: `${e.name}.test`, from: -10, to: 20 }, 'server'));
      const client = this.#d.client === null ? undefined : (await leaf(this.#d.client ?? { cn: this.enrolledCn, from: -5, to: 25 }, 'client'))[0];
      const unenrolled = this.#d.unenrolled === false ? undefined : (await leaf({ cn: this.unenrolledCn, from: -5, to: 25 }, 'client'))[0];
      return { server, client, unenrolled };
    })();
    return this.#pems;
  }

  get enrolledCn(): string {
    return this.#d.enrolledCn ?? 'svc-auditor';
  }

  get unenrolledCn(): string {
    return this.#d.unenrolledCn ?? 'svc-stranger';
  }

  hasClient(client: ProbeClient): boolean {
    if (client === 'enrolled') return this.#d.client !== null;
    if (client === 'unenrolled') return this.#d.unenrolled !== false;
    return true;
  }

  async clientCertificates(): Promise<ClientCertificate[]> {
    const p = await this.#mint();
    const out: ClientCertificate[] = [];
    if (p.client) out.push({ role: 'enrolled', pem: p.client, origin: '/etc/aegis-audit/client.crt' });
    if (p.unenrolled) out.push({ role: 'unenrolled', pem: p.unenrolled, origin: '/etc/aegis-audit/unenrolled.crt' });
    return out;
  }

  #endpoint(name: string): FakeEndpoint {
    const e = this.#d.endpoints.find((x) => x.name === name);
    if (!e) throw new Error(`fake endpoints: no endpoint ${name}`);
    return e;
  }

  async serverCertificates(target: string): Promise<ServerCertificates> {
    const e = this.#endpoint(target);
    const chain = (await this.#mint()).server.get(target) ?? [];
    return e.untrustedServer ? { chain, trusted: false, reason: e.untrustedServer } : { chain, trusted: true };
  }

  async probe(target: string, req: ProbeRequest): Promise<ProbeOutcome> {
    const e = this.#endpoint(target);
    this.requests.push({ target, client: req.client, bearer: req.bearer, headers: req.headers ? { ...req.headers } : undefined });
    const o = e.override?.(req);
    if (o instanceof Error) throw o;
    if (o) return o;
    const headerValue = req.headers?.['x-ssl-client-cn'];
    let identity = headerValue;
    if (e.ingress) {
      const present = req.client !== 'none';
      const cn = req.client === 'unenrolled' ? this.unenrolledCn : this.enrolledCn;
      const d = ingressDecision(e.ingress, { present, verified: present && req.client !== 'untrusted', cn: present ? cn : undefined }, headerValue);
      if ('status' in d) return { kind: 'response', status: d.status };
      identity = d.identity;
    }
    const b = await backendDecision(e.backend, identity, req.bearer !== undefined ? `Bearer ${req.bearer}` : undefined);
    return { kind: 'response', status: b.status };
  }

  async fetchJson(url: string): Promise<FetchedDocument> {
    const doc = this.#d.documents?.[url];
    if (doc instanceof Error) throw doc;
    if (doc === undefined) throw new Error(`fake endpoints: no document at ${url}`);
    if (doc && typeof doc === 'object' && 'parseError' in doc) return { url, body: undefined, parseError: String((doc as { parseError: unknown }).parseError) };
    return { url, body: JSON.parse(JSON.stringify(doc)) as unknown };
  }

  /** The probe signing key's private members (for the no-leak canary). */
  secretValues(): string[] {
    const k = this.#d.signer;
    if (!k) return [];
    const jwk = k.privateKey.export({ format: 'jwk' });
    return [jwk.d, jwk.p, jwk.q].filter((v): v is string => typeof v === 'string');
  }

  async tokenSigner(): Promise<TokenSigner | undefined> {
    const k = this.#d.signer;
    if (!k) return undefined;
    return {
      publicJwk: { kty: k.publicJwk.kty, n: k.publicJwk.n, e: k.publicJwk.e },
      alg: 'RS256',
      origin: '/etc/aegis-audit/probe-key.pem',
      sign: (claims, header) => new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256' }).sign(k.privateKey),
    };
  }
}
