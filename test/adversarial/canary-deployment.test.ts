/**
 * Issue 9, "done when": canary secrets planted in everything the auditor reads from the
 * deployment that is not a secret it looks up — log fields, database text (audit rows,
 * historical keys, roots, API keys), SSM parameter names and deploy commands, Vault key
 * names, token metadata and CloudWatch stream names, an identity endpoint's answers (status
 * line, headers, body, its certificates' names and its JWKS), the deploy tree (file names,
 * YAML keys and values, secret names, Dockerfile instructions, unparsable text), the model
 * artifacts (directory and file names, contents, signature files, checksums) and the
 * repository checkout (file contents, file names, baseline entries) — and then every
 * output searched, by
 * plain substring for the canary and every 8-character piece of it (never with the
 * product's scrubber): stdout and stderr at debug level, every report format, the checklist,
 * history and state, of `run` (twice: history and diff), `checklist`, and the daemon's
 * /metrics, /report, /report.json, report files and log lines.
 *
 * Two kinds of canary: random tokens of 12 characters in fields a finding may only show as
 * known values or fixed shapes (a key source, a fingerprint, a hash, a token type), and
 * secret-shaped text (long random tokens, JWTs, bearer tokens, `acp_` keys, Vault and AWS
 * tokens, PEM blocks) in free-text fields (instance names, clients, ids, names), which the
 * gate shows bounded and scrubbed of secret shapes. (A short secret in a free-text field is
 * indistinguishable from a name and is shown like one; that is why the enumerated fields
 * never show free text.)
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import { buildSandbox, type Sandbox } from '../../src/sandbox/build';
import { mintCa, mintLeaf } from '../../src/sources/certs';
import { adminUrl } from '../helpers/pg';
import { canaryToken, fetchText, findLeaks, fork, listenAddress, readAll, requireBuild, runCli, shapedCanaries, waitFor, type Forked } from './helpers';

/** Shown only as a known value or a fixed shape: any of it in an output is a leak. */
const short = (where: string) => canaryToken(`deployment-canary:short:${where}`, 12);
/** Secret-shaped, for free-text fields. */
const long = (where: string) => canaryToken(`deployment-canary:long:${where}`, 40);

const CANARIES: Record<string, string> = {};
function canary(name: string, value: string): string {
  CANARIES[name] = value;
  return value;
}

const shaped = shapedCanaries('deployment-canary');
for (const [k, v] of Object.entries(shaped)) canary(`shaped.${k}`, v);

let root: string;
let sandbox: Sandbox;
let hostileEndpoint: https.Server | undefined;
const running: Forked[] = [];
const outputs = new Map<string, string>();
/** The checks `run` evaluated: the daemon's first cycle is complete when it has all of them. */
let checkIds: string[] = [];

