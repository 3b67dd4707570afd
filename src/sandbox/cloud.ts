/**
 * The sandbox's cloud side: the SSM, CloudWatch Logs and Vault emulators on 127.0.0.1,
 * seeded with a deployment's parameters, deploy-command history, log groups, runtime secrets
 * and tokens, plus the cloud violations asked for. Returns the config fragment that points
 * the auditor at them and the manifest entries (check + resource, as docs/findings.md builds
 * them) that the seeded violations must produce.
 *
 * The auditor reaches the emulators only over HTTP through the real clients (credentials:
 * see SANDBOX_AWS_ENV). Which findings each violation makes is declared once, in the catalog
 * (violations.ts); buildSandbox runs this as the cloud side of the one sandbox.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LogsEmulator, SsmEmulator, VaultEmulator, type PagingPolicy } from './emulators';
import { cloudEntries, listViolations, type CloudNames, type ManifestEntry, type ViolationId } from './violations';

/** The violations a standalone cloud sandbox can seed: the catalog's cloud ones (not the identity side's) and the auth-failure burst. */
export const CLOUD_VIOLATION_IDS: readonly ViolationId[] = listViolations()
  .filter((v) => (v.cloud && !v.identity) || v.id === 'auth-failure-burst')
  .map((v) => v.id);
export type CloudViolationId = ViolationId;

export type CloudManifestEntry = ManifestEntry;

/** A log line with its own timestamp and stream (as buildSandbox hands them over). */
export interface CloudLogLine {
  timestamp: number;
  message: string;
  stream: string;
}

export interface CloudSandboxOptions {
  /** Makes command ids, accessors and client addresses reproducible. */
  seed?: string | number;
  deployment: string;
  services: readonly string[];
  /** Violation ids, check ids (all of that check's cloud violations) or `all`; ids the cloud side does not seed are ignored. */
  violations?: readonly string[];
  /** Secret values per service (service → NAME → value), written to SSM `<path>/<service>/<NAME>` and Vault `secret/data/aegis/<service>`. */
  secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Where the secrets go; default both. */
  secretStores?: readonly ('ssm' | 'vault')[];
  /**
   * Log lines per service for CloudWatch group `/aegis/<deployment>/<service>`: JSON strings
   * (each line's `ts` is its timestamp, its `instance` its stream) or lines with their own.
   */
  logs?: Readonly<Record<string, readonly (string | CloudLogLine)[]>>;
  /**
   * Seed the cloud side's own auth failures (a quiet baseline, and the burst when selected) in
   * CloudWatch (default true). buildSandbox turns it off: its logs carry the auth failures, so
   * they are counted in exactly one place.
   */
  authFailures?: boolean;
  /** Hostile strings in the names that reach findings (see plan.ts HOSTILE). */
  hostile?: boolean;
  /** Directory for the Vault token file (as Vault Agent writes it). */
  dir: string;
  now?: Date;
  /** Exercise the clients' pagination: small pages and empty pages with tokens (default true). */
  smallPages?: boolean;
  /** Fields of the runtime secret (secret/data/aegis/runtime) to set instead of the defaults; `undefined` removes one. */
  runtime?: Readonly<Record<string, unknown>>;
  /** Fixed ports (0 = any). */
  ports?: { ssm?: number; logs?: number; vault?: number };
}

/** The raw (YAML-shaped) `sources` entries that point the auditor at the emulators. */
export interface CloudConfigFragment {
  logs: { cloudwatch: Record<string, unknown> };
  secrets: { ssm: Record<string, unknown>; vault: Record<string, unknown> };
  /** The Transit-signed model artifacts (`sources.artifacts`). */
  artifacts: Record<string, unknown>;
}

export interface CloudSandbox {
  ssmUrl: string;
  logsUrl: string;
  vaultUrl: string;
  tokenFile: string;
  /** Merge into the config's `sources` (deep-merge `logs` and `secrets` with the file sources). */
  configFragment: CloudConfigFragment;
  manifestEntries: CloudManifestEntry[];
  /** Every secret value seeded (for canary tests): SSM and Vault values, the auditor token, the AWS secret key. */
  secretValues: string[];
  emulators: { ssm: SsmEmulator; logs: LogsEmulator; vault: VaultEmulator };
  /** Stops the emulators and takes back the AWS credential variables (when no other cloud sandbox needs them). */
  stop(): Promise<void>;
}

