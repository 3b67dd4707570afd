/** Shared reading of endpoint probes and certificates (mtls-enforced, oidc-jwks). */
import { X509Certificate } from 'node:crypto';
import type { ProbeOutcome } from '../../src/core/sources';
import { untrusted } from '../../src/core/untrusted';

/** A TLS refusal's detail: an OpenSSL/Node code or an alert name, never other text. */
const TLS_DETAIL = /^[A-Za-z0-9_ ]{1,80}$/;

/** How an answer reads: refused by the TLS layer or an ingress, refused by the application, admitted, or something else. */
export type AnswerClass = 'tls' | 'ingress' | 'app' | 'admitted' | 'other';

/**
 * nginx answers a missing or untrusted client certificate with 400 after a completed handshake
 * (495/496 are its internal codes for the same, seen when an error page is configured); an
 * Aegis service refuses a request without identity with 401, and an unenrolled one with 403.
 */
export function classify(o: ProbeOutcome): AnswerClass {
  if (o.kind === 'tls-refused') return 'tls';
  const s = o.status;
  if (s === 400 || s === 495 || s === 496) return 'ingress';
  if (s === 401 || s === 403) return 'app';
  if (s >= 200 && s < 400) return 'admitted';
  return 'other';
}

/** The outcome as a finding shows it: `HTTP 401`, or `a TLS refusal (…)`. */
export function describeOutcome(o: ProbeOutcome): string {
  return o.kind === 'tls-refused' ? `a TLS refusal (${untrusted.matching(o.detail, TLS_DETAIL)})` : `HTTP ${o.status}`;
}

export function outcomeEvidence(o: ProbeOutcome): Record<string, string | number> {
  return o.kind === 'tls-refused' ? { answer: 'tls-refused', detail: untrusted.matching(o.detail, TLS_DETAIL) } : { answer: 'http', status: o.status };
}

export interface CertFacts {
  subjectCn?: string;
  issuerCn?: string;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  serial: string;
  fingerprint: string;
}

function cnOf(name: string): string | undefined {
  // Node prints one RDN per line (`CN=foo\nO=bar`), with special characters escaped.
  for (const line of name.split('\n')) {
    const m = /^CN=(.*)$/.exec(line.trim());
    if (m) return m[1].replace(/^"|"$/g, '');
  }
  return undefined;
}

/** The facts the certificate rules need, parsed by Node's X509Certificate. */
export function certFacts(pem: string): CertFacts {
  const x = new X509Certificate(pem);
  return {
    subjectCn: cnOf(x.subject),
    issuerCn: cnOf(x.issuer),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    ca: x.ca,
    serial: x.serialNumber,
    fingerprint: x.fingerprint256,
  };
}