async function plantDatabase(url: string, schema: string, tables: Sandbox['plan']['opts']['tables']): Promise<void> {
  const q = (t: string) => `"${schema}"."${t}"`;
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const { rows: last } = await c.query(`SELECT id, created_at, row_hash, key_fingerprint FROM ${q(tables.audit_log)} ORDER BY id DESC LIMIT 1`);
    const next = Number(last[0].id) + 1;
    const at = new Date(Date.now() - 60_000);
    const insertRow = (id: number, action: string, payload: unknown, prev: string, hash: string, sig: string, fp: string) =>
      c.query(`INSERT INTO ${q(tables.audit_log)} (id, created_at, action, payload, prev_hash, row_hash, signature, key_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
        id,
        at,
        action,
        JSON.stringify(payload),
        prev,
        hash,
        sig,
        fp,
      ]);
    // A row whose every text column is a canary.
    await insertRow(
      next,
      canary('db.audit_log.action', long('db-action')),
      { note: canary('db.audit_log.payload.note', long('db-note')), token: shaped.jwt, nested: { key: canary('db.audit_log.payload.nested', long('db-nested')) } },
      canary('db.audit_log.prev_hash', short('db-prev-hash')),
      canary('db.audit_log.row_hash', short('db-row-hash')),
      canary('db.audit_log.signature', long('db-signature')),
      canary('db.audit_log.key_fingerprint', short('db-key-fp')),
    );
    // A row shaped right but signed by a "fingerprint" that is not one: tallied as an unknown key.
    await insertRow(
      next + 2,
      'receipt_issued',
      { receipt: 'r-1' },
      last[0].row_hash as string,
      'ab'.repeat(32),
      canary('db.unknown-key.signature', long('db-unknown-sig')),
      canary('db.unknown-key.key_fingerprint', short('db-unknown-fp')),
    );
    // A rotation naming fingerprints that are not fingerprints.
    await insertRow(
      next + 1,
      'key_rotated',
      { old_fingerprint: canary('db.rotation.old_fingerprint', short('db-old-fp')), new_fingerprint: canary('db.rotation.new_fingerprint', short('db-new-fp')) },
      canary('db.rotation.prev_hash', short('db-rot-prev')),
      canary('db.rotation.row_hash', short('db-rot-hash')),
      canary('db.rotation.signature', long('db-rot-sig')),
      last[0].key_fingerprint as string,
    );
    await c.query(`INSERT INTO ${q(tables.historical_keys)} (fingerprint, public_key, promoted_at) VALUES ($1, $2, $3)`, [
      canary('db.historical_keys.fingerprint', short('db-hist-fp')),
      `not a key ${canary('db.historical_keys.public_key', long('db-hist-pem'))}`,
      at,
    ]);
    await c.query(`INSERT INTO ${q(tables.historical_keys)} (fingerprint, public_key, promoted_at) VALUES ($1, $2, $3)`, [
      canary('db.historical_keys.fingerprint2', short('db-hist-fp2')),
      ['-----BEGIN PUBLIC KEY-----', canary('db.historical_keys.pem_body', long('db-hist-pem-body')), '-----END PUBLIC KEY-----'].join('\n'),
      at,
    ]);
    const { rows: lastRoot } = await c.query(`SELECT id, up_to_id FROM ${q(tables.roots)} ORDER BY id DESC LIMIT 1`);
    await c.query(`INSERT INTO ${q(tables.roots)} (id, created_at, up_to_id, root_hash, signature, key_fingerprint) VALUES ($1, $2, $3, $4, $5, $6)`, [
      Number(lastRoot[0]?.id ?? 0) + 1,
      at,
      next + 1,
      canary('db.roots.root_hash', short('db-root-hash')),
      canary('db.roots.signature', long('db-root-sig')),
      canary('db.roots.key_fingerprint', short('db-root-fp')),
    ]);
    const old = new Date(Date.now() - 400 * 86_400_000);
    for (const [name, id] of [
      ['db.api_keys.id', long('db-api-id')],
      ['db.api_keys.id.acp', shaped.apiKey],
      ['db.api_keys.id.bearer', shaped.bearer],
    ] as const) {
      await c.query(`INSERT INTO ${q(tables.api_keys)} (id, prefix, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)`, [
        canary(name, id),
        canary(`${name}.prefix`, short(`db-api-prefix-${name}`)),
        old,
        at,
      ]);
    }
  } finally {
    await c.end();
  }
}

function plantLogs(dir: string, config: Record<string, any>, signingService: string): void {
  const ts = new Date(Date.now() - 90_000).toISOString();
  const files = (config.sources.logs.files ?? {}) as Record<string, string>;
  for (const service of Object.keys(files)) {
    const folder = join(dir, 'logs', service);
    mkdirSync(folder, { recursive: true });
    const lines: string[] = [];
    if (service === signingService) {
      const load = (instance: string, key: string, source: string) => JSON.stringify({ ts, service, instance, event: 'signing_key_loaded', key, source });
      lines.push(
        JSON.stringify({ ts, service, instance: canary(`log.${service}.instance`, long(`log-instance-${service}`)), event: 'service_started', version: canary(`log.${service}.version`, long(`log-version-${service}`)) }),
        load(CANARIES[`log.${service}.instance`], 'receipt', canary(`log.${service}.source`, short(`log-source-${service}`))),
        load(CANARIES[`log.${service}.instance`], canary(`log.${service}.key`, short(`log-key-${service}`)), 'file'),
        load(`audit-canary ${shaped.vault}`, 'receipt', shaped.pem),
        load(shaped.aws, 'root', shaped.bearer),
      );
    }
    for (let i = 0; i < 40; i++) {
      lines.push(
        JSON.stringify({
          ts: new Date(Date.now() - 120_000 - i * 1000).toISOString(),
          service,
          instance: `${service}-canary`,
          event: 'auth_failure',
          reason: i % 2 ? canary(`log.${service}.reason`, short(`log-reason-${service}`)) : 'invalid_token',
          client: i % 3 === 0 ? canary(`log.${service}.client`, long(`log-client-${service}`)) : i % 3 === 1 ? shaped.jwt : '10.9.8.7',
        }),
      );
    }
    lines.push(
      JSON.stringify({ ts: canary(`log.${service}.ts`, short(`log-ts-${service}`)), service, instance: `${service}-canary`, event: 'signing_key_loaded', key: 'receipt', source: 'env' }),
      `not json ${canary(`log.${service}.not-json`, long(`log-not-json-${service}`))}`,
      JSON.stringify({ ts, service: canary(`log.${service}.service`, short(`log-service-${service}`)), event: canary(`log.${service}.event`, short(`log-event-${service}`)) }),
    );
    writeFileSync(join(folder, 'zz-canary.jsonl'), lines.join('\n') + '\n');
  }
}

async function plantCloud(s: Sandbox, config: Record<string, any>): Promise<void> {
  const cloud = s.cloud;
  if (!cloud) throw new Error('the canary sandbox needs its cloud side');
  const ssmPath = config.sources.secrets.ssm.path as string;
  const [svc] = s.plan.opts.services;
  cloud.emulators.ssm.putParameter({ name: `${ssmPath}/${svc}/SECRET_${canary('ssm.parameter.name', long('ssm-name'))}`, type: 'String', value: 'plain' });
  cloud.emulators.ssm.putParameter({ name: `${ssmPath}/${svc}/${canary('ssm.parameter.name2', long('ssm-name2'))}_TOKEN`, type: 'StringList', value: 'a,b' });
  cloud.emulators.ssm.putParameter({ name: `${ssmPath}/${svc}/API_KEY_${shaped.apiKey}`, type: 'String', value: 'plain' });
  cloud.emulators.ssm.addCommand({
    documentName: config.sources.secrets.ssm.deploy_document ?? 'aegis-deploy',
    parameters: {
      [canary('ssm.command.parameter', long('ssm-cmd-param'))]: [canary('ssm.command.value', long('ssm-cmd-value'))],
      SECRET_TOKEN: [canary('ssm.command.literal', long('ssm-cmd-literal'))],
      DATABASE_URL: [`postgres://app:${canary('ssm.command.url-password', long('ssm-cmd-pw'))}@db/x`],
    },
    requestedAt: new Date(Date.now() - 3_600_000),
    instanceIds: [canary('ssm.command.instance', short('ssm-instance'))],
    comment: canary('ssm.command.comment', long('ssm-comment')),
    invocations: [
      {
        instanceId: CANARIES['ssm.command.instance'],
        pluginName: canary('ssm.command.plugin', long('ssm-plugin')),
        output: `deployed ${canary('ssm.command.output', long('ssm-output'))}`,
        error: canary('ssm.command.error', long('ssm-error')),
      },
    ],
  });
  // CloudWatch: a stream named like a secret, with events of every log check.
  const groups = (config.sources.logs.cloudwatch?.groups ?? {}) as Record<string, string>;
  for (const [service, group] of Object.entries(groups)) {
    cloud.emulators.logs.putEvents(group, canary(`cloudwatch.${service}.stream`, long(`cw-stream-${service}`)), [
      { timestamp: Date.now() - 100_000, message: JSON.stringify({ ts: new Date(Date.now() - 100_000).toISOString(), service, instance: CANARIES[`cloudwatch.${service}.stream`], event: 'auth_failure', reason: 'invalid_token', client: shaped.vault }) },
      { timestamp: Date.now() - 99_000, message: `not json ${canary(`cloudwatch.${service}.not-json`, long(`cw-not-json-${service}`))}` },
    ]);
  }
  // Vault: field names in the secrets the auditor reads, and a service token whose metadata is hostile.
  const vault = config.sources.secrets.vault;
  const token = readFileSync(cloud.tokenFile, 'utf8').trim();
  for (const path of [vault.runtime_path as string, `${vault.path_prefix}/${svc}`]) {
    const r = await fetch(`${vault.address}/v1/${vault.kv_mount}/data/${path}`, { headers: { 'X-Vault-Token': token } });
    const current = r.ok ? (((await r.json()) as { data: { data: Record<string, unknown> } }).data.data ?? {}) : {};
    cloud.emulators.vault.putKv(vault.kv_mount as string, path, { ...current, [canary(`vault.field.${path}`, long(`vault-field-${path}`))]: 'x' });
  }
  cloud.emulators.vault.createTransitKey(canary('vault.transit.key', long('vault-transit-key')));
  const hostile = cloud.emulators.vault.createToken({
    policies: [canary('vault.token.policy', long('vault-policy')), shaped.aws],
    renewable: false,
    displayName: canary('vault.token.display_name', long('vault-display')),
    meta: { [canary('vault.token.meta-key', long('vault-meta-key'))]: canary('vault.token.meta-value', long('vault-meta-value')) },
  });
  config.sources.secrets.vault.token_accessors = { ...(vault.token_accessors ?? {}), canary: hostile.accessor };
}

