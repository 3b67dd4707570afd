/**
 * OIDC verification rests on the JWKS the services fetch (*Runbook: Enforce Vault-backed
 * secrets and OIDC/mTLS auth end-to-end* §2 "Configure AUTH_MODE", §4 "Testing in staging",
 * §8 "OIDC tokens validate against JWKS"). Aegis takes each key's allowed algorithm from the
 * set itself (`algorithms=[jwk.alg or RS256]`), so a symmetric key or an `alg: none` entry in
 * the set is a way in. Passively: the set must hold only public asymmetric keys of adequate
 * size with unique kids. Actively, on the endpoints configured for it: tokens that are
 * expired, signed by a key not in the set, unsigned, or for another audience or issuer must
 * all get 401.
 */
import { z } from 'zod';
import type { KeyObject } from 'node:crypto';
import type * as Jose from 'jose';
import type { JSONWebKeySet, JWK } from 'jose';

// jose is loaded when the check runs, not when the catalog is listed (start-up of every CLI command).
let joseModule: typeof Jose | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jose = () => (joseModule ??= require('jose') as typeof Jose);
const createLocalJWKSet = ((...a: Parameters<typeof Jose.createLocalJWKSet>) => jose().createLocalJWKSet(...a)) as typeof Jose.createLocalJWKSet;
const importJWK = ((...a: Parameters<typeof Jose.importJWK>) => jose().importJWK(...a)) as typeof Jose.importJWK;
const generateKeyPair = ((...a: Parameters<typeof Jose.generateKeyPair>) => jose().generateKeyPair(...a)) as typeof Jose.generateKeyPair;
const calculateJwkThumbprint = ((...a: Parameters<typeof Jose.calculateJwkThumbprint>) => jose().calculateJwkThumbprint(...a)) as typeof Jose.calculateJwkThumbprint;
import { defineCheck, type CheckContext } from '../src/core/define-check';
import { AuditError, ErrorCodes, configError, isAuditError } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { EndpointSource, EndpointTarget, ProbeOutcome, TokenSigner } from '../src/core/sources';
import { classify, describeOutcome, outcomeEvidence } from './lib/probes';
import { isRecord } from './lib/payload';
import { untrusted } from '../src/core/untrusted';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const;
/** A kid is the key set's text: bounded in resources, bounded further in messages. */
const MAX_KID = 128;

const messages = {
  invalidSet: 'The JWKS at {{jwks}} is not a usable JSON Web Key Set: {{reason}}.',
  notHttps: 'The JWKS URI {{jwks}} is plain HTTP: anyone on the path can swap the keys the services trust.',
  invalidKey: 'Key {{kid}} in the JWKS at {{jwks}} is not a usable JWK: {{reason}}.',
  privateKey: 'Key {{kid}} in the JWKS at {{jwks}} publishes private key material ({{members}}): anyone can sign tokens the services accept.',
  symmetricKey: 'Key {{kid}} in the JWKS at {{jwks}} is a symmetric (oct) key: its secret is public, and Aegis accepts HS tokens signed with it.',
  forbiddenAlg: 'Key {{kid}} in the JWKS at {{jwks}} declares alg {{alg}}, which Aegis then accepts for tokens: only asymmetric signature algorithms belong in a key set.',
  weakRsa: 'Key {{kid}} in the JWKS at {{jwks}} is an RSA key of {{bits}} bits; at least {{min}} are required.',
  duplicateKid: 'kid {{kid}} appears {{count}} times in the JWKS at {{jwks}}: which key verifies a token is ambiguous.',
  tokenAccepted: '{{endpoint}}: probe {{probe}} ({{what}}) was accepted with {{answer}}; it must be refused with 401.',
  tokenUnexpected: '{{endpoint}}: probe {{probe}} ({{what}}) got {{answer}}, not 401.',
  validRefused:
    '{{endpoint}}: probe valid-token (a valid token signed with the probe key) was refused with {{answer}}: the endpoint does not trust the probe key or expects another audience or issuer, so the expired, audience and issuer probes were not run.',
  probesNotRun: '{{endpoint}}: the {{probes}} probes were not run: {{reason}}.',
} as const;
type MessageId = keyof typeof messages;