/**
 * AWS credentials. The auditor's AWS sources take static credentials only from environment
 * variables named in config (`credentials_env`), never literally, so the sandbox's config names
 * these two variables and the sandbox sets them while it runs: the SDK then never walks the
 * default provider chain (no IMDS, no ~/.aws of the user), and a forked `aegis-audit run` inherits
 * them. They are set on the first start and removed (or a previous value restored) when the last
 * running cloud sandbox of the process stops, so nothing lingers in the parent's environment. The
 * emulators accept any credentials: from another shell, any non-empty values work.
 */
export const SANDBOX_AWS_ENV = { access_key_id: 'AEGIS_SANDBOX_AWS_ACCESS_KEY_ID', secret_access_key: 'AEGIS_SANDBOX_AWS_SECRET_ACCESS_KEY' } as const;
const SANDBOX_AWS_VALUES = {
  access_key_id: 'AKIDSANDBOXEXAMPLE00',
  // Fixed, so concurrent sandboxes of one process agree; treated as a secret all the same.
  secret_access_key: createHash('sha256').update('aegis-sandbox aws secret access key').digest('hex').slice(0, 40),
} as const;
let credentialUsers = 0;
let savedEnv: Partial<Record<keyof typeof SANDBOX_AWS_ENV, string | undefined>> = {};

function acquireAwsEnv(): void {
  if (credentialUsers++ > 0) return;
  savedEnv = {};
  for (const k of Object.keys(SANDBOX_AWS_ENV) as (keyof typeof SANDBOX_AWS_ENV)[]) {
    savedEnv[k] = process.env[SANDBOX_AWS_ENV[k]];
    process.env[SANDBOX_AWS_ENV[k]] = SANDBOX_AWS_VALUES[k];
  }
}

function releaseAwsEnv(): void {
  if (credentialUsers === 0 || --credentialUsers > 0) return;
  for (const k of Object.keys(SANDBOX_AWS_ENV) as (keyof typeof SANDBOX_AWS_ENV)[]) {
    const prev = savedEnv[k];
    if (prev === undefined) delete process.env[SANDBOX_AWS_ENV[k]];
    else process.env[SANDBOX_AWS_ENV[k]] = prev;
  }
}

const REGION = 'us-east-1';
const DOCUMENT = 'aegis-deploy';
const INSTANCES = ['i-0a1b2c3d4e5f60001', 'i-0a1b2c3d4e5f60002'];
const DAY = 86_400_000;
const MIN = 60_000;
/** Model artifacts under the artifacts directory (keys), as Aegis's packaging names them. */
export const MODEL_ARTIFACTS = [
  'resnet50/1/model.tar.gz',
  'bert-base/3/model.tar.gz',
  'aegis-safety/2026-11/model.onnx',
  'whisper-small/7/model.safetensors',
  'clip-vit/2/model.tar.gz',
] as const;
/** A deploy-command parameter name that tries to run script wherever it is rendered. */
export const HOSTILE_PARAMETER = 'INTERNAL_SECRET"><img src=x onerror="window.__pwned=3">';

/** Deterministic hex from the seed and a label. */
function hex(seed: string, label: string, n: number): string {
  return createHash('sha256').update(`${seed}\0${label}`).digest('hex').slice(0, n);
}

