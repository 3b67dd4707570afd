/**
 * The sandbox deployment's deploy tree: Kubernetes manifests (multi-document), a compose file,
 * a Dockerfile and GitHub Actions workflows, written the way Aegis's repository has them —
 * Vault Agent injection for pods, OIDC logins in CI, a BuildKit secret mount in the image —
 * plus the static-vault-token violations asked for, which reproduce Aegis's own shipped
 * mistakes (a `secretKeyRef` to `vault-token-secret`, the repository secret `VAULT_TOKEN` in the
 * scheduled key rotation). Pure: the files and the line of each violation follow from the seed,
 * the services and the selection, so the manifest can name them exactly.
 */
import { derivedBytes } from './prng';
import type { ViolationId } from './violations';

export const DEPLOY_TREE = 'deploy';

export interface DeployTree {
  /** Path inside the tree → content. */
  files: Record<string, string>;
  /** Where each seeded violation sets the token: the resource's file (`<tree>:<path>`) and line. */
  hits: Partial<Record<ViolationId, { file: string; line: number }>>;
  /** The literal tokens written (for the canary). */
  secrets: string[];
}

export interface DeployTreeOptions {
  seed: number;
  deployment: string;
  services: readonly string[];
  selected: ReadonlySet<ViolationId>;
}

/** Lines with a marked one: `mark` names the violation whose line it is. */
type Line = string | { text: string; mark: ViolationId };

function render(path: string, lines: Line[], tree: DeployTree): void {
  lines.forEach((l, i) => {
    if (typeof l !== 'string') tree.hits[l.mark] = { file: `${DEPLOY_TREE}:${path}`, line: i + 1 };
  });
  tree.files[path] = lines.map((l) => (typeof l === 'string' ? l : l.text)).join('\n') + '\n';
}