const options = z.object({
  /** Smallest RSA modulus accepted. */
  minRsaBits: z.number().int().min(1024).default(2048),
  /** JWKS URIs to check besides those the deployment names. */
  jwksUris: z.array(z.url()).default([]),
  /** The env setting and the runtime-secret field that name the JWKS URI. */
  envName: z.string().min(1).default('OIDC_JWKS_URI'),
  runtimeField: z.string().min(1).default('oidc_jwks_uri'),
  /** KV path of the runtime secret; default: the Vault source's runtime_path. */
  runtimePath: z.string().min(1).optional(),
  /** Probe only these targets; default: every target with the oidc probe. */
  targets: z.array(z.string().min(1)).optional(),
});

type Ctx = CheckContext<MessageId, z.output<typeof options>>;

interface JudgedSet {
  url: string;
  keys: Record<string, unknown>[];
}

function defaultAlg(jwk: Record<string, unknown>): string | undefined {
  if (typeof jwk.alg === 'string') return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256'; // Aegis: jwk.get("alg", "RS256")
  if (jwk.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, string>)[String(jwk.crv)];
  if (jwk.kty === 'OKP') return 'EdDSA';
  return undefined;
}

function publicPart(jwk: Record<string, unknown>): Record<string, unknown> {
  const out = { ...jwk };
  for (const m of [...PRIVATE_MEMBERS, 'k']) delete out[m];
  return out;
}

const KTYS = ['RSA', 'EC', 'OKP', 'oct'] as const;
const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512', 'none'] as const;

async function judgeSet(ctx: Ctx, fetchedUrl: string, body: unknown, parseError: string | undefined): Promise<JudgedSet> {
  // The URL comes from the deployment (env, Vault): it names findings only through the gate.
  const url = untrusted.id(fetchedUrl);
  const min = ctx.options.minRsaBits;
  if (/^http:/i.test(url)) ctx.report({ messageId: 'notHttps', data: { jwks: url }, resource: resource({ jwks: url, rule: 'https' }), evidence: { jwks: url }, severity: 'high' });
  const invalid = (reason: string): JudgedSet => {
    ctx.report({ messageId: 'invalidSet', data: { jwks: url, reason }, resource: resource({ jwks: url }), evidence: { jwks: url, reason }, severity: 'high' });
    return { url, keys: [] };
  };
  if (parseError) return invalid(parseError);
  try {
    createLocalJWKSet(body as JSONWebKeySet);
  } catch {
    return invalid('it has no "keys" array of JWK objects');
  }
  const keys = ((body as { keys: unknown[] }).keys ?? []).filter(isRecord);
  if (keys.length === 0) return invalid('the set holds no keys, so no token can be verified');

  const kids = new Map<string, number>();
  for (const [i, k] of keys.entries()) {
    const kid = typeof k.kid === 'string' ? untrusted.id(k.kid, MAX_KID) : undefined;
    if (kid !== undefined) kids.set(kid, (kids.get(kid) ?? 0) + 1);
    const shown = typeof k.kid === 'string' ? untrusted.text(k.kid) : `#${i} (no kid)`;
    const at = (rule: string) => resource(kid !== undefined ? { jwks: url, kid, rule } : { jwks: url, key: i, rule });
    const evidence = { jwks: url, kid: typeof k.kid === 'string' ? untrusted.text(k.kid) : null, index: i, kty: untrusted.oneOf(k.kty, KTYS), alg: k.alg === undefined ? null : untrusted.oneOf(k.alg, ALGS) };
    if (k.kty === 'oct') {
      ctx.report({ messageId: 'symmetricKey', data: { kid: shown, jwks: url }, resource: at('symmetric'), evidence, severity: 'critical' });
      continue;
    }
    const members = PRIVATE_MEMBERS.filter((m) => k[m] !== undefined);
    if (members.length > 0) {
      ctx.report({ messageId: 'privateKey', data: { kid: shown, jwks: url, members: members.join(', ') }, resource: at('private'), evidence: { ...evidence, members }, severity: 'critical' });
    }
    if (typeof k.alg === 'string' && (k.alg.toLowerCase() === 'none' || /^HS/i.test(k.alg))) {
      ctx.report({ messageId: 'forbiddenAlg', data: { kid: shown, jwks: url, alg: untrusted.text(k.alg, 16) }, resource: at('alg'), evidence, severity: 'critical' });
      continue;
    }
    const alg = defaultAlg(k);
    let imported: KeyObject | undefined;
    try {
      if (!alg) throw new Error(`unsupported key type (${untrusted.oneOf(k.kty, KTYS)})`);
      imported = (await importJWK(publicPart(k) as unknown as JWK, alg)) as KeyObject;
    } catch (e) {
      const reason = e instanceof Error && /unsupported key type/.test(e.message) ? e.message : 'its members do not form a public key of its type';
      ctx.report({ messageId: 'invalidKey', data: { kid: shown, jwks: url, reason }, resource: at('invalid'), evidence, severity: 'high' });
      continue;
    }
    const bits = imported.asymmetricKeyDetails?.modulusLength;
    if (k.kty === 'RSA' && bits !== undefined && bits < min) {
      ctx.report({ messageId: 'weakRsa', data: { kid: shown, jwks: url, bits, min }, resource: at('rsa-size'), evidence: { ...evidence, bits }, severity: 'high' });
    }
  }
  for (const [kid, count] of kids) {
    if (count > 1) {
      ctx.report({ messageId: 'duplicateKid', data: { kid: untrusted.text(kid), count, jwks: url }, resource: resource({ jwks: url, kid, rule: 'duplicate-kid' }), evidence: { jwks: url, kid: untrusted.text(kid), count }, severity: 'high' });
    }
  }
  return { url, keys };
}

