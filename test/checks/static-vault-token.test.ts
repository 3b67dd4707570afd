import check, { yamlTooDeep } from '../../checks/static-vault-token';
import { CheckTester } from '../helpers/check-tester';
import { FakeDeploySource } from '../fakes/deploy-source';
import { badData } from '../../src/core/errors';

const TOKEN = 'hvs.CAESIJ6canaryTokenValue0123456789abcdef';
const deploy = (files: ConstructorParameters<typeof FakeDeploySource>[0], skipped?: ConstructorParameters<typeof FakeDeploySource>[1]) => () => ({
  deploy: new FakeDeploySource(files, skipped),
});

/** A pod spec the way Aegis's Vault Agent example should look: the token comes from the injector. */
const AGENT_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: aegis-k8s-role
spec:
  template:
    spec:
      serviceAccountName: gateway
      containers:
        - name: gateway
          image: ghcr.io/aegis/gateway:1.4.2
          env:
            - name: VAULT_ADDR
              value: https://vault.aegis.svc:8200
            - name: VAULT_TOKEN_FILE
              value: /vault/secrets/token
`;

const OIDC_WORKFLOW = `name: sign
on: [push]
permissions: { id-token: write, contents: read }
jobs:
  sign:
    runs-on: ubuntu-latest
    steps:
      - uses: hashicorp/vault-action@v2
        id: vault
        with:
          url: \${{ secrets.VAULT_ADDR }}
          method: jwt
          role: aegis-sign-role
      - name: sign
        env:
          VAULT_TOKEN: \${{ steps.vault.outputs.vault_token }}
        run: ./scripts/package_and_sign_vault.sh
`;

const CLEAN_DOCKERFILE = `# syntax=docker/dockerfile:1
FROM python:3.12-slim
ENV VAULT_ADDR=https://vault:8200 \\
    PYTHONUNBUFFERED=1
RUN --mount=type=secret,id=vault_token \\
    VAULT_TOKEN=$(cat /run/secrets/vault_token) python -m aegis.fetch
`;

CheckTester.run(check, {
  pass: [
    {
      name: 'Vault Agent injection, an OIDC workflow, a BuildKit secret mount and a compose pass-through',
      sources: deploy({
        'repo:k8s/gateway.yaml': AGENT_DEPLOYMENT,
        'repo:.github/workflows/sign.yml': OIDC_WORKFLOW,
        'repo:Dockerfile': CLEAN_DOCKERFILE,
        'repo:docker-compose.yml': 'services:\n  api:\n    environment:\n      - VAULT_TOKEN\n      - VAULT_ADDR=http://vault:8200\n  worker:\n    environment:\n      VAULT_TOKEN: ${VAULT_TOKEN}\n      OTHER:\n',
      }),
      verify: (r) => expect(r.measurements?.find((m) => m.name === 'deploy_files_scanned')?.value).toBe(4),
    },
    {
      name: 'a value that only refers to something resolved at run time sets nothing',
      sources: deploy({
        'repo:k8s/a.yaml': 'kind: Pod\nspec:\n  containers:\n    - name: a\n      env:\n        - name: VAULT_TOKEN\n          value: $(AGENT_TOKEN)\n        - name: VAULT_TOKEN\n          valueFrom: {fieldRef: {fieldPath: metadata.name}}\n',
        'repo:.gitlab-ci.yml': 'variables:\n  VAULT_TOKEN: $CI_JOB_JWT_VAULT\n',
        'repo:docker-compose.override.yml': 'services:\n  a:\n    environment:\n      VAULT_TOKEN: ${VAULT_TOKEN:-}\n',
        'repo:Dockerfile.dev': 'FROM alpine\nENV VAULT_TOKEN=\n',
      }),
    },
    {
      name: 'the name VAULT_TOKEN as a plain word, and aliases, are not settings',
      sources: deploy({
        'repo:docs.yaml': 'title: never set VAULT_TOKEN in a manifest\nsteps:\n  - name: VAULT_TOKEN\n    run: echo checking\nanchors:\n  base: &b {A: 1}\n  use: *b\n',
      }),
    },
    {
      name: 'links the walk did not follow are notes',
      sources: deploy({ 'repo:ok.yaml': 'a: 1\n' }, [{ tree: 'repo', path: 'k8s/loop', reason: 'directory already walked under another name (a symlink loop or second link): not walked again' }]),
      notes: [{ messageId: 'skipped', resource: 'file=repo:k8s/loop', message: /^repo:k8s\/loop was not followed: directory already walked/ }],
    },
    {
      name: 'other names can be configured',
      options: { names: ['AEGIS_VAULT_TOKEN'] },
      sources: deploy({ 'repo:a.yaml': `env:\n  VAULT_TOKEN: ${TOKEN}\n` }),
      secrets: [TOKEN],
    },
  ],
  fail: [
    {
      name: 'Kubernetes: a literal value, a secretKeyRef, a configMapKeyRef and a Secret holding the token (multi-document)',
      sources: deploy({
        'repo:k8s/vault.yaml': `apiVersion: v1
