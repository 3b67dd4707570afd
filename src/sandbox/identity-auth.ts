/**
 * How an Aegis service and the ingress in front of it decide a request — as pure functions, so
 * the sandbox's real servers and the checks' test fakes behave the same way.
 *
 * The backend follows Aegis' auth dependency: AUTH_MODE none|oidc|mtls (anything else: 500
 * "Auth misconfigured"); mtls reads the verified identity from MTLS_ID_HEADER and admits every
 * client when the enrolled list is empty; oidc picks the key by kid and allows only that key's
 * `alg` (RS256 by default), checking audience and issuer only when they are set. The ingress
 * follows nginx: a missing or untrusted client certificate is answered 400 after the handshake,
 * and only the verified CN is forwarded — unless seeded to do otherwise.
 */
import { decodeProtectedHeader, errors, importJWK, jwtVerify, type JWK } from 'jose';

/**
 * `required`: ssl_verify_client on, verified CN forwarded (the runbook's configuration).
 * `optional`: a client without a certificate is let through (with no identity).
 * `forward-header`: like optional, and without a verified certificate the client's own
 * identity header passes through unchanged.
 */
export type IngressMode = 'required' | 'optional' | 'forward-header';

export interface PresentedClient {
  present: boolean;
  verified: boolean;
  cn?: string;
}

export type IngressDecision = { status: number; body: string } | { identity: string | undefined };

export function ingressDecision(mode: IngressMode, client: PresentedClient, clientHeader: string | undefined): IngressDecision {
  if (client.present && !client.verified) return { status: 400, body: 'The SSL certificate error' };
  if (client.present) return { identity: client.cn };
  if (mode === 'required') return { status: 400, body: 'No required SSL certificate was sent' };
  return { identity: mode === 'forward-header' ? clientHeader : undefined };
}

export interface OidcBackend {
  /** The public keys the service verifies with (its view of the JWKS). */
  keys: readonly JWK[];
  audience?: string;
  issuer?: string;
  /** Seeded flaws. */
  acceptAlgNone?: boolean;
  acceptExpired?: boolean;
}

export interface BackendConfig {
  /** AUTH_MODE as the service reads it (lowercased). */
  mode: string;
  enrolled: readonly string[];
  oidc?: OidcBackend;
}

export interface BackendDecision {
  status: number;
  detail: string;
}

async function verifyBearer(oidc: OidcBackend, token: string): Promise<boolean> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return false;
  }
  if (typeof header.kid !== 'string') return false; // "missing kid in token header"
  const jwk = oidc.keys.find((k) => k.kid === header.kid);
  if (!jwk) return false; // "unable to find key for kid"
  if (header.alg === 'none') return oidc.acceptAlgNone === true;
  const alg = jwk.alg ?? 'RS256';
  try {
    const key = await importJWK(jwk, alg);
    await jwtVerify(token, key, { algorithms: [alg], ...(oidc.audience ? { audience: oidc.audience } : {}), ...(oidc.issuer ? { issuer: oidc.issuer } : {}) });
    return true;
  } catch (e) {
    return e instanceof errors.JWTExpired && oidc.acceptExpired === true;
  }
}

/** The Aegis service's answer, from the identity the ingress forwarded and the Authorization header. */
export async function backendDecision(cfg: BackendConfig, identity: string | undefined, authorization: string | undefined): Promise<BackendDecision> {
  switch (cfg.mode) {
    case 'none':
      return { status: 200, detail: 'ok' };
    case 'mtls': {
      if (identity === undefined) return { status: 401, detail: 'Client certificate identity header missing' };
      if (cfg.enrolled.length > 0 && !cfg.enrolled.includes(identity.trim())) return { status: 403, detail: 'Client not enrolled / authorized' };
      return { status: 200, detail: 'ok' };
    }
    case 'oidc': {
      if (!authorization) return { status: 401, detail: 'Missing Authorization header' };
      const parts = authorization.split(/\s+/);
      if (parts.length !== 2) return { status: 401, detail: 'Invalid Authorization header' };
      if (parts[0].toLowerCase() !== 'bearer') return { status: 401, detail: 'Authorization must be Bearer token' };
      if (!cfg.oidc) return { status: 500, detail: 'OIDC not configured' };
      return (await verifyBearer(cfg.oidc, parts[1])) ? { status: 200, detail: 'ok' } : { status: 401, detail: 'Invalid or expired token' };
    }
    default:
      return { status: 500, detail: 'Auth misconfigured' };
  }
}