const DAY = 86_400_000;

/**
 * An identity endpoint that answers with canaries: its certificates (CA and server, names that
 * are canaries) chain to a CA the config trusts, every answer carries canaries in the status
 * line, headers and body, and its JWKS holds canary kids, a symmetric key, private members, a
 * forbidden alg and unknown members (next to the auditor's real probe key, so the token probes
 * run). Only the config's own words (its URL, the target's name) are not canaries.
 */
async function plantIdentity(config: Record<string, any>, base: string): Promise<void> {
  const ep = config.sources.endpoints;
  const now = Date.now();
  const ca = await mintCa({ subject: `CN=${canary('identity.ca.cn', long('id-ca-cn'))},O=${canary('identity.ca.o', long('id-ca-o'))}`, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now + 3000 * DAY) });
  // expiring in 3 days: the expiry finding shows the certificate's names through the gate
  const leaf = await mintLeaf({ issuer: ca.signer, subject: `CN=${canary('identity.server.cn', long('id-server-cn'))},O=${shaped.random}`, usage: 'server', ips: ['127.0.0.1'], notBefore: new Date(now - 200 * DAY), notAfter: new Date(now + 3 * DAY) });
  canary('identity.ca.key', ca.keyPem);
  canary('identity.server.key', leaf.keyPem);

  const probePem = readFileSync(resolve(base, ep.token_signing_key_file as string), 'utf8');
  const probeJwk = createPublicKey(createPrivateKey(probePem)).export({ format: 'jwk' }) as Record<string, unknown>;
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const jwks = {
    [canary('jwks.top-level-member', long('jwks-top'))]: canary('jwks.top-level-value', long('jwks-top-value')),
    keys: [
      { ...probeJwk, kid: canary('jwks.probe.kid', long('jwks-probe-kid')), alg: 'RS256', use: 'sig', x5c: [canary('jwks.x5c', long('jwks-x5c'))], note: canary('jwks.note', long('jwks-note')) },
      { kty: 'oct', kid: shaped.jwt, alg: 'HS256', k: canary('jwks.oct.k', long('jwks-oct-k')) },
      { ...weak, kid: canary('jwks.private.kid', long('jwks-private-kid')), d: canary('jwks.private.d', long('jwks-private-d')), p: canary('jwks.private.p', long('jwks-private-p')) },
      { ...weak, kid: canary('jwks.alg.kid', long('jwks-alg-kid')), alg: canary('jwks.alg', `HS${long('jwks-alg')}`) },
      { kty: canary('jwks.kty', short('jwks-kty')), kid: canary('jwks.kty.kid', long('jwks-kty-kid')), crv: canary('jwks.crv', short('jwks-crv')) },
      { ...weak, kid: canary('jwks.dup.kid', long('jwks-dup-kid')) },
      { ...weak, kid: CANARIES['jwks.dup.kid'], use: canary('jwks.use', short('jwks-use')) },
    ],
  };

  hostileEndpoint = https.createServer({ cert: `${leaf.certPem.trim()}\n${ca.certPem}`, key: leaf.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    req.resume();
    if ((req.url ?? '').startsWith('/.well-known/jwks.json')) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-canary': canary('identity.jwks.header', long('id-jwks-header')) });
      res.end(JSON.stringify(jwks));
      return;
    }
    const hasCert = Object.keys((req.socket as TLSSocket).getPeerCertificate() ?? {}).length > 0;
    const headers = {
      'content-type': 'text/html',
      'www-authenticate': `Bearer error="${canary('identity.www-authenticate', long('id-www-auth'))}"`,
      'set-cookie': `session=${canary('identity.cookie', long('id-cookie'))}`,
      location: `https://127.0.0.1/${canary('identity.location', long('id-location'))}`,
      [`x-${canary('identity.header-name', short('id-header-name')).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`]: shaped.vault,
    };
    // a client without a certificate gets a refusal, the others are let in: both paths report
    res.writeHead(hasCert ? 200 : 401, `${hasCert ? 'OK' : 'Unauthorized'} ${canary('identity.reason-phrase', long('id-reason'))}`, headers);
    res.end(`<html>${canary('identity.body', long('id-body'))} ${shaped.bearer} ${shaped.pem}</html>`);
  });
  await new Promise<void>((ok, fail) => {
    hostileEndpoint!.once('error', fail);
    hostileEndpoint!.listen(0, '127.0.0.1', () => ok());
  });
  const url = `https://127.0.0.1:${(hostileEndpoint.address() as AddressInfo).port}`;
  // the config trusts the endpoint's CA beside the deployment's
  const bundle = join(base, 'identity', 'ca-bundle-canary.pem');
  writeFileSync(bundle, `${readFileSync(resolve(base, ep.ca_file as string), 'utf8').trim()}\n${ca.certPem}`);
  ep.ca_file = bundle;
  ep.targets = {
    ...ep.targets,
    'canary-endpoint': { url: `${url}/v1/predict`, service: config.services[0], probes: ['mtls', 'oidc'], oidc: { audience: 'https://api.canary.example', issuer: 'https://idp.canary.example', jwks_uri: `${url}/.well-known/jwks.json` } },
  };
}