kind: Secret
metadata: {name: vault-token-secret, namespace: aegis}
type: Opaque
stringData:
  VAULT_TOKEN: ${TOKEN}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      initContainers:
        - name: fetch
          env:
            - {name: VAULT_TOKEN, valueFrom: {configMapKeyRef: {name: vault-cfg, key: token}}}
      containers:
        - name: api
          env:
            - name: VAULT_TOKEN
              valueFrom:
                secretKeyRef:
                  name: vault-token-secret
        - name: sidecar
          env:
            - name: VAULT_TOKEN
              value: "${TOKEN}"
`,
      }),
      secrets: [TOKEN],
      findings: [
        { messageId: 'secretData', resource: 'file=repo:k8s/vault.yaml,line=6', severity: 'high', message: /Kubernetes Secret vault-token-secret holds a VAULT_TOKEN key/, evidence: { tree: 'repo', file: 'k8s/vault.yaml', line: 6, where: 'stringData.VAULT_TOKEN' } },
        { messageId: 'configMapRef', resource: 'file=repo:k8s/vault.yaml,line=17', severity: 'high', message: /from ConfigMap vault-cfg/ },
        { messageId: 'secretRef', resource: 'file=repo:k8s/vault.yaml,line=23', severity: 'high', message: /^repo:k8s\/vault\.yaml line 23 sets VAULT_TOKEN from Kubernetes Secret vault-token-secret \(secretKeyRef\)/ },
        {
          messageId: 'literal',
          resource: 'file=repo:k8s/vault.yaml,line=28',
          severity: 'critical',
          message: /line 28 sets VAULT_TOKEN to a literal value \(spec\.template\.spec\.containers\[1\]\.env\[0\]\.value\)/,
        },
      ],
    },
    {
      name: 'compose: the map form inside an anchor, and the list form',
      sources: deploy({
        'ops:compose/docker-compose.yml': `x-vault: &vault
  environment:
    VAULT_TOKEN: ${TOKEN}
services:
  api: { <<: *vault, image: aegis/api }
  worker:
    environment:
      - LOG_LEVEL=info
      - VAULT_TOKEN=${TOKEN}
`,
      }),
      secrets: [TOKEN],
      findings: [
        { messageId: 'literal', resource: 'file=ops:compose/docker-compose.yml,line=3', message: /\(x-vault\.environment\.VAULT_TOKEN\)/ },
        { messageId: 'literal', resource: 'file=ops:compose/docker-compose.yml,line=9', message: /\(services\.worker\.environment\[1\]\)/ },
      ],
    },
    {
      name: "CI: the repository secret as a job's env, an action input and in a script (bracket form)",
      sources: deploy({
        'repo:.github/workflows/scheduled-rotate-keys.yml': `on:
  schedule: [{cron: "0 3 */30 * *"}]
jobs:
  rotate:
    runs-on: ubuntu-latest
    env:
      VAULT_TOKEN: \${{ secrets.VAULT_TOKEN }}
    steps:
      - uses: hashicorp/vault-action@v2
        with:
          method: token
          token: \${{ secrets.vault_token }}
      - run: |
          echo "Show token (debug only, remove in prod)"
          curl -H "X-Vault-Token: \${{ secrets['VAULT_TOKEN'] }}" "$VAULT_ADDR/v1/sys/health"
`,
        'repo:.gitlab-ci.yml': 'variables:\n  VAULT_TOKEN:\n    value: s.gitlabLiteral0123456789\n    description: vault\n',
      }),
      secrets: ['s.gitlabLiteral0123456789'],
      findings: [
        { messageId: 'ciSecret', resource: 'file=repo:.github/workflows/scheduled-rotate-keys.yml,line=7', message: /long-lived CI secret secrets\.VAULT_TOKEN \(jobs\.rotate\.env\.VAULT_TOKEN\)/ },
        { messageId: 'ciSecret', resource: 'file=repo:.github/workflows/scheduled-rotate-keys.yml,line=12', message: /secrets\.vault_token/ },
        { messageId: 'ciSecret', resource: 'file=repo:.github/workflows/scheduled-rotate-keys.yml,line=13', message: /\(jobs\.rotate\.steps\[1\]\.run\)/ },
        { messageId: 'literal', resource: 'file=repo:.gitlab-ci.yml,line=3', severity: 'critical' },
      ],
    },
    {
      name: 'Dockerfile: ENV across a line continuation, ENV in the legacy form, and a build ARG',
      sources: deploy({
        'repo:images/api/Dockerfile': `FROM python:3.12-slim AS build
ARG VAULT_TOKEN
ENV PYTHONUNBUFFERED=1 \\
    VAULT_TOKEN=\${VAULT_TOKEN} \\
    LOG_LEVEL=info
