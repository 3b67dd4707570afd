/**
 * How long one round of identity probes takes per endpoint, over real TLS on loopback, against
 * the sandbox's identity side (mTLS ingress → AUTH_MODE=mtls backend, TLS ingress →
 * AUTH_MODE=oidc backend, OIDC issuer).
 *
 *   npm run build && node dist/bench/identity-probes.js [rounds=20]
 *
 * Prints, per check, the requests one round makes and the median / p95 / max wall time of a
 * round (a round = the check's whole run against one endpoint: certificate reads, every probe,
 * the JWKS fetch for oidc-jwks). The first round (key generation, TLS session setup) is
 * reported apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mtlsEnforced from '../checks/mtls-enforced';
import oidcJwks from '../checks/oidc-jwks';
import type { AnyCheck } from '../src/core/define-check';
import { runCheck } from '../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../src/core/secret';
import { silentLogger } from '../src/core/logger';
import { endpointsSchema } from '../src/config/schema';
import { TlsEndpointSource } from '../src/sources/endpoints';
import { MemoryStateStore } from '../test/fakes/state-store';
import { identityNames, startIdentitySandbox } from '../src/sandbox/identity';
import type { Secret } from '../src/core/secret';
import type { EndpointSource, ProbeRequest, Sources, VaultSource } from '../src/core/sources';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Counts the requests a check makes through the source. */
function counting(ep: EndpointSource): { ep: EndpointSource; count: () => number } {
  let n = 0;
  const wrapped: EndpointSource = {
    targets: () => ep.targets(),
    clientCertificates: () => ep.clientCertificates(),
    hasClient: (c) => ep.hasClient(c),
    serverCertificates: (t, s) => (n++, ep.serverCertificates(t, s)),
    probe: (t, r: ProbeRequest) => (n++, ep.probe(t, r)),
    fetchJson: (u, s) => (n++, ep.fetchJson(u, s)),
    tokenSigner: () => ep.tokenSigner(),
  };
  return { ep: wrapped, count: () => n };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got ${process.argv[2]}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-identity-'));
  const names = identityNames(1, 'bench', ['identity', 'gateway', 'api', 'audit', 'insight']);
  const side = await startIdentitySandbox({ names, deployment: 'bench', selected: new Set(), enrolled: [names.auditorCn], dir });
  try {
    const f = side.configFragment as Record<string, string>;
    const cfg = endpointsSchema.parse({
      ...Object.fromEntries(Object.entries(f).filter(([k]) => k.endsWith('_file')).map(([k, v]) => [k, join(dir, v)])),
      timeout: '5s',
      targets: { api: { url: side.urls.mtls, probes: ['mtls'] }, gateway: { url: side.urls.oidc, probes: ['oidc'], oidc: { audience: names.audience, issuer: names.issuer } } },
    });
    const vault: VaultSource = {
      kvMount: 'secret',
      runtimePath: 'aegis/runtime',
      health: async () => ({ initialized: true, sealed: false, standby: false }),
      readKv: async () => ({ oidc_jwks_uri: { reveal: () => side.jwksUrl, length: side.jwksUrl.length } as unknown as Secret }),
      lookupSelf: async () => {
        throw new Error('unused');
      },
      lookupAccessor: async () => {
        throw new Error('unused');
      },
      transitKey: async () => {
        throw new Error('unused');
      },
      transitVerify: async () => {
        throw new Error('unused');
      },
    };
    const cases: [string, AnyCheck, boolean][] = [
      ['mtls-enforced (endpoint api)', mtlsEnforced as unknown as AnyCheck, false],
      ['oidc-jwks (endpoint gateway + JWKS)', oidcJwks as unknown as AnyCheck, true],
    ];
    console.log(`identity probe rounds over TLS on 127.0.0.1, ${rounds} rounds each (after one warm-up round)`);
    for (const [label, check, needsVault] of cases) {
      const known = new KnownSecrets();
      const { ep, count } = counting(new TlsEndpointSource(cfg, known));
      const sources: Sources = { endpoints: ep, ...(needsVault ? { vault } : {}) };
      const env = { deployment: 'bench', services: ['api', 'gateway'], sources, state: new MemoryStateStore(), fingerprinter: new Fingerprinter(), knownSecrets: known, logger: silentLogger() };
      const once = async () => {
        const t0 = process.hrtime.bigint();
        const r = await runCheck({ check, options: check.options.parse({}), timeoutMs: 60_000 }, env);
        if (r.status !== 'pass') throw new Error(`${label}: ${r.status} ${r.error ?? ''} ${r.findings.map((x) => x.resource).join(' ')}`);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      };
      const first = await once();
      const before = count();
      const times: number[] = [];
      for (let i = 0; i < rounds; i++) times.push(await once());
      const perRound = (count() - before) / rounds;
      console.log(
        `${label.padEnd(38)} ${String(perRound).padStart(2)} requests/round  first ${first.toFixed(1)} ms  median ${pct(times, 0.5).toFixed(1)} ms  p95 ${pct(times, 0.95).toFixed(1)} ms  max ${Math.max(...times).toFixed(1)} ms`,
      );
    }
  } finally {
    await side.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