function deployment(svc: string, env: string, extra: Line[] = []): Line[] {
  return [
    'apiVersion: v1',
    'kind: ServiceAccount',
    'metadata:',
    `  name: ${svc}`,
    '  namespace: aegis',
    '---',
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${svc}`,
    '  namespace: aegis',
    `  labels: { app: ${svc}, env: ${env} }`,
    'spec:',
    '  replicas: 2',
    `  selector: { matchLabels: { app: ${svc} } }`,
    '  template:',
    '    metadata:',
    `      labels: { app: ${svc} }`,
    '      annotations:',
    '        vault.hashicorp.com/agent-inject: "true"',
    '        vault.hashicorp.com/role: aegis-k8s-role',
    '        vault.hashicorp.com/agent-inject-token: "true"',
    '    spec:',
    `      serviceAccountName: ${svc}`,
    '      containers:',
    `        - name: ${svc}`,
    `          image: ghcr.io/aegis/${svc}:1.4.2`,
    '          env:',
    '            - name: VAULT_ADDR',
    '              value: https://vault.aegis.svc:8200',
    '            - name: VAULT_TOKEN_FILE',
    '              value: /vault/secrets/token',
    '            - name: INTERNAL_SECRET',
    '              valueFrom:',
    '                secretKeyRef: { name: aegis-internal, key: INTERNAL_SECRET }',
    ...extra,
  ];
}

export function deployTree(o: DeployTreeOptions): DeployTree {
  const tree: DeployTree = { files: {}, hits: {}, secrets: [] };
  const has = (id: ViolationId) => o.selected.has(id);
  const token = (label: string) => {
    const t = `hvs.${derivedBytes(o.seed, `static-vault-token:${label}`, 24).toString('base64url')}`;
    tree.secrets.push(t);
    return t;
  };

  // One manifest per service; the model-serving one gets a sync sidecar with a literal token.
  const sidecarService = o.services.includes('insight') ? 'insight' : o.services[o.services.length - 1];
  for (const svc of o.services) {
    const extra: Line[] =
      svc === sidecarService && has('vault-token-literal')
        ? [
            '        - name: model-sync',
            '          image: ghcr.io/aegis/aegis-tools:latest',
            '          args: ["sync", "--from", "s3://aegis-models/model-archives/"]',
            '          env:',
            '            - name: VAULT_ADDR',
            '              value: https://vault.aegis.svc:8200',
            '            - name: VAULT_TOKEN',
            { text: `              value: "${token('literal')}"`, mark: 'vault-token-literal' },
          ]
        : [];
    render(`k8s/${svc}.yaml`, deployment(svc, o.deployment, extra), tree);
  }

  // Aegis's k8s/vault example: the service account, and (the violation) a token from a Secret.
  render(
    'k8s/vault/serviceaccount-and-deployment-example.yaml',
    [
      'apiVersion: v1',
      'kind: ServiceAccount',
      'metadata:',
      '  name: aegis-vault-client',
      '  namespace: aegis',
      ...(has('vault-token-secret-ref')
        ? [
            '---',
            'apiVersion: apps/v1',
            'kind: Deployment',
            'metadata:',
            '  name: aegis-vault-client',
            '  namespace: aegis',
            'spec:',
            '  template:',
            '    metadata:',
            '      annotations:',
            '        vault.hashicorp.com/agent-inject: "true"',
            '        vault.hashicorp.com/agent-inject-secret-VAULT_TOKEN: "secret/data/aegis/placeholder"',
            '    spec:',
            '      serviceAccountName: aegis-vault-client',
            '      containers:',
            '        - name: app',
            '          image: ghcr.io/aegis/api:1.4.2',
            '          env:',
            '            - name: VAULT_TOKEN',
            '              valueFrom:',
            { text: '                secretKeyRef:', mark: 'vault-token-secret-ref' as ViolationId },
            '                  name: vault-token-secret',
          ]
        : []),
    ],
    tree,
  );

  render(
    'docker-compose.yml',
    [
      'x-vault-env: &vault-env',
      '  VAULT_ADDR: http://vault:8200',
      '  VAULT_TOKEN: ${VAULT_TOKEN}',
      'services:',
      ...o.services.flatMap((svc) => [`  ${svc}:`, `    image: ghcr.io/aegis/${svc}:1.4.2`, '    environment:', '      <<: *vault-env', `      SERVICE_NAME: ${svc}`]),
    ],
    tree,
  );

  render(
    'docker/api.Dockerfile',
    [
      '# syntax=docker/dockerfile:1',
      'FROM python:3.12-slim AS base',
      'WORKDIR /opt/aegis',
      'ENV PYTHONUNBUFFERED=1 \\',
      '    VAULT_ADDR=https://vault.aegis.svc:8200 \\',
      ...(has('vault-token-docker-env') ? [{ text: `    VAULT_TOKEN=${token('docker-env')} \\`, mark: 'vault-token-docker-env' as ViolationId }] : []),
      '    AEGIS_ENV=production',
      'COPY requirements.txt .',
      'RUN --mount=type=secret,id=vault_token \\',
      '    VAULT_TOKEN="$(cat /run/secrets/vault_token)" pip install -r requirements.txt',
      'COPY . .',
      'CMD ["python", "-m", "aegis.api"]',
    ],
    tree,
  );

  render(
    '.github/workflows/sign-model-with-vault.yml',
    [
      'name: sign model with vault',
      'on: { workflow_dispatch: {} }',
      'permissions: { id-token: write, contents: read }',
      'jobs:',
      '  sign:',
      '    runs-on: ubuntu-latest',
      '    env:',
      '      VAULT_ADDR: ${{ secrets.VAULT_ADDR }}',
      '      TRANSIT_KEY: aegis-model-sign',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: hashicorp/vault-action@v2',
      '        id: vault',
      '        with:',
      '          url: ${{ secrets.VAULT_ADDR }}',
      '          method: jwt',
      '          role: aegis-sign-role',
      '          exportToken: true',
      '      - name: sign',
      '        env:',
      '          VAULT_TOKEN: ${{ steps.vault.outputs.vault_token }}',
      '        run: ./scripts/package_and_sign_vault.sh model/ model.tar.gz',
    ],
    tree,
  );

  render(
    '.github/workflows/scheduled-rotate-keys.yml',
    [
      'name: scheduled key rotation',
      'on:',
      '  schedule: [{ cron: "0 3 */30 * *" }]',
      'permissions: { id-token: write, contents: read }',
      'jobs:',
      '  rotate:',
      '    runs-on: ubuntu-latest',
      '    env:',
      '      VAULT_ADDR: ${{ secrets.VAULT_ADDR }}',
      has('vault-token-ci-secret') ? { text: '      VAULT_TOKEN: ${{ secrets.VAULT_TOKEN }}', mark: 'vault-token-ci-secret' } : '      ROTATED_BY: scheduled-rotation',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: hashicorp/vault-action@v2',
      '        with: { url: "${{ secrets.VAULT_ADDR }}", method: jwt, role: aegis-rotate-role, exportToken: true }',
      '      - run: python scripts/vault_rotate_model_sign_key2.py',
    ],
    tree,
  );
  return tree;
}