FROM python:3.12-slim
ENV VAULT_TOKEN ${TOKEN}
`,
        'repo:images/escape.Dockerfile': `# escape=\`
FROM mcr.microsoft.com/windows/servercore
ENV A=1 \`
    VAULT_TOKEN=${TOKEN}
`,
      }),
      secrets: [TOKEN],
      findings: [
        { messageId: 'dockerArg', resource: 'file=repo:images/api/Dockerfile,line=2', severity: 'high' },
        { messageId: 'dockerEnv', resource: 'file=repo:images/api/Dockerfile,line=4', severity: 'critical', message: /line 4 bakes VAULT_TOKEN into the image with ENV/ },
        { messageId: 'dockerEnv', resource: 'file=repo:images/api/Dockerfile,line=7' },
        { messageId: 'dockerEnv', resource: 'file=repo:images/escape.Dockerfile,line=4' },
      ],
    },
    {
      name: 'hostile files are reported as not scanned, and the rest is still scanned',
      sources: deploy({
        'repo:bomb.yaml': `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nVAULT_TOKEN: ${TOKEN}\n`,
        'repo:deep.yaml': 'a: ' + '['.repeat(20_000) + ']'.repeat(20_000),
        'repo:indented.yaml': Array.from({ length: 400 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'),
        'repo:broken.yaml': `ok: 1\n---\nkey: [unclosed\n---\nenv:\n  VAULT_TOKEN: ${TOKEN}\n`,
        'repo:huge.yaml': { unreadable: 'larger than 2097152 bytes (5000000 bytes)' },
        'repo:bin.yml': { unreadable: 'binary content (NUL bytes)' },
        'repo:"><script>x</script>.yaml': { unreadable: 'not UTF-8 text' },
      }),
      secrets: [TOKEN],
      findings: [
        { messageId: 'literal', resource: 'file=repo:bomb.yaml,line=8' },
        { messageId: 'unscanned', resource: 'file=repo:deep.yaml', severity: 'medium', message: /^repo:deep\.yaml could not be scanned: flow collections nested deeper than 64 levels\.$/ },
        { messageId: 'unscanned', resource: 'file=repo:indented.yaml', message: /indented deeper than 256 columns/ },
        { messageId: 'unscanned', resource: 'file=repo:broken.yaml', message: /not valid YAML \([A-Z_]+ at line [34]\)/ },
        { messageId: 'literal', resource: 'file=repo:broken.yaml,line=6' },
        { messageId: 'unscanned', resource: 'file=repo:huge.yaml', message: /larger than 2097152 bytes/ },
        { messageId: 'unscanned', resource: 'file=repo:bin.yml', message: /binary content/ },
        { messageId: 'unscanned', resource: 'file="repo:\\"><script>x</script>.yaml"', message: /not UTF-8 text/ },
      ],
    },
  ],
  error: [
    {
      name: 'a tree that cannot be read',
      sources: () => ({ deploy: new FakeDeploySource({}).fail() }),
      error: /^deploy: files: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'a tree over its file bound',
      sources: () => ({ deploy: new FakeDeploySource({}).fail(badData('deploy', 'tree repo (/srv/deploy)', 'more than 20000 files to read; narrow the tree (exclude) or raise the limit')) }),
      error: /more than 20000 files/,
      code: 'AUDIT_ERR_BAD_DATA',
    },
  ],
});

test('the nesting guard counts brackets outside quotes and comments only', () => {
  expect(yamlTooDeep('a: "' + '['.repeat(100) + '"\n# ' + '{'.repeat(100) + '\nb: [1, [2]]\n')).toBeUndefined();
  expect(yamlTooDeep('a: ' + '['.repeat(65))).toMatch(/nested deeper than 64/);
  expect(yamlTooDeep('run: |\n  [[ -f x ]] && echo "{}"\n'.repeat(1000))).toBeUndefined();
});

test('a token in a file name or a YAML key reaches no finding: names pass the untrusted-text gate', async () => {
  const { runCase } = await import('../helpers/check-tester');
  const { result } = await runCase(check, {
    name: 'hostile names',
    sources: deploy({
      [`repo:k8s/${TOKEN}.yaml`]: `env:\n  VAULT_TOKEN: ${TOKEN}\n`,
      'repo:k8s/b.yaml': `${TOKEN}:\n  env:\n    - name: VAULT_TOKEN\n      valueFrom: {secretKeyRef: {name: "${TOKEN}"}}\n`,
    }),
  });
  expect(result.status).toBe('fail');
  expect(result.findings.map((f) => f.messageId).sort()).toEqual(['literal', 'secretRef']);
  const text = JSON.stringify(result);
  for (let i = 0; i + 8 <= TOKEN.length; i++) expect(text).not.toContain(TOKEN.slice(i, i + 8));
});