/** The first setting value of a service in the secret store, if any. */
async function serviceSetting(ctx: Ctx, service: string, name: string): Promise<string | undefined> {
  const store = ctx.sources.secrets;
  if (!store) return undefined;
  const holders = await store.holders(name);
  return holders.find((h) => h.service === service)?.value.reveal();
}

interface TokenProbe {
  probe: string;
  what: string;
  token: () => Promise<string | undefined>;
  /** Needs the trusted probe signer. */
  signed: boolean;
}

/** One throwaway key per algorithm and process: generating RSA keys is slow, and these sign nothing that matters. */
const foreignKeys = new Map<string, ReturnType<typeof generateKeyPair>>();
function foreignKey(alg: string): ReturnType<typeof generateKeyPair> {
  let k = foreignKeys.get(alg);
  if (!k) foreignKeys.set(alg, (k = generateKeyPair(alg)));
  return k;
}

async function probeTarget(ctx: Ctx, ep: EndpointSource, t: EndpointTarget, set: JudgedSet | undefined, signer: TokenSigner | undefined): Promise<void> {
  const endpoint = `${t.name} (${t.url})`;
  const client = t.probes.includes('mtls') && ep.hasClient('enrolled') ? 'enrolled' : 'none';
  const audience = t.oidc.audience ?? (await serviceSetting(ctx, t.service, 'OIDC_AUDIENCE'));
  const issuer = t.oidc.issuer ?? (await serviceSetting(ctx, t.service, 'OIDC_ISSUER'));
  const keys = set?.keys ?? [];
  const nowS = Math.floor(ctx.now().getTime() / 1000);
  const base = { sub: 'aegis-audit-probe', iat: nowS, nbf: nowS - 60, exp: nowS + 300, ...(audience ? { aud: audience } : {}), ...(issuer ? { iss: issuer } : {}) };

  let signerKid: string | undefined;
  let notRun: string | undefined;
  if (!signer) notRun = 'no probe signing key is configured (sources.endpoints.token_signing_key_file)';
  else {
    const want = await calculateJwkThumbprint(signer.publicJwk as unknown as JWK);
    for (const k of keys) {
      if (typeof k.kid !== 'string' || k.kty === 'oct') continue;
      const tp = await calculateJwkThumbprint(publicPart(k) as unknown as JWK).catch(() => undefined);
      if (tp === want) {
        signerKid = k.kid;
        break;
      }
    }
    if (!signerKid) notRun = "the probe signing key is not in the endpoint's JWKS";
  }
  // Unsigned and foreign-key tokens name a kid the set holds, so a verifier must get as far as the signature.
  const trusted = keys.find((k) => k.kid === signerKid) ?? keys.find((k) => typeof k.kid === 'string' && (k.kty === 'RSA' || k.kty === 'EC' || k.kty === 'OKP'));
  const kid = typeof trusted?.kid === 'string' ? trusted.kid : 'aegis-audit-probe';
  const foreignAlg = (trusted && defaultAlg(trusted)) || 'RS256';

  const signed = (claims: Record<string, unknown>) => () => (signer && signerKid ? signer.sign(claims, { kid: signerKid, typ: 'JWT' }) : Promise.resolve(undefined));
  const probes: TokenProbe[] = [
    { probe: 'no-token', what: 'a request without a token', token: () => Promise.resolve(undefined), signed: false },
    { probe: 'expired', what: 'a token signed by the probe key that expired an hour ago', token: signed({ ...base, iat: nowS - 7200, nbf: nowS - 7200, exp: nowS - 3600 }), signed: true },
    { probe: 'other-audience', what: 'a token signed by the probe key for another audience', token: signed({ ...base, aud: 'urn:aegis-audit:probe:other-audience' }), signed: true },
    { probe: 'other-issuer', what: 'a token signed by the probe key from another issuer', token: signed({ ...base, iss: 'https://issuer.invalid/aegis-audit-probe' }), signed: true },
    {
      probe: 'unknown-key',
      what: `a token whose kid is in the set but that is signed by a key not in the set (${foreignAlg})`,
      token: async () => {
        const { privateKey } = await foreignKey(foreignAlg);
        return new (jose().SignJWT)(base).setProtectedHeader({ alg: foreignAlg, kid, typ: 'JWT' }).sign(privateKey);
      },
      signed: false,
    },
    {
      probe: 'alg-none',
      what: 'an unsigned token (alg: none) naming a kid of the set',
      // jose's UnsecuredJWT cannot carry a kid; without one Aegis would refuse for the wrong reason.
      token: () => Promise.resolve(`${jose().base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid }))}.${jose().base64url.encode(JSON.stringify(base))}.`),
      signed: false,
    },
  ];

  const send = (bearer: string | undefined): Promise<ProbeOutcome> => ep.probe(t.name, { client, bearer, signal: ctx.signal });
  let signedOk = !notRun;
  if (signedOk) {
    const valid = await send(await signed(base)());
    const cls = classify(valid);
    if (cls === 'tls' || cls === 'ingress' || cls === 'app') {
      ctx.report({
        messageId: 'validRefused',
        data: { endpoint, answer: describeOutcome(valid) },
        resource: resource({ endpoint: t.name, probe: 'valid-token' }),
        evidence: { endpoint: t.name, url: t.url, probe: 'valid-token', ...outcomeEvidence(valid) },
        severity: 'high',
      });
      signedOk = false;
    }
  } else {
    ctx.report({
      messageId: 'probesNotRun',
      data: { endpoint, probes: 'expired, other-audience and other-issuer', reason: notRun ?? '' },
      resource: resource({ endpoint: t.name, probe: 'signed-tokens' }),
      evidence: { endpoint: t.name, url: t.url },
      severity: 'info',
    });
  }
  for (const p of probes) {
    if (p.signed && !signedOk) continue;
    const outcome = await send(await p.token());
    const cls = classify(outcome);
    const data = { endpoint, probe: p.probe, what: p.what, answer: describeOutcome(outcome) };
    const evidence = { endpoint: t.name, url: t.url, probe: p.probe, ...outcomeEvidence(outcome) };
    const res = resource({ endpoint: t.name, probe: p.probe });
    if (cls === 'admitted') ctx.report({ messageId: 'tokenAccepted', data, resource: res, evidence, severity: 'critical' });
    else if (cls !== 'app') ctx.report({ messageId: 'tokenUnexpected', data, resource: res, evidence, severity: 'medium' });
  }
}

