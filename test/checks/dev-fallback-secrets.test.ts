import check from '../../checks/dev-fallback-secrets';
import { CheckTester } from '../helpers/check-tester';
import { FakeSecretStore, type FakeHolder } from '../fakes';
import { FakeVaultSource } from '../fakes/vault-source';

const strong: FakeHolder[] = [
  { service: 'identity', name: 'JWT_SECRET_KEY', value: 'Zt8rV2q0mXk5bP9wE1yH4sN7cL3fJ6aD' },
  { service: 'gateway', name: 'JWT_SECRET_KEY', value: 'Zt8rV2q0mXk5bP9wE1yH4sN7cL3fJ6aD' },
  { service: 'api', name: 'AEGIS_MODEL_SIGN_KEY', value: 'q7Hn2LmP0xRt5VbN8cZk3WdY6sFj1GhA' },
  { service: 'api', name: 'DATABASE_URL', value: 'Xb3nT9qLm2' }, // a URL password, as the env backend lists it
];
const store = (extra: FakeHolder[] = [], base = strong) => new FakeSecretStore({ holders: [...base, ...extra] });

CheckTester.run(check, {
  pass: [
    { name: 'every secret is strong', sources: () => ({ secrets: store() }) },
    {
      name: 'a generic dev password only counts for password-like names',
      sources: () => ({ secrets: store([{ service: 'api', name: 'AUTH_MODE_ADMIN', value: 'admin' }]) }),
    },
    {
      name: 'the built-in list can be turned off',
      options: { builtin: false },
      sources: () => ({ secrets: store([{ service: 'api', name: 'AEGIS_MODEL_SIGN_KEY', value: 'dev-model-sign-key-change-me' }], []) }),
      secrets: ['dev-model-sign-key-change-me'],
    },
    {
      name: 'Vault paths that do not exist are not findings',
      sources: () => ({ secrets: store(), vault: new FakeVaultSource({ kv: {} }) }),
    },
  ],
  fail: [
    {
      name: "Aegis's JWT and model-signing fallbacks are critical; the finding names the holder, never the value",
      sources: () =>
        ({
          secrets: store(
            [
              { service: 'gateway', name: 'JWT_SECRET_KEY', value: 'dev-secret-key-change-me', provider: 'ssm' },
              { service: 'api', name: 'AEGIS_MODEL_SIGN_KEY', value: 'dev-model-sign-key-change-me' },
            ],
            strong.slice(0, 1),
          ),
        }),
      secrets: ['dev-secret-key-change-me', 'dev-model-sign-key-change-me'],
      findings: [
        {
          messageId: 'fallback',
          resource: 'service=gateway,secret=JWT_SECRET_KEY,source=ssm',
          severity: 'critical',
          message: /^Service gateway's JWT_SECRET_KEY \(ssm:\/aegis\/test\/gateway\/JWT_SECRET_KEY\) is Aegis's hard-coded JWT secret fallback/,
          evidence: { provider: 'ssm', fallback: "Aegis's hard-coded JWT secret fallback" },
        },
        { messageId: 'fallback', resource: 'service=api,secret=AEGIS_MODEL_SIGN_KEY,source=env_file', severity: 'critical' },
      ],
    },
    {
      name: 'compose credentials as URL passwords are high',
      sources: () => ({ secrets: store([{ service: 'insight', name: 'DATABASE_URL', value: 'mlflowpass' }]) }),
      secrets: ['mlflowpass'],
      findings: [{ messageId: 'fallback', resource: 'service=insight,secret=DATABASE_URL,source=env_file', severity: 'high', message: /MLflow database password/ }],
    },
    {
      name: 'a configured fallback, and the Vault paths Aegis reads its JWT secret from',
      options: { fallbacks: [{ label: 'our staging secret', value: 'staging-only-Kp3x9' }] },
      sources: () => ({
        secrets: store([{ service: 'identity', name: 'INTERNAL_SECRET', value: 'staging-only-Kp3x9' }]),
        vault: new FakeVaultSource({ kv: { 'aegis/secrets/jwt': { SECRET_KEY: 'dev-secret-key-change-me' } } }),
      }),
      secrets: ['staging-only-Kp3x9', 'dev-secret-key-change-me'],
      findings: [
        { messageId: 'fallback', resource: 'service=identity,secret=INTERNAL_SECRET,source=env_file', message: /is our staging secret/ },
        { messageId: 'fallback', resource: 'service=api,secret=SECRET_KEY,source=vault', message: /\(vault:secret\/data\/aegis\/secrets\/jwt#SECRET_KEY\)/ },
      ],
    },
  ],
  error: [
    {
      name: 'the secret store is down',
      sources: () => ({ secrets: store().fail('holders') }),
      error: /secrets: holders: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
});
