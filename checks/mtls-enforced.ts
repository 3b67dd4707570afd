/**
 * mTLS is enforced at the ingress in front of every critical endpoint, proven from outside the
 * way an attacker would test it (*Runbook: Enforce Vault-backed secrets and OIDC/mTLS auth
 * end-to-end* §3 "Ingress / service mesh", §4 "Testing in staging", §6 short-lived certificates).
 * Aegis trusts whatever identity header reaches it (MTLS_ID_HEADER, default x-ssl-client-cn),
 * so the ingress is the only thing between a forged header and an admitted request.
 */
import { z } from 'zod';
import { defineCheck, type CheckContext } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { AuditError, ErrorCodes, configError, isAuditError } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { EndpointSource, EndpointTarget, ProbeClient, ProbeOutcome } from '../src/core/sources';
import { certFacts, classify, describeOutcome, outcomeEvidence, type CertFacts } from './lib/probes';
import { untrusted } from '../src/core/untrusted';

const DAY = 86_400_000;

const messages = {
  admitted: '{{endpoint}}: probe {{probe}} ({{what}}) was admitted with {{answer}}. {{why}}',
  pastIngress:
    '{{endpoint}}: probe {{probe}} ({{what}}) reached the application, which refused it with {{answer}}: the ingress did not refuse it itself, so the application alone decides (runbook §3: block traffic to the backend when client certificate verification fails).',
  unexpected: '{{endpoint}}: probe {{probe}} ({{what}}) got {{answer}}, not {{expected}}.',
  enrolledRefused:
    "{{endpoint}}: probe enrolled (the auditor's enrolled client certificate) was refused with {{answer}}: the ingress does not trust the client CA, or does not forward the verified identity. Until it is admitted, the other probes' refusals prove nothing.",
  serverUntrusted: '{{endpoint}}: the server certificate does not verify against the configured CA bundle ({{reason}}), so the endpoint was not probed.',
  certExpired: '{{cert}} expired on {{notAfter}}.',
  certExpiring: '{{cert}} expires on {{notAfter}}, in {{days}} day(s) (the warning threshold is {{threshold}}).',
  certLongLived: '{{cert}} is valid for {{days}} days ({{notBefore}} to {{notAfter}}), longer than the {{max}} allowed for {{kind}} certificates: issue short-lived certificates (runbook §6).',
  certDevSubject: '{{cert}} has the Aegis development {{field}} {{name}} (the "NOT for production" certificates of generate_certs.sh).',
} as const;
type MessageId = keyof typeof messages;

const options = z.object({
  /** Certificates expiring sooner than this are findings (high); expired ones are critical. */
  expiryWarning: duration().default(14 * DAY),
  /** Longest lifetime of a leaf certificate (server or client); the runbook wants short-lived certificates. */
  maxLeafLifetime: duration().default(90 * DAY),
  /** Longest lifetime of a CA certificate in a presented chain. */
  maxCaLifetime: duration().default(1825 * DAY),
  /** Subject / issuer common names of the development certificates Aegis ships. */
  devSubjects: z.array(z.string().min(1)).default(['Aegis-Local-CA', 'localhost', 'aegis-client']),
  /**
   * Count an application's 401/403 to a client without a verified certificate as enforcement.
   * Off by default: the runbook wants the ingress itself to block such traffic.
   */
  appRefusalIsEnough: z.boolean().default(false),
  /** The identity the forged header claims; default: the enrolled certificate's CN. */
  forgedIdentity: z.string().min(1).optional(),
  /** Probe only these targets (names under sources.endpoints.targets); default: every target with the mtls probe. */
  targets: z.array(z.string().min(1)).optional(),
});