/** Deploy files whose names, keys, secret names, values and unparsable text are canaries. */
function plantDeployTree(config: Record<string, any>, base: string): void {
  const [tree] = Object.values(config.sources.deploy.trees as Record<string, string>);
  const dir = join(resolve(base, tree), 'canary');
  const file = (name: string, text: string) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  };
  const secretName = canary('deploy.k8s.secret-name', `s${long('dt-secret-name').toLowerCase().replace(/[^a-z0-9]/g, '0')}`);
  file(
    `k8s-${canary('deploy.file-name', long('dt-file-name'))}.yaml`,
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      `metadata: { name: ${canary('deploy.k8s.name', long('dt-k8s-name'))}, annotations: { note: "${canary('deploy.k8s.annotation', long('dt-annotation'))}" } }`,
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      `        - name: ${canary('deploy.k8s.container', long('dt-container'))}`,
      '          env:',
      '            - name: VAULT_TOKEN',
      `              value: ${canary('deploy.k8s.literal', long('dt-literal'))}`,
      '            - name: VAULT_TOKEN',
      `              valueFrom: { secretKeyRef: { name: ${secretName}, key: ${canary('deploy.k8s.secret-key', short('dt-secret-key'))} } }`,
      '            - name: VAULT_TOKEN',
      `              value: "${shaped.vault}"`,
      '---',
      'apiVersion: v1',
      'kind: Secret',
      `metadata: { name: ${canary('deploy.k8s.secret', long('dt-secret'))} }`,
      'stringData:',
      `  VAULT_TOKEN: ${canary('deploy.k8s.secret-data', long('dt-secret-data'))}`,
      '',
    ].join('\n'),
  );
  file(
    'docker-compose.canary.yml',
    [
      'services:',
      `  ${canary('deploy.compose.service', long('dt-compose-service'))}:`,
      '    environment:',
      `      VAULT_TOKEN: ${canary('deploy.compose.literal', long('dt-compose-literal'))}`,
      `      ${canary('deploy.compose.key', long('dt-compose-key'))}: ${shaped.aws}`,
      '',
    ].join('\n'),
  );
  file(
    '.github/workflows/canary.yml',
    [
      'on: push',
      'jobs:',
      `  ${canary('deploy.ci.job', long('dt-ci-job'))}:`,
      '    runs-on: ubuntu-latest',
      '    env:',
      `      VAULT_TOKEN: \${{ secrets.${canary('deploy.ci.secret', `S${long('dt-ci-secret').replace(/-/g, '_')}`)} }}`,
      '    steps:',
      `      - run: echo ${canary('deploy.ci.run', long('dt-ci-run'))}`,
      '',
    ].join('\n'),
  );
  file(
    'Dockerfile.canary',
    [
      'FROM debian:bookworm-slim',
      `ARG VAULT_TOKEN=${canary('deploy.docker.arg', long('dt-docker-arg'))}`,
      `ENV VAULT_TOKEN=${shaped.apiKey} OTHER=${canary('deploy.docker.env', long('dt-docker-env'))}`,
      `RUN echo ${canary('deploy.docker.run', long('dt-docker-run'))}`,
      '',
    ].join('\n'),
  );
  // not YAML a parser accepts: its error must not quote the text
  file('broken.yaml', `VAULT_TOKEN: [${canary('deploy.broken.flow', long('dt-broken-flow'))}\n  : : ${canary('deploy.broken.text', long('dt-broken-text'))}\n`);
}

