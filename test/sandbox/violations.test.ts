import { buildPlan, HOSTILE, type PlanOptions } from '../../src/sandbox/plan';
import { cloudNames } from '../../src/sandbox/cloud';
import { DEFAULT_TABLES } from '../../src/sandbox/schema';
import { listViolations, resolveViolations, UnknownViolationError, type ViolationId } from '../../src/sandbox/violations';

const base: Omit<PlanOptions, 'violations'> = {
  seed: 5,
  rows: 1000,
  deployment: 'sandbox',
  services: ['identity', 'gateway', 'api', 'audit', 'insight'],
  signingService: 'audit',
  schema: 'public',
  tables: { ...DEFAULT_TABLES },
  now: new Date('2026-11-22T10:00:00.000Z'),
};
const manifestOf = (violations: ViolationId[]) => buildPlan({ ...base, violations }).manifest();
const resources = (violations: ViolationId[]) => manifestOf(violations).map((e) => `${e.check} ${e.resource}`);

describe('selecting violations', () => {
  test('none selects nothing; all selects every violation except those that would hide another', () => {
    expect(resolveViolations('none')).toEqual([]);
    const all = resolveViolations('all');
    const hiding = ['historical-keys-empty', 'repo-baseline-missing'];
    for (const h of hiding) expect(all).not.toContain(h);
    expect(all).toEqual(listViolations().filter((v) => !hiding.includes(v.id)).map((v) => v.id));
  });

  test('a check id selects all of that check’s violations, in catalog order', () => {
    expect(resolveViolations(['receipt-chain'])).toEqual(['bad-signature', 'tampered-payload', 'broken-link', 'root-mismatch']);
    expect(resolveViolations(['api-key-old', 'historical-keys'])).toEqual(['historical-keys-empty', 'historical-key-orphaned', 'api-key-old']);
  });

  test('an unknown id fails with a message naming the known ones', () => {
    expect(() => resolveViolations(['bad-signature', 'nope'])).toThrow(UnknownViolationError);
    expect(() => resolveViolations(['nope'])).toThrow(/unknown violation "nope".*known violations: .*bad-signature.*or a check id: .*receipt-chain/);
  });

  test('every violation declares at least one finding when seeded alone, with check ids as in docs/findings.md', () => {
    for (const v of listViolations()) {
      const entries = manifestOf([v.id]);
      expect(entries.length).toBeGreaterThan(0);
      expect(entries.some((e) => e.check === v.check)).toBe(true);
    }
    expect(manifestOf([])).toEqual([]);
  });
});