function uuid(seed: string, label: string): string {
  const h = hex(seed, label, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function selectCloudViolations(requested: readonly string[] = []): Set<CloudViolationId> {
  const out = new Set<CloudViolationId>();
  const byId = new Map(listViolations().map((v) => [v.id as string, v]));
  for (const r of requested) {
    for (const id of CLOUD_VIOLATION_IDS) {
      if (r === 'all' || r === id || r === byId.get(id)?.check) out.add(id);
    }
  }
  return out;
}

/** The service a role falls to: the preferred one if the deployment has it, else a stable pick. */
function pick(services: readonly string[], preferred: string, offset: number): string {
  return services.includes(preferred) ? preferred : services[offset % services.length];
}

/** What the cloud violations are called in a deployment: pure, so the plan can declare their findings. */
export function cloudNames(seed: string | number, deployment: string, services: readonly string[], opts: { hostile?: boolean } = {}): CloudNames {
  const s = String(seed);
  const path = `/aegis/${deployment}`;
  return {
    path,
    literalCommand: uuid(s, 'deploy-literal'),
    literalParameter: opts.hostile ? HOSTILE_PARAMETER : 'INTERNAL_SECRET',
    insecureParameter: `${path}/${pick(services, 'insight', 4)}/GROQ_API_KEY`,
    outputCommand: uuid(s, 'deploy-output'),
    outputInstance: INSTANCES[1],
    rootTokenService: pick(services, 'insight', 4),
    noExpiryTokenService: pick(services, 'api', 2),
    runtimeKvPath: 'secret/data/aegis/runtime',
    runtimeMissingField: 'clients/allowed',
    unsignedArtifact: MODEL_ARTIFACTS[1],
    errorBodyArtifact: MODEL_ARTIFACTS[2],
    wrongKeyArtifact: MODEL_ARTIFACTS[3],
  };
}

export async function startCloudSandbox(opts: CloudSandboxOptions): Promise<CloudSandbox> {
  const seed = String(opts.seed ?? 'aegis');
  const now = (opts.now ?? new Date()).getTime();
  const env = opts.deployment;
  const services = [...opts.services];
  if (services.length === 0) throw new Error('startCloudSandbox: no services');
  const ownAuthFailures = opts.authFailures ?? true;
  const selected = selectCloudViolations(opts.violations);
  if (!ownAuthFailures) selected.delete('auth-failure-burst'); // the caller's logs carry it
  const names = cloudNames(seed, env, services, { hostile: opts.hostile });
  const stores = new Set(opts.secretStores ?? ['ssm', 'vault']);
  const small: PagingPolicy | undefined = opts.smallPages === false ? undefined : { maxPageSize: 4, emptyPageEvery: 3, trailingEmptyPage: true };
  const secretValues: string[] = [SANDBOX_AWS_VALUES.secret_access_key];

  const ssm = new SsmEmulator({
    region: REGION,
    paging: small ? { GetParametersByPath: small, DescribeParameters: small, ListCommands: small, ListCommandInvocations: small } : {},
  });
  const logs = new LogsEmulator({ region: REGION, filterPaging: small ?? { trailingEmptyPage: true } });
  const vault = new VaultEmulator({ now: () => now });
  const running: { close(): Promise<void> }[] = [];
  try {
    const [ssmRun, logsRun, vaultRun] = await Promise.all([
      ssm.start({ port: opts.ports?.ssm }),
      logs.start({ port: opts.ports?.logs }),
      vault.start({ port: opts.ports?.vault }),
    ]);
    running.push(ssmRun, logsRun, vaultRun);

    // ---- secrets: SSM Parameter Store and Vault KV ------------------------------------------
    const secrets: Record<string, Record<string, string>> = {};
    for (const [svc, vars] of Object.entries(opts.secrets ?? {})) secrets[svc] = { ...vars };
    const identity = pick(services, 'identity', 0);
    // The output violation echoes JWT_SECRET_KEY: make sure the deployment has one to find.
    if (!Object.values(secrets).some((v) => v.JWT_SECRET_KEY)) {
      secrets[identity] = { ...secrets[identity], JWT_SECRET_KEY: `jwt-${hex(seed, 'jwt', 40)}` };
    }
    const path = names.path;
    for (const [svc, vars] of Object.entries(secrets)) {
      for (const [name, value] of Object.entries(vars)) {
        secretValues.push(value);
        if (stores.has('ssm')) ssm.putParameter({ name: `${path}/${svc}/${name}`, type: 'SecureString', value, lastModified: new Date(now - 7 * DAY) });
      }
      if (stores.has('vault') && Object.keys(vars).length > 0) vault.putKv('secret', `aegis/${svc}`, vars, { createdTime: new Date(now - 7 * DAY) });
    }
    for (const svc of services) ssm.putParameter({ name: `${path}/${svc}/LOG_LEVEL`, type: 'String', value: 'info', lastModified: new Date(now - 30 * DAY) });
    if (selected.has('ssm-insecure-parameter')) {
      const value = `gsk_${hex(seed, 'groq', 40)}`;
      secretValues.push(value);
      ssm.putParameter({ name: names.insecureParameter, type: 'String', value, lastModified: new Date(now - 3 * DAY) });
    }

    // ---- deploy-command history ---------------------------------------------------------------
    const ref = (svc: string, name: string) => `{{ssm-secure:${path}/${svc}/${name}}}`;
    const gateway = pick(services, 'gateway', 1);
    for (let i = 0; i < 6; i++) {
      ssm.addCommand({
        commandId: uuid(seed, `deploy-${i}`),
        documentName: DOCUMENT,
        requestedAt: new Date(now - (i * 4 + 1) * DAY),
        instanceIds: INSTANCES,
        parameters: {
          commands: ['cd /opt/aegis', `./deploy.sh --env ${env} --release r${100 - i}`, `export INTERNAL_SECRET={{ssm:${path}/${gateway}/INTERNAL_SECRET}}`],
          INTERNAL_SECRET: [ref(gateway, 'INTERNAL_SECRET')],
          workingDirectory: [''],
        },
        invocations: INSTANCES.map((instanceId) => ({ instanceId, pluginName: 'deploy', output: `release r${100 - i} deployed\nhealth ok` })),
      });
    }
    // Older than the 30-day history, and another document: neither is a deploy in the window.
    ssm.addCommand({
      commandId: uuid(seed, 'deploy-stale'),
      documentName: DOCUMENT,
      requestedAt: new Date(now - 45 * DAY),
      instanceIds: INSTANCES,
      parameters: { INTERNAL_SECRET: ['stale-literal-outside-history'] },
    });
    ssm.addCommand({ commandId: uuid(seed, 'uptime'), documentName: 'AWS-RunShellScript', requestedAt: new Date(now - 2 * DAY), instanceIds: INSTANCES.slice(0, 1), parameters: { commands: ['uptime'] } });
    if (selected.has('ssm-literal-secret')) {
      const value = secrets[gateway]?.INTERNAL_SECRET ?? `internal-${hex(seed, 'literal', 32)}`;
      if (!secrets[gateway]?.INTERNAL_SECRET) secretValues.push(value);
      ssm.addCommand({
        commandId: names.literalCommand,
        documentName: DOCUMENT,
        requestedAt: new Date(now - 2 * DAY - 3_600_000),
        instanceIds: INSTANCES,
        parameters: { commands: ['cd /opt/aegis', `./deploy.sh --env ${env} --hotfix`], [names.literalParameter]: [value], workingDirectory: [''] },
        invocations: INSTANCES.map((instanceId) => ({ instanceId, pluginName: 'deploy', output: 'hotfix deployed' })),
      });
    }
    if (selected.has('ssm-secret-in-output')) {
      const jwt = Object.values(secrets).find((v) => v.JWT_SECRET_KEY)?.JWT_SECRET_KEY ?? '';
      ssm.addCommand({
        commandId: names.outputCommand,
        documentName: DOCUMENT,
        requestedAt: new Date(now - 5 * DAY - 3_600_000),
        instanceIds: INSTANCES,
        parameters: { commands: ['cd /opt/aegis', './deploy.sh --debug'], workingDirectory: [''] },
        invocations: INSTANCES.map((instanceId) => ({
          instanceId,
          pluginName: 'deploy',
          output: instanceId === names.outputInstance ? `debug: environment\nJWT_SECRET_KEY=${jwt}\ndeployed` : 'debug: environment\nLOG_LEVEL=info\ndeployed',
        })),
      });
    }

    // ---- CloudWatch log groups ----------------------------------------------------------------
    const groups: Record<string, string> = {};
    for (const svc of services) {
      const group = `/aegis/${env}/${svc}`;
      groups[svc] = group;
      logs.createLogGroup(group, now - 90 * DAY);
    }
    for (const [svc, lines] of Object.entries(opts.logs ?? {})) {
      const group = groups[svc];
      if (!group) continue;
      const byStream = new Map<string, { timestamp: number; message: string }[]>();
      for (const line of lines) {
        const { timestamp, message, stream } = typeof line === 'string' ? fromJsonLine(line, svc, now) : line;
        // PutLogEvents refuses empty messages: a blank line never reaches CloudWatch.
        if (message === '') continue;
        const list = byStream.get(stream) ?? [];
        list.push({ timestamp: Math.round(timestamp), message });
        byStream.set(stream, list);
      }
      for (const [stream, events] of byStream) logs.putEvents(group, stream, events);
    }
    if (ownAuthFailures) {
      // Auth failures: a quiet baseline of a few per 15 minutes for the last 3.5 hours.
      const W = 15 * MIN;
      for (const svc of [gateway, identity].filter((s, i, a) => a.indexOf(s) === i)) {
        const events: { timestamp: number; message: string }[] = [];
        for (let w = 0; w < 14; w++) {
          const n = 2 + (Number.parseInt(hex(seed, `quiet-${svc}-${w}`, 2), 16) % 3);
          for (let j = 0; j < n; j++) {
            const ts = now - w * W - 30_000 - j * 97_000;
            events.push({ timestamp: ts, message: JSON.stringify({ ts: new Date(ts).toISOString(), service: svc, event: 'auth_failure', reason: 'invalid_token', client: `198.51.100.${(w + j) % 20}` }) });
          }
        }
        if (selected.has('auth-failure-burst') && svc === gateway) {
          for (let j = 0; j < 120; j++) {
            const ts = now - 60_000 - j * 5_000;
            const client = j % 3 === 0 ? '198.51.100.77' : `203.0.113.${7 + (j % 4)}`;
            events.push({ timestamp: ts, message: JSON.stringify({ ts: new Date(ts).toISOString(), service: svc, event: 'auth_failure', reason: 'invalid_api_key', client }) });
          }
        }
        logs.putEvents(groups[svc], `${svc}-auth`, events.sort((a, b) => a.timestamp - b.timestamp));
      }
    }

    // ---- Vault: runtime secrets, policies, tokens ---------------------------------------------
    const runtime: Record<string, unknown> = {
      oidc_jwks_uri: `https://idp.${env}.aegis.example/.well-known/jwks.json`,
      model_signing_pubkey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n',
      'clients/allowed': ['client-alpha', 'client-beta'],
    };
    for (const [k, v] of Object.entries(opts.runtime ?? {})) {
      if (v === undefined) delete runtime[k];
      else runtime[k] = v;
    }
    if (selected.has('runtime-secret-missing')) delete runtime[names.runtimeMissingField];
    vault.putKv('secret', 'aegis/runtime', runtime, { createdTime: new Date(now - 20 * DAY) });
    vault.putPolicy('aegis-auditor', {
      'secret/data/aegis/*': ['read'],
      'auth/token/lookup-accessor': ['update'],
      [`transit/keys/${MODEL_SIGNING_KEY}`]: ['read'],
      [`transit/verify/${MODEL_SIGNING_KEY}`]: ['update'],
    });
    const auditor = vault.createToken({ policies: ['aegis-auditor'], ttl: 3600, renewable: true, displayName: 'aegis-audit' });
    secretValues.push(auditor.id);
    const accessors: Record<string, string> = {};
    for (const svc of services) {
      vault.putPolicy(`aegis-${svc}`, { [`secret/data/aegis/${svc}`]: ['read'], 'secret/data/aegis/runtime': ['read'] });
      const accessor = `acc-${svc}-${hex(seed, `acc-${svc}`, 12)}`;
      if (selected.has('vault-root-token') && svc === names.rootTokenService) {
        vault.createToken({ policies: [], root: true, accessor });
      } else if (selected.has('vault-token-no-expiry') && svc === names.noExpiryTokenService) {
        vault.createToken({ policies: [`aegis-${svc}`], ttl: 0, renewable: false, displayName: svc, accessor });
      } else {
        vault.createToken({ policies: [`aegis-${svc}`], ttl: 1800, renewable: true, displayName: svc, accessor });
      }
      accessors[svc] = accessor;
    }
    await mkdir(opts.dir, { recursive: true });
    await writeModelArtifacts(vaultRun.url, vault, join(opts.dir, 'models'), seed, names, selected);
    const tokenFile = join(opts.dir, 'vault-token');
    // As Vault Agent's file sink writes it: the bare token, here with a trailing newline.
    await writeFile(tokenFile, `${auditor.id}\n`, { mode: 0o600 });

    const manifest = [...selected].flatMap((id) => cloudEntries(id, names));
    // A fresh object per source: a shared one would be written to YAML as an anchor and alias.
    const aws = () => ({ region: REGION, credentials_env: { ...SANDBOX_AWS_ENV }, max_attempts: 3, timeout: '5s' });
    acquireAwsEnv();
    let stopped = false;

    return {
      ssmUrl: ssmRun.url,
      logsUrl: logsRun.url,
      vaultUrl: vaultRun.url,
      tokenFile,
      configFragment: {
        logs: { cloudwatch: { ...aws(), endpoint: logsRun.url, groups } },
        secrets: {
          ssm: { ...aws(), endpoint: ssmRun.url, path, deploy_document: DOCUMENT, history: '30d' },
          vault: { address: vaultRun.url, token_file: tokenFile, kv_mount: 'secret', path_prefix: 'aegis', runtime_path: 'aegis/runtime', token_accessors: accessors, timeout: '5s' },
        },
        artifacts: { dir: join(opts.dir, 'models') },
      },
      manifestEntries: manifest,
      secretValues: [...new Set(secretValues)],
      emulators: { ssm, logs, vault },
      async stop() {
        if (stopped) return;
        stopped = true;
        releaseAwsEnv();
        await Promise.all(running.map((r) => r.close()));
      },
    };
  } catch (e) {
    await Promise.all(running.map((r) => r.close().catch(() => undefined)));
    throw e;
  }
}

/** The Transit key the artifacts are signed with, and a developer's key the wrong-key violation uses. */
export const MODEL_SIGNING_KEY = 'aegis-model-sign';
const DEV_SIGNING_KEY = 'aegis-model-sign-dev';

/**
 * Model artifacts under `dir`, each signed as Aegis's CI does it: `input` = base64 of the
 * SHA-256 of the file, `POST /v1/transit/sign/<key>` over HTTP with a signer token, and the raw
 * response body saved as `<artifact>.sig.json` (one under the `.sig` name the CI upload uses,
 * one with a `.sha256` beside it). The violations leave one unsigned, save Vault's 403 error
 * body for one (a token without the sign grant, the response unchecked), and sign one with the
 * developer key.
 */
async function writeModelArtifacts(url: string, vault: VaultEmulator, dir: string, seed: string, names: CloudNames, selected: ReadonlySet<ViolationId>): Promise<void> {
  vault.createTransitKey(MODEL_SIGNING_KEY, { type: 'ecdsa-p256' });
  vault.createTransitKey(DEV_SIGNING_KEY, { type: 'ecdsa-p256' });
  vault.putPolicy('aegis-model-signer', { [`transit/sign/${MODEL_SIGNING_KEY}`]: ['update'], [`transit/sign/${DEV_SIGNING_KEY}`]: ['update'] });
  const signer = vault.createToken({ policies: ['aegis-model-signer'], ttl: 600, displayName: 'ci-sign' });
  const unprivileged = vault.createToken({ policies: [], ttl: 600, displayName: 'ci-misconfigured' });
  const sign = async (token: string, key: string, digest: string): Promise<string> => {
    const res = await fetch(`${url}/v1/transit/sign/${key}`, { method: 'POST', headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' }, body: JSON.stringify({ input: digest }) });
    return res.text(); // whatever Vault answered, as `curl -sS` without -f saves it
  };
  for (const [i, key] of MODEL_ARTIFACTS.entries()) {
    const bytes = Buffer.concat(Array.from({ length: 16 }, (_, j) => createHash('sha256').update(`${seed}\0${key}\0${j}`).digest()));
    const body = Buffer.concat(Array.from({ length: 64 }, () => bytes)); // 32 KiB, deterministic
    const path = join(dir, key);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, body);
    const digest = createHash('sha256').update(body).digest();
    if (key === names.unsignedArtifact && selected.has('model-artifact-unsigned')) continue;
    const errorBody = key === names.errorBodyArtifact && selected.has('model-artifact-error-body');
    const wrongKey = key === names.wrongKeyArtifact && selected.has('model-artifact-wrong-key');
    const response = await sign(errorBody ? unprivileged.id : signer.id, wrongKey ? DEV_SIGNING_KEY : MODEL_SIGNING_KEY, digest.toString('base64'));
    await writeFile(`${path}${i === 4 ? '.sig' : '.sig.json'}`, response);
    if (i === 0) await writeFile(`${path}.sha256`, `${digest.toString('hex')}  ${key.split('/').pop()}\n`);
  }
}

/** A JSON line's own time and instance (its stream); other lines get the sandbox's now. */
function fromJsonLine(message: string, svc: string, now: number): CloudLogLine {
  let timestamp = now;
  let stream = `${svc}-1`;
  try {
    const o = JSON.parse(message) as { ts?: unknown; instance?: unknown };
    if (typeof o.ts === 'string' || typeof o.ts === 'number') timestamp = new Date(o.ts).getTime();
    if (typeof o.instance === 'string') stream = o.instance;
  } catch {
    // Not JSON: kept as is; the auditor must ignore and count it.
  }
  if (!Number.isFinite(timestamp)) timestamp = now;
  return { timestamp, message, stream };
}