/** Artifacts whose directory and file names, bytes, signature files and checksums are canaries. */
function plantArtifacts(config: Record<string, any>, base: string): void {
  const dir = join(resolve(base, config.sources.artifacts.dir as string), 'canary');
  const file = (name: string, text: string) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  };
  const bytes = (where: string) => `${canary(`artifact.${where}.bytes`, long(`art-bytes-${where}`))}\n`.repeat(64);
  // no signature, in a folder named like a secret
  file(`${canary('artifact.dir-name', long('art-dir'))}/model.onnx`, bytes('unsigned'));
  file(`${shaped.apiKey}.bin`, bytes('api-key-name'));
  // Vault's error body as the signature, its errors canaries
  file('errored.onnx', bytes('errored'));
  file('errored.onnx.sig.json', JSON.stringify({ errors: [canary('artifact.vault-error', long('art-vault-error')), shaped.vault] }));
  // a signature of the right form that does not verify, beside members that are canaries
  file('forged.onnx', bytes('forged'));
  file(
    'forged.onnx.sig.json',
    JSON.stringify({
      request_id: canary('artifact.request-id', long('art-request-id')),
      data: { signature: `vault:v1:${Buffer.from(canary('artifact.signature', long('art-signature'))).toString('base64')}`, key_version: canary('artifact.key-version', short('art-key-version')) },
      warnings: [canary('artifact.warning', long('art-warning'))],
    }),
  );
  // signature files that are not Vault's answer
  file('not-json.onnx', bytes('not-json'));
  file('not-json.onnx.sig.json', `not json ${canary('artifact.not-json', long('art-not-json'))}`);
  file('bad-form.onnx', bytes('bad-form'));
  file('bad-form.onnx.sig', JSON.stringify({ signature: `vault:${canary('artifact.bad-form', long('art-bad-form'))}` }));
  // a checksum file that is not the artifact's
  file('summed.onnx', bytes('summed'));
  file('summed.onnx.sig.json', JSON.stringify({ data: { signature: `vault:v1:${Buffer.from(long('art-summed-sig')).toString('base64')}` } }));
  file('summed.onnx.sha256', `${canary('artifact.sha256', long('art-sha256'))}  summed.onnx\n`);
}