type Ctx = CheckContext<MessageId, z.output<typeof options>>;

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The certificate rules: expiry, lifetime against the short-lived policy, development subjects. */
function judgeCertificate(ctx: Ctx, pem: string, label: string, res: Record<string, string>, evidenceBase: Record<string, string>): void {
  let f: CertFacts;
  try {
    f = certFacts(pem);
  } catch {
    throw new AuditError(ErrorCodes.BAD_DATA, `endpoints: ${evidenceBase.where ?? label}: not a parsable X.509 certificate`, { source: 'endpoints', reason: 'bad_data' });
  }
  const o = ctx.options;
  const now = ctx.now().getTime();
  const evidence = {
    ...evidenceBase,
    subjectCn: f.subjectCn === undefined ? null : untrusted.text(f.subjectCn),
    issuerCn: f.issuerCn === undefined ? null : untrusted.text(f.issuerCn),
    notBefore: f.notBefore.toISOString(),
    notAfter: f.notAfter.toISOString(),
    ca: f.ca,
    sha256: f.fingerprint,
  };
  const left = f.notAfter.getTime() - now;
  if (left <= 0) {
    ctx.report({ messageId: 'certExpired', data: { cert: label, notAfter: day(f.notAfter) }, resource: resource({ ...res, rule: 'expiry' }), evidence, severity: 'critical' });
  } else if (left < o.expiryWarning) {
    ctx.report({
      messageId: 'certExpiring',
      data: { cert: label, notAfter: day(f.notAfter), days: Math.round(left / DAY), threshold: formatDuration(o.expiryWarning) },
      resource: resource({ ...res, rule: 'expiry' }),
      evidence,
      severity: 'high',
    });
  }
  const lifetime = f.notAfter.getTime() - f.notBefore.getTime();
  const max = f.ca ? o.maxCaLifetime : o.maxLeafLifetime;
  if (lifetime > max) {
    ctx.report({
      messageId: 'certLongLived',
      data: { cert: label, days: Math.round(lifetime / DAY), notBefore: day(f.notBefore), notAfter: day(f.notAfter), max: formatDuration(max), kind: f.ca ? 'CA' : 'leaf' },
      resource: resource({ ...res, rule: 'lifetime' }),
      evidence,
      severity: 'medium',
    });
  }
  const dev = new Set(o.devSubjects);
  const hit = f.subjectCn && dev.has(f.subjectCn) ? { field: 'subject', name: f.subjectCn } : f.issuerCn && dev.has(f.issuerCn) ? { field: 'issuer', name: f.issuerCn } : undefined;
  if (hit) {
    ctx.report({ messageId: 'certDevSubject', data: { cert: label, field: hit.field, name: `CN=${hit.name}` }, resource: resource({ ...res, rule: 'dev-subject' }), evidence, severity: 'high' });
  }
}

interface ProbeSpec {
  probe: string;
  client: ProbeClient;
  what: string;
  headers?: Record<string, string>;
}

async function probeTarget(ctx: Ctx, ep: EndpointSource, t: EndpointTarget, forged: string): Promise<number> {
  const endpoint = `${t.name} (${t.url})`;
  const server = await ep.serverCertificates(t.name, ctx.signal);
  server.chain.forEach((pem, i) => {
    const which = i === 0 ? 'server' : `chain-${i}`;
    const label = i === 0 ? `The server certificate of ${endpoint}` : `Certificate ${i} of the chain ${endpoint} presents`;
    judgeCertificate(ctx, pem, label, { endpoint: t.name, certificate: which }, { endpoint: t.name, url: t.url, certificate: which });
  });
  if (!server.trusted) {
    ctx.report({
      messageId: 'serverUntrusted',
      data: { endpoint, reason: server.reason ?? 'unverified' },
      resource: resource({ endpoint: t.name, probe: 'server-certificate' }),
      evidence: { endpoint: t.name, url: t.url, reason: server.reason ?? 'unverified' },
      severity: 'high',
    });
    return 0;
  }

  const specs: ProbeSpec[] = [
    { probe: 'no-cert', client: 'none', what: 'a request without a client certificate' },
    { probe: 'untrusted-ca', client: 'untrusted', what: 'a client certificate from a CA the endpoint must not trust, with the enrolled subject' },
    { probe: 'forged-header', client: 'none', what: `a request without a client certificate carrying a forged ${t.identityHeader} header`, headers: { [t.identityHeader]: forged } },
  ];
  if (ep.hasClient('enrolled')) specs.push({ probe: 'enrolled', client: 'enrolled', what: "the auditor's enrolled client certificate" });
  if (ep.hasClient('unenrolled')) specs.push({ probe: 'unenrolled', client: 'unenrolled', what: 'a valid client certificate that is not enrolled' });

  for (const s of specs) {
    const outcome: ProbeOutcome = await ep.probe(t.name, { client: s.client, headers: s.headers, signal: ctx.signal });
    const cls = classify(outcome);
    const answer = describeOutcome(outcome);
    const res = resource({ endpoint: t.name, probe: s.probe });
    const evidence = { endpoint: t.name, url: t.url, probe: s.probe, ...outcomeEvidence(outcome) };
    const data = { endpoint, probe: s.probe, what: s.what, answer };
    switch (s.probe) {
      case 'no-cert':
      case 'untrusted-ca':
        if (cls === 'admitted') {
          const why = s.probe === 'no-cert' ? 'Anyone who can reach it is served without proving an identity.' : 'Anyone can mint such a certificate for any enrolled name.';
          ctx.report({ messageId: 'admitted', data: { ...data, why }, resource: res, evidence, severity: 'critical' });
        } else if (cls === 'app' && !ctx.options.appRefusalIsEnough) {
          ctx.report({ messageId: 'pastIngress', data, resource: res, evidence, severity: 'high' });
        } else if (cls === 'other') {
          ctx.report({ messageId: 'unexpected', data: { ...data, expected: 'a TLS refusal or HTTP 400' }, resource: res, evidence, severity: 'medium' });
        }
        break;
      case 'forged-header':
        if (cls === 'admitted') {
          const why = 'The identity header reaches the application unverified: anyone can claim any enrolled client.';
          ctx.report({ messageId: 'admitted', data: { ...data, why }, resource: res, evidence, severity: 'critical' });
        }
        break;
      case 'enrolled':
        if (cls === 'tls' || cls === 'ingress' || cls === 'app') ctx.report({ messageId: 'enrolledRefused', data: { endpoint, answer }, resource: res, evidence, severity: 'high' });
        break;
      case 'unenrolled':
        if (cls === 'admitted') {
          const why = 'The enrolled list is empty (Aegis then admits every client) or not enforced.';
          ctx.report({ messageId: 'admitted', data: { ...data, why }, resource: res, evidence, severity: 'critical' });
        } else if (!(cls === 'tls' || cls === 'ingress' || (outcome.kind === 'response' && outcome.status === 403))) {
          ctx.report({ messageId: 'unexpected', data: { ...data, expected: 'HTTP 403' }, resource: res, evidence, severity: 'medium' });
        }
        break;
    }
  }
  return specs.length;
}