describe('cloud violations', () => {
  test('are ordinary catalog entries: listed, selected by id or check id, in all', () => {
    const cloud = listViolations().filter((v) => v.cloud).map((v) => v.id);
    expect(cloud).toEqual([
      'ssm-literal-secret',
      'ssm-insecure-parameter',
      'ssm-secret-in-output',
      'runtime-secret-missing',
      'vault-root-token',
      'vault-token-no-expiry',
      'model-artifact-unsigned',
      'model-artifact-error-body',
      'model-artifact-wrong-key',
      // the identity side starts with the cloud side
      'auth-mode-none',
      'enrolled-list-empty',
      'oidc-unbound',
      'ingress-accepts-no-cert',
      'ingress-forwards-forged-header',
      'jwks-private-key',
      'jwks-hs-key',
      'oidc-accepts-alg-none',
      'oidc-accepts-expired',
      'cert-expiring',
      'cert-long-lived',
    ]);
    expect(resolveViolations(['vault-token-hygiene'])).toEqual(['vault-root-token', 'vault-token-no-expiry']);
    expect(resolveViolations(['ssm-persisted-secrets', 'api-key-old'])).toEqual(['api-key-old', 'ssm-literal-secret', 'ssm-insecure-parameter', 'ssm-secret-in-output']);
    expect(resolveViolations('all')).toEqual(expect.arrayContaining(cloud));
  });

  test('without the cloud side, all leaves them out and naming one (or a cloud-only check) fails', () => {
    const all = resolveViolations('all', { cloud: false });
    expect(all.some((id) => listViolations().find((v) => v.id === id)?.cloud)).toBe(false);
    expect(all).toContain('auth-failure-burst'); // logged to files then
    expect(resolveViolations(['auth-failure-spike'], { cloud: false })).toEqual(['auth-failure-burst']);
    expect(() => resolveViolations(['runtime-secret-missing'], { cloud: false })).toThrow(/"runtime-secret-missing" needs the sandbox's cloud side/);
    expect(() => resolveViolations(['api-key-old', 'vault-token-hygiene'], { cloud: false })).toThrow(/"vault-token-hygiene" needs/);
  });

  test('name what cloud.ts seeds: command ids, parameter, instance, tokens and the runtime field', () => {
    const names = cloudNames(base.seed, base.deployment, base.services);
    expect(resources(['ssm-literal-secret', 'ssm-insecure-parameter', 'ssm-secret-in-output', 'runtime-secret-missing', 'vault-root-token', 'vault-token-no-expiry'])).toEqual([
      // without the field, the enrolled list is empty: mtls services admit everyone
      'auth-mode path=secret/data/aegis/runtime,field=clients/allowed',
      'mtls-enforced endpoint=api,probe=unenrolled',
      'runtime-secrets-present path=secret/data/aegis/runtime,field=clients/allowed',
      `ssm-persisted-secrets command=${names.literalCommand},parameter=INTERNAL_SECRET`,
      `ssm-persisted-secrets command=${names.outputCommand},instance=i-0a1b2c3d4e5f60002`,
      'ssm-persisted-secrets parameter=/aegis/sandbox/insight/GROQ_API_KEY',
      'vault-token-hygiene token=api',
      'vault-token-hygiene token=insight',
    ]);
    expect(names.literalCommand).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('with hostile strings the resources quote them as resource() does', () => {
    const p = buildPlan({ ...base, hostile: true, violations: ['key-source-file', 'api-key-old', 'ssm-literal-secret', 'auth-failure-burst'] });
    const r = p.manifest().map((e) => e.resource);
    expect(r).toContain(`api_key=${JSON.stringify(HOSTILE.apiKey)}`);
    expect(r).toContain(`instance=${JSON.stringify(`audit-2${HOSTILE.instance}`)},key=receipt`);
    expect(r).toContain(`command=${p.cloudNames.literalCommand},parameter=${JSON.stringify(HOSTILE.parameter)}`);
    expect(p.hostileMarkers).toEqual([HOSTILE.instance, HOSTILE.client, HOSTILE.parameter, HOSTILE.apiKey]);
    expect(buildPlan({ ...base, violations: ['api-key-old'] }).hostileMarkers).toEqual([]);
  });
});

describe('manifest interactions', () => {
  const plan = buildPlan({ ...base, violations: [] });
  const [k0, k1, k2] = plan.receiptKeys.map((k) => k.fingerprint);

  test('an orphaned fingerprint is also an unknown key for receipt-chain', () => {
    expect(resources(['historical-key-orphaned'])).toEqual([`historical-keys fingerprint=${k1}`, `receipt-chain fingerprint=${k1}`]);
  });

  test('an empty table subsumes the orphan and makes every old key unknown', () => {
    const both = resources(['historical-keys-empty', 'historical-key-orphaned']);
    expect(both).toEqual(['historical-keys table=transparency_historical_keys', `receipt-chain fingerprint=${k0}`, `receipt-chain fingerprint=${k1}`]);
  });

  test('a key that was not deployed changes no chain finding, unless the table holding the deployed key is emptied', () => {
    expect(resources(['receipt-key-not-deployed', 'bad-signature'])).toEqual([
      // The undeployed key was written to the PEM fallback path too, where no key should be while keys load from env.
      `pem-files-at-rest path=${plan.manifestContext.pemDir}/receipt-signing.pem`,
      `receipt-chain row=${plan.manifestContext.rows.badSignature.id}`,
      'signing-key-fingerprint key=receipt,source=env_file',
      'signing-key-fingerprint key=receipt,source=pem_file',
    ]);
    const r = resources(['receipt-key-not-deployed', 'historical-keys-empty', 'bad-signature']);
    // The bad signature is under k2, whose only public copy was the promoted entry: it can't be checked.
    expect(r).toContain(`receipt-chain fingerprint=${k2}`);
    expect(r.filter((x) => x.startsWith('receipt-chain row='))).toEqual([]);
  });

  test('drift hides the overlap finding (the check reports drift alone)', () => {
    expect(resources(['internal-secret-overlap-too-long'])).toEqual(['internal-secret-drift service=gateway,secret=INTERNAL_SECRET_PREVIOUS']);
    expect(resources(['internal-secret-overlap-too-long', 'internal-secret-differs'])).toEqual(['internal-secret-drift secret=INTERNAL_SECRET']);
  });

  test('a custom historical keys table name is the resource of emptyAfterRotation', () => {
    const p = buildPlan({ ...base, tables: { ...DEFAULT_TABLES, historical_keys: 'hist_keys' }, violations: ['historical-keys-empty'] });
    expect(p.manifest()[0]).toEqual({ check: 'historical-keys', resource: 'table=hist_keys' });
  });

  test('too few services or rows fail with a clear error', () => {
    expect(() => buildPlan({ ...base, services: ['audit', 'gateway'], violations: ['internal-secret-missing'] })).toThrow(/internal-secret-missing needs more services/);
    expect(() => buildPlan({ ...base, services: ['gateway'], violations: [] })).toThrow(/"audit" is not among the services/);
    expect(() => buildPlan({ ...base, rows: 10, violations: [] })).toThrow(/at least 40/);
  });
});

describe('deploy tree and model artifacts', () => {
  test('each static-vault-token violation names the file and line the tree sets the token on', () => {
    const p = buildPlan({ ...base, violations: ['vault-token-literal', 'vault-token-secret-ref', 'vault-token-docker-env', 'vault-token-ci-secret'] });
    const entries = p.manifest().filter((e) => e.check === 'static-vault-token');
    expect(entries.map((e) => e.resource)).toEqual([
      'file=deploy:.github/workflows/scheduled-rotate-keys.yml,line=10',
      'file=deploy:docker/api.Dockerfile,line=6',
      'file=deploy:k8s/insight.yaml,line=43',
      'file=deploy:k8s/vault/serviceaccount-and-deployment-example.yaml,line=26',
    ]);
    for (const e of entries) {
      const [, path, line] = /^file=deploy:(.*),line=(\d+)$/.exec(e.resource) as RegExpExecArray;
      expect(p.deployTree.files[path].split('\n')[Number(line) - 1]).toMatch(/VAULT_TOKEN|secretKeyRef|value: "hvs\./);
    }
    // Without them the same files set no token.
    const clean = buildPlan({ ...base, violations: [] }).deployTree;
    expect(clean.secrets).toEqual([]);
    expect(Object.values(clean.files).join('\n')).not.toMatch(/secrets\.VAULT_TOKEN|hvs\./);
  });

  test('the model-artifact violations name three different artifacts', () => {
    const p = buildPlan({ ...base, violations: ['model-artifact-unsigned', 'model-artifact-error-body', 'model-artifact-wrong-key'] });
    expect(p.manifest().map((e) => `${e.check} ${e.resource}`)).toEqual([
      'model-artifact-signature artifact=dir:aegis-safety/2026-11/model.onnx',
      'model-artifact-signature artifact=dir:bert-base/3/model.tar.gz',
      'model-artifact-signature artifact=dir:whisper-small/7/model.safetensors',
    ]);
  });
});

describe('identity violations', () => {
  const plan = buildPlan({ ...base, violations: [] });
  const jwks = plan.identity.jwksUrl;

  test('name the endpoints, the JWKS and its kids as the checks build them', () => {
    expect(resources(['auth-mode-none', 'oidc-unbound', 'ingress-accepts-no-cert', 'jwks-private-key', 'jwks-hs-key', 'cert-expiring', 'cert-long-lived'])).toEqual([
      'auth-mode service=gateway,setting=OIDC_AUDIENCE',
      'auth-mode service=gateway,setting=OIDC_ISSUER',
      'auth-mode service=insight',
      'mtls-enforced certificate=client,rule=lifetime',
      'mtls-enforced endpoint=api,certificate=server,rule=expiry',
      'mtls-enforced endpoint=api,probe=no-cert',
      `oidc-jwks endpoint=gateway,probe=other-audience`,
      `oidc-jwks endpoint=gateway,probe=other-issuer`,
      `oidc-jwks jwks=${jwks},kid=${plan.identity.idpKid},rule=private`,
      `oidc-jwks jwks=${jwks},kid=legacy-hs256,rule=symmetric`,
    ]);
  });

  test('an empty enrolled list and a missing one agree; the forged header implies the no-cert finding', () => {
    expect(resources(['enrolled-list-empty'])).toEqual(['auth-mode path=secret/data/aegis/runtime,field=clients/allowed', 'mtls-enforced endpoint=api,probe=unenrolled']);
    expect(resources(['ingress-forwards-forged-header', 'ingress-accepts-no-cert'])).toEqual(['mtls-enforced endpoint=api,probe=forged-header', 'mtls-enforced endpoint=api,probe=no-cert']);
  });

  test('the env files carry each service’s auth settings; the violations change exactly theirs', () => {
    expect(plan.authEnv.gateway).toEqual({ AUTH_MODE: 'oidc', OIDC_AUDIENCE: plan.identity.audience, OIDC_ISSUER: plan.identity.issuer });
    expect(plan.authEnv.api).toEqual({ AUTH_MODE: 'mtls', MTLS_ID_HEADER: 'x-ssl-client-cn' });
    const seeded = buildPlan({ ...base, violations: ['auth-mode-none', 'oidc-unbound'] });
    expect(seeded.authEnv.insight).toEqual({ AUTH_MODE: 'none' });
    expect(seeded.authEnv.gateway).toEqual({ AUTH_MODE: 'oidc' });
    expect(plan.enrolled).toContain(plan.identity.auditorCn);
    expect(buildPlan({ ...base, violations: ['enrolled-list-empty'] }).enrolledInVault).toBe('[]');
    expect(buildPlan({ ...base, violations: ['runtime-secret-missing'] }).enrolledInVault).toBeUndefined();
  });

  test('with hostile strings the symmetric key’s kid carries markup, quoted as resource() quotes it', () => {
    const p = buildPlan({ ...base, hostile: true, violations: ['jwks-hs-key'] });
    expect(p.manifest().map((e) => e.resource)).toEqual([`jwks=${jwks},kid=${JSON.stringify(HOSTILE.kid)},rule=symmetric`]);
    expect(p.hostileMarkers).toEqual([HOSTILE.kid]);
  });
});