/**
 * The repository checkout: a committed file carrying every shaped canary, a file whose name is
 * a canary, and a baseline entry whose file name and type are canaries (hostile text the
 * baseline holds) with no audit decision.
 */
function plantRepo(repoDir: string): void {
  const r = shapedCanaries('repo-canary');
  const lines = Object.entries(r).map(([k, v]) => `${k.toUpperCase()} = '${canary(`repo.${k}`, v).replace(/\n/g, '\\n')}'`);
  mkdirSync(join(repoDir, 'ops'), { recursive: true });
  writeFileSync(join(repoDir, 'ops', 'leaked_settings.py'), `${lines.join('\n')}\n# raw:\n${r.pem}\n`);
  const nameCanary = canary('repo.file-name', canaryToken('repo-file-name', 40));
  writeFileSync(join(repoDir, 'ops', `${nameCanary}.env`), `TOKEN=${canary('repo.named-file-aws', `AKIA${canaryToken('repo-named-aws', 16).toUpperCase().replace(/[^A-Z0-9]/g, 'Q')}`)}\n`);
  const baselinePath = join(repoDir, '.secrets.baseline');
  const b = JSON.parse(readFileSync(baselinePath, 'utf8')) as { results: Record<string, unknown[]> };
  const entryFile = `ops/${canary('repo.baseline-file', canaryToken('repo-baseline-file', 40))}.py`;
  b.results[entryFile] = [{ type: canary('repo.baseline-type', canaryToken('repo-baseline-type', 40)), filename: entryFile, hashed_secret: '0'.repeat(40), is_verified: false, line_number: 1 }];
  writeFileSync(baselinePath, JSON.stringify(b, null, 2));
}