export default defineCheck({
  meta: {
    id: 'mtls-enforced',
    title: 'Critical endpoints refuse clients without a verified, enrolled certificate',
    description:
      'Probes each endpoint configured for mTLS over real TLS: no client certificate, a certificate from an untrusted CA and a forged identity header must be refused; the enrolled certificate answered; a valid unenrolled one refused with 403. Server and client certificates must be short-lived, not near expiry, and not the Aegis development ones.',
    severity: 'critical',
    sources: ['endpoints'],
    schedule: '*/15 * * * *',
    checklist: ['strong-auth-enforced'],
    runbook: 'docs/runbooks/mtls-enforced.md',
    remediation:
      'Make the ingress require and verify client certificates against the client CA (nginx: ssl_verify_client on; ssl_client_certificate), forward only the verified CN (proxy_set_header x-ssl-client-cn from $ssl_client_verify = SUCCESS), keep the enrolled list non-empty, and issue short-lived certificates from Vault PKI.',
  },
  messages,
  options,
  async run(ctx) {
    const ep = ctx.source('endpoints');
    const wanted = ctx.options.targets;
    const all = ep.targets();
    for (const n of wanted ?? []) if (!all.some((t) => t.name === n)) throw configError(`checks.mtls-enforced.options.targets: no endpoint named '${n}' in sources.endpoints.targets`);
    const targets = all.filter((t) => t.probes.includes('mtls') && (!wanted || wanted.includes(t.name)));
    if (targets.length === 0) {
      throw configError("no endpoint to probe: no target under sources.endpoints.targets lists the 'mtls' probe (disable the check if no endpoint uses mTLS)");
    }
    const clients = await ep.clientCertificates();
    const enrolled = clients.find((c) => c.role === 'enrolled');
    if (enrolled) {
      judgeCertificate(ctx, enrolled.pem, `The auditor's enrolled client certificate (${enrolled.origin})`, { certificate: 'client' }, { certificate: 'client', where: enrolled.origin });
    }
    const forged = ctx.options.forgedIdentity ?? (enrolled ? certFacts(enrolled.pem).subjectCn : undefined) ?? 'aegis-client';

    // One endpoint that cannot be probed must not hide what the others show: probe them all, then fail loudly.
    const failures: AuditError[] = [];
    let probes = 0;
    for (const t of targets) {
      try {
        probes += await probeTarget(ctx, ep, t, forged);
      } catch (e) {
        if (!isAuditError(e) || e.code === ErrorCodes.CONFIG || ctx.signal.aborted) throw e;
        failures.push(e);
      }
    }
    ctx.measure('mtls_endpoints_probed', targets.length - failures.length, 'Endpoints the mTLS probes reached');
    ctx.measure('mtls_probes', probes, 'mTLS probe requests made');
    if (failures.length > 0) {
      throw new AuditError(failures[0].code, failures.map((f) => f.message).join('; '), { source: 'endpoints', reason: failures[0].reason });
    }
  },
});
