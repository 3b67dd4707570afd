/** The deployment artefacts say what they claim: the manifests' config validates, the image is non-root. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { registry } from '../../checks';

const ROOT = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

test('the sidecar ConfigMap holds a valid audit.yaml that listens beyond loopback', () => {
  const docs = parseAllDocuments(read('docs/deploy/kubernetes/sidecar-deployment.yaml')).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
  const cm = docs.find((d) => d.kind === 'ConfigMap');
  const loaded = parseConfig(cm?.data?.['audit.yaml'] ?? '', '/etc/aegis-audit/audit.yaml', { registry, env: { AUDIT_DATABASE_URL: 'postgres://aegis_audit@db/aegis' } });
  expect(loaded.config.server.listen).toBe('0.0.0.0:9464');
  expect(loaded.config.sources.postgres).toBeDefined();
});

test('the Dockerfile is multi-stage, runs production dependencies as a non-root user with a health check', () => {
  const df = read('Dockerfile');
  expect(df.match(/^FROM /gm)?.length).toBe(2);
  expect(df).toMatch(/npm ci --omit=dev/);
  expect(df).toMatch(/^USER node$/m);
  expect(df).toMatch(/^HEALTHCHECK .*\n\s+CMD .*AEGIS_AUDIT_HEALTH_URL/m);
  expect(df).toMatch(/AEGIS_AUDIT_HEALTH_URL=http:\/\/127\.0\.0\.1:9464\/healthz/);
  // A small young generation for the main thread keeps a million-row receipt-chain pass under 200 MiB (docs/performance.md).
  expect(df).toMatch(/^ENTRYPOINT \["node", "--max-semi-space-size=2", "bin\/aegis-audit.js"\]$/m);
});

test('the IAM policy grants only read actions', () => {
  const policy = JSON.parse(read('docs/deploy/iam-policy.json')) as { Statement: { Effect: string; Action: string[] }[] };
  const actions = policy.Statement.flatMap((s) => s.Action).sort();
  expect([...new Set(actions)]).toEqual([
    'kms:Decrypt', 'logs:DescribeLogGroups', 'logs:FilterLogEvents', 's3:GetObject', 's3:ListBucket', 'ssm:DescribeParameters',
    'ssm:GetCommandInvocation', 'ssm:GetParametersByPath', 'ssm:ListCommandInvocations', 'ssm:ListCommands',
  ]);
  expect(policy.Statement.every((s) => s.Effect === 'Allow')).toBe(true);
});