beforeAll(async () => {
  requireBuild();
  root = mkdtempSync(join(tmpdir(), 'adv-canary-'));
  sandbox = await buildSandbox({ dir: join(root, 'sandbox'), seed: 19, rows: 240, violations: 'all', adminUrl: adminUrl() });
  const config = parse(readFileSync(sandbox.configPath, 'utf8')) as Record<string, any>;
  await plantDatabase(sandbox.postgresUrl, sandbox.plan.opts.schema, sandbox.plan.opts.tables);
  plantLogs(sandbox.dir, config, sandbox.plan.opts.signingService);
  await plantCloud(sandbox, config);
  await plantIdentity(config, dirname(sandbox.configPath));
  plantDeployTree(config, dirname(sandbox.configPath));
  plantArtifacts(config, dirname(sandbox.configPath));
  plantRepo(join(sandbox.dir, config.sources.repo.roots.aegis as string));
  writeFileSync(sandbox.configPath, stringify(config));
  expect(Object.keys(CANARIES).length).toBeGreaterThan(50);
}, 180_000);

afterAll(async () => {
  for (const f of running) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  await sandbox?.stop();
  if (hostileEndpoint) {
    hostileEndpoint.closeAllConnections();
    await new Promise<void>((ok) => hostileEndpoint!.close(() => ok()));
  }
  if (root && !process.env.ADV_KEEP) rmSync(root, { recursive: true, force: true });
});

const DEBUG = { AEGIS_AUDIT_LOG_LEVEL: 'debug' };