export default defineCheck({
  meta: {
    id: 'oidc-jwks',
    title: 'The OIDC key set is public-only and endpoints refuse invalid tokens',
    description:
      'Fetches the JWKS the services verify tokens with (OIDC_JWKS_URI, or oidc_jwks_uri in the runtime secret) over verified HTTPS: it must parse and hold only public asymmetric keys (no private members, no symmetric or none/HS algorithms), RSA of at least 2048 bits, unique kids. On endpoints opted in, tokens that are expired, foreign-signed, unsigned, or for another audience or issuer must get 401.',
    severity: 'critical',
    sources: ['endpoints'],
    schedule: '*/15 * * * *',
    checklist: ['strong-auth-enforced'],
    runbook: 'docs/runbooks/oidc-jwks.md',
    remediation:
      'Publish only public asymmetric keys (RS256/ES256, RSA ≥ 2048) with unique kids at the JWKS URI, served over HTTPS; remove any private or symmetric key and rotate it at the IdP; make the services verify exp, signature, audience (OIDC_AUDIENCE) and issuer (OIDC_ISSUER).',
  },
  messages,
  options,
  preload() {
    jose();
  },
  async run(ctx) {
    const ep = ctx.source('endpoints');
    const o = ctx.options;
    const all = ep.targets();
    for (const n of o.targets ?? []) if (!all.some((t) => t.name === n)) throw configError(`checks.oidc-jwks.options.targets: no endpoint named '${n}' in sources.endpoints.targets`);
    const targets = all.filter((t) => t.probes.includes('oidc') && (!o.targets || o.targets.includes(t.name)));
    const failures: AuditError[] = [];
    const keep = (e: unknown) => {
      if (!isAuditError(e) || e.code === ErrorCodes.CONFIG || ctx.signal.aborted) throw e;
      failures.push(e);
    };

    // Where the deployment names its key set: explicit, per endpoint, per service env, the runtime secret.
    const uris = new Map<string, string>();
    const add = (raw: string | undefined, service?: string) => {
      if (raw && raw.trim() !== '' && !uris.has(raw.trim())) uris.set(raw.trim(), service ?? '');
    };
    o.jwksUris.forEach((u) => add(u));
    targets.forEach((t) => add(t.oidc.jwksUri));
    const envUri = new Map<string, string>();
    if (ctx.sources.secrets) {
      try {
        for (const h of await ctx.sources.secrets.holders(o.envName)) {
          add(h.value.reveal(), h.service);
          if (!envUri.has(h.service)) envUri.set(h.service, h.value.reveal().trim());
        }
      } catch (e) {
        keep(e);
      }
    }
    let runtimeUri: string | undefined;
    const vault = ctx.sources.vault;
    if (vault) {
      try {
        const path = (o.runtimePath ?? vault.runtimePath ?? 'aegis/runtime').replace(/^\/+|\/+$/g, '');
        runtimeUri = (await vault.readKv(path))?.[o.runtimeField]?.reveal().trim() || undefined;
        add(runtimeUri);
      } catch (e) {
        keep(e);
      }
    }
    if (uris.size === 0 && failures.length === 0) {
      throw configError(
        `no JWKS URI to check: none of ${o.envName} (service env), ${o.runtimeField} (the Vault runtime secret), sources.endpoints.targets.<name>.oidc.jwks_uri or checks.oidc-jwks.options.jwksUris is set`,
      );
    }

    const sets = new Map<string, JudgedSet>();
    for (const raw of uris.keys()) {
      try {
        const doc = await ep.fetchJson(raw, ctx.signal);
        sets.set(raw, await judgeSet(ctx, doc.url, doc.body, doc.parseError));
      } catch (e) {
        keep(e);
      }
    }

    let signer: TokenSigner | undefined;
    if (targets.length > 0) signer = await ep.tokenSigner();
    for (const t of targets) {
      const raw = t.oidc.jwksUri ?? envUri.get(t.service) ?? runtimeUri ?? (uris.size === 1 ? [...uris.keys()][0] : undefined);
      try {
        await probeTarget(ctx, ep, t, raw ? sets.get(raw.trim()) : undefined, signer);
      } catch (e) {
        keep(e);
      }
    }
    ctx.measure('oidc_jwks_sets', sets.size, 'JSON Web Key Sets fetched and judged');
    ctx.measure('oidc_endpoints_probed', targets.length, 'Endpoints the token probes were sent to');
    if (failures.length > 0) throw new AuditError(failures[0].code, failures.map((f) => f.message).join('; '), { source: failures[0].source ?? 'endpoints', reason: failures[0].reason });
  },
});