test('run (twice), checklist: no piece of a canary in stdout, stderr, any report format, the checklist, history or state', async () => {
  const out = join(root, 'run-out');
  for (const pass of [1, 2]) {
    const r = await runCli(['run', '--config', sandbox.configPath, '--out', out], DEBUG);
    expect(r.code).toBe(1);
    outputs.set(`run ${pass} stdout`, r.stdout);
    outputs.set(`run ${pass} stderr`, r.stderr);
  }
  const checklistOut = join(root, 'checklist-out');
  const c = await runCli(['checklist', '--config', sandbox.configPath, '--out', checklistOut], DEBUG);
  outputs.set('checklist stdout', c.stdout);
  outputs.set('checklist stderr', c.stderr);
  const seen = new Map<string, string>(outputs);
  readAll([out, checklistOut, join(sandbox.dir, 'state'), join(sandbox.dir, '.aegis-audit')], seen);
  const names = [...seen.keys()].map((k) => k.split('/').pop());
  for (const f of ['report.json', 'report.html', 'checklist.html', 'report.junit.xml', 'report.sarif']) expect(names).toContain(f);
  expect([...seen.keys()].filter((k) => k.includes('/history/')).length).toBeGreaterThanOrEqual(2);

  // The plantings were read: the checks that read them ran and reported on them.
  const report = JSON.parse(seen.get(join(out, 'report.json')) as string) as { results: { check: string; status: string; error?: string }[] };
  const status = Object.fromEntries(report.results.map((r) => [r.check, r.error ? `${r.status}: ${r.error}` : r.status]));
  checkIds = Object.keys(status);
  expect(findLeaks(CANARIES, seen)).toEqual([]);
  for (const id of ['receipt-chain', 'historical-keys', 'credential-age', 'signing-key-source', 'auth-failure-spike', 'ssm-persisted-secrets', 'vault-token-hygiene', 'mtls-enforced', 'oidc-jwks', 'static-vault-token', 'model-artifact-signature', 'repo-secret-scan']) {
    expect([id, status[id]]).toEqual([id, 'fail']);
  }
  // ... and on the identity endpoint, deploy files and artifacts planted here
  const findings = (report as unknown as { results: { check: string; findings: { resource: string; messageId: string }[] }[] }).results.flatMap((r) => r.findings.map((f) => ({ ...f, check: r.check })));
  const on = (check: string, re: RegExp) => findings.filter((f) => f.check === check && re.test(f.resource)).map((f) => f.messageId);
  expect(on('mtls-enforced', /endpoint=canary-endpoint/)).toEqual(expect.arrayContaining(['certExpiring', 'certLongLived', 'admitted', 'pastIngress']));
  expect(on('oidc-jwks', /jwks=https:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json/)).toEqual(expect.arrayContaining(['symmetricKey', 'privateKey', 'forbiddenAlg', 'invalidKey', 'weakRsa', 'duplicateKid']));
  expect(on('oidc-jwks', /endpoint=canary-endpoint/)).toEqual(expect.arrayContaining(['tokenAccepted']));
  // (a file name that is a canary shows as "[redacted]": the scrubber takes the folder with it)
  expect(on('static-vault-token', /file=deploy:(canary\/|\[redacted\])/)).toEqual(expect.arrayContaining(['literal', 'secretRef', 'secretData', 'ciSecret', 'dockerArg', 'dockerEnv', 'unscanned']));
  expect(on('model-artifact-signature', /artifact=dir:(canary\/|\[redacted\])/)).toEqual(expect.arrayContaining(['missing', 'errorBody', 'invalid', 'malformed', 'checksumMismatch']));
}, 240_000);

test('daemon: no piece of a canary in /metrics, /report, /report.json, its report files or its log lines', async () => {
  const d = fork(['daemon', '--config', sandbox.configPath, '--listen', '127.0.0.1:0'], { ...DEBUG }, root);
  running.push(d);
  const base = await waitFor('the daemon to listen', () => listenAddress(d.stdout()), 60_000);
  const reportJson = await waitFor(
    'every check to report',
    async () => {
      const r = await fetchText(`${base}/report.json`);
      if (r.status !== 200) return undefined;
      const results = new Set((JSON.parse(r.body) as { results: { check: string }[] }).results.map((x) => x.check));
      return checkIds.length > 0 && checkIds.every((id) => results.has(id)) ? r.body : undefined;
    },
    120_000,
  );
  await waitFor('the report files', () => (existsSync(join(sandbox.dir, 'reports', 'report.html')) ? true : undefined), 60_000);
  const seen = new Map<string, string>([
    ['/report.json', reportJson],
    ['/report', (await fetchText(`${base}/report`)).body],
    ['/metrics', (await fetchText(`${base}/metrics`)).body],
  ]);
  d.child.kill('SIGTERM');
  expect((await d.exited).code).toBe(0);
  seen.set('daemon stdout', d.stdout());
  seen.set('daemon stderr', d.stderr());
  readAll([join(sandbox.dir, 'reports'), join(sandbox.dir, 'state')], seen);
  expect(seen.get('/metrics')).toMatch(/aegis_compliance_check_status\{deployment="[^"]+",check="receipt-chain"/);
  expect(findLeaks(CANARIES, seen)).toEqual([]);
}, 240_000);
