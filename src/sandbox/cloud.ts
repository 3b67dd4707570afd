/**
 * The sandbox's cloud side: the SSM, CloudWatch Logs and Vault emulators on 127.0.0.1,
 * seeded with a deployment's parameters, deploy-command history, log groups, runtime secrets
 * and tokens, plus the cloud violations asked for. Returns the config fragment that points
 * the auditor at them and the manifest entries (check + resource, as docs/findings.md builds
 * them) that the seeded violations must produce.
 *
 * The auditor reaches the emulators only over HTTP through the real clients. Static AWS
 * credentials for the sandbox are put in the environment under the names the config fragment
 * gives (`credentials_env`), so the SDK never walks the default provider chain (no IMDS).
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LogsEmulator, SsmEmulator, VaultEmulator, type PagingPolicy } from './emulators';
import { resource } from '../core/finding';

export const CLOUD_VIOLATION_IDS = [
  'ssm-literal-secret',
  'ssm-insecure-parameter',
  'ssm-secret-in-output',
  'auth-failure-spike',
  'runtime-secret-missing',
  'vault-root-token',
  'vault-token-no-expiry',
] as const;
export type CloudViolationId = (typeof CLOUD_VIOLATION_IDS)[number];

/** Which check reports each cloud violation (a check id selects all of its violations). */
export const CLOUD_VIOLATION_CHECK: Readonly<Record<CloudViolationId, string>> = {
  'ssm-literal-secret': 'ssm-persisted-secrets',
  'ssm-insecure-parameter': 'ssm-persisted-secrets',
  'ssm-secret-in-output': 'ssm-persisted-secrets',
  'auth-failure-spike': 'auth-failure-spike',
  'runtime-secret-missing': 'runtime-secrets-present',
  'vault-root-token': 'vault-token-hygiene',
  'vault-token-no-expiry': 'vault-token-hygiene',
};

export interface CloudManifestEntry {
  check: string;
  resource: string;
}

export interface CloudSandboxOptions {
  /** Makes command ids, accessors and client addresses reproducible. */
  seed?: string | number;
  deployment: string;
  services: readonly string[];
  /** Cloud violation ids, check ids (all of that check's cloud violations) or `all`; unknown ids are ignored. */
  violations?: readonly string[];
  /** Secret values per service (service → NAME → value), written to SSM `<path>/<service>/<NAME>` and Vault `secret/data/aegis/<service>`. */
  secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Where the secrets go; default both. */
  secretStores?: readonly ('ssm' | 'vault')[];
  /** JSON log lines per service for CloudWatch group `/aegis/<deployment>/<service>`; each line's `ts` is its timestamp. */
  logs?: Readonly<Record<string, readonly string[]>>;
  /** Directory for the Vault token file (as Vault Agent writes it). */
  dir: string;
  now?: Date;
  /** Exercise the clients' pagination: small pages and empty pages with tokens (default true). */
  smallPages?: boolean;
  /** Fixed ports (0 = any). */
  ports?: { ssm?: number; logs?: number; vault?: number };
}

/** The raw (YAML-shaped) `sources` entries that point the auditor at the emulators. */
export interface CloudConfigFragment {
  logs: { cloudwatch: Record<string, unknown> };
  secrets: { ssm: Record<string, unknown>; vault: Record<string, unknown> };
}

export interface CloudSandbox {
  ssmUrl: string;
  logsUrl: string;
  vaultUrl: string;
  tokenFile: string;
  /** Merge into the config's `sources` (deep-merge `logs` and `secrets` with the file sources). */
  configFragment: CloudConfigFragment;
  manifestEntries: CloudManifestEntry[];
  /** Every secret value seeded (for canary tests): SSM and Vault values, the auditor token. */
  secretValues: string[];
  emulators: { ssm: SsmEmulator; logs: LogsEmulator; vault: VaultEmulator };
  stop(): Promise<void>;
}

export const SANDBOX_AWS_ENV = { access_key_id: 'AEGIS_SANDBOX_AWS_ACCESS_KEY_ID', secret_access_key: 'AEGIS_SANDBOX_AWS_SECRET_ACCESS_KEY' } as const;
const REGION = 'us-east-1';
const DOCUMENT = 'aegis-deploy';
const INSTANCES = ['i-0a1b2c3d4e5f60001', 'i-0a1b2c3d4e5f60002'];
const DAY = 86_400_000;
const MIN = 60_000;

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
  for (const r of requested) {
    for (const id of CLOUD_VIOLATION_IDS) {
      if (r === 'all' || r === id || r === CLOUD_VIOLATION_CHECK[id]) out.add(id);
    }
  }
  return out;
}

/** The service a role falls to: the preferred one if the deployment has it, else a stable pick. */
function pick(services: readonly string[], preferred: string, offset: number): string {
  return services.includes(preferred) ? preferred : services[offset % services.length];
}

export async function startCloudSandbox(opts: CloudSandboxOptions): Promise<CloudSandbox> {
  const seed = String(opts.seed ?? 'aegis');
  const now = (opts.now ?? new Date()).getTime();
  const env = opts.deployment;
  const services = [...opts.services];
  if (services.length === 0) throw new Error('startCloudSandbox: no services');
  const selected = selectCloudViolations(opts.violations);
  const stores = new Set(opts.secretStores ?? ['ssm', 'vault']);
  const small: PagingPolicy | undefined = opts.smallPages === false ? undefined : { maxPageSize: 4, emptyPageEvery: 3, trailingEmptyPage: true };
  const manifest: CloudManifestEntry[] = [];
  const secretValues: string[] = [];

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
    const path = `/aegis/${env}`;
    for (const [svc, vars] of Object.entries(secrets)) {
      for (const [name, value] of Object.entries(vars)) {
        secretValues.push(value);
        if (stores.has('ssm')) ssm.putParameter({ name: `${path}/${svc}/${name}`, type: 'SecureString', value, lastModified: new Date(now - 7 * DAY) });
      }
      if (stores.has('vault') && Object.keys(vars).length > 0) vault.putKv('secret', `aegis/${svc}`, vars, { createdTime: new Date(now - 7 * DAY) });
    }
    for (const svc of services) ssm.putParameter({ name: `${path}/${svc}/LOG_LEVEL`, type: 'String', value: 'info', lastModified: new Date(now - 30 * DAY) });
    if (selected.has('ssm-insecure-parameter')) {
      const svc = pick(services, 'insight', 4);
      const name = `${path}/${svc}/GROQ_API_KEY`;
      const value = `gsk_${hex(seed, 'groq', 40)}`;
      secretValues.push(value);
      ssm.putParameter({ name, type: 'String', value, lastModified: new Date(now - 3 * DAY) });
      manifest.push({ check: 'ssm-persisted-secrets', resource: resource({ parameter: name }) });
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
    ssm.addCommand({ documentName: DOCUMENT, requestedAt: new Date(now - 45 * DAY), instanceIds: INSTANCES, parameters: { INTERNAL_SECRET: ['stale-literal-outside-history'] } });
    ssm.addCommand({ documentName: 'AWS-RunShellScript', requestedAt: new Date(now - 2 * DAY), instanceIds: INSTANCES.slice(0, 1), parameters: { commands: ['uptime'] } });
    if (selected.has('ssm-literal-secret')) {
      const commandId = uuid(seed, 'deploy-literal');
      const value = secrets[gateway]?.INTERNAL_SECRET ?? `internal-${hex(seed, 'literal', 32)}`;
      if (!secrets[gateway]?.INTERNAL_SECRET) secretValues.push(value);
      ssm.addCommand({
        commandId,
        documentName: DOCUMENT,
        requestedAt: new Date(now - 2 * DAY - 3_600_000),
        instanceIds: INSTANCES,
        parameters: { commands: ['cd /opt/aegis', `./deploy.sh --env ${env} --hotfix`], INTERNAL_SECRET: [value], workingDirectory: [''] },
        invocations: INSTANCES.map((instanceId) => ({ instanceId, pluginName: 'deploy', output: 'hotfix deployed' })),
      });
      manifest.push({ check: 'ssm-persisted-secrets', resource: resource({ command: commandId, parameter: 'INTERNAL_SECRET' }) });
    }
    if (selected.has('ssm-secret-in-output')) {
      const commandId = uuid(seed, 'deploy-output');
      const jwt = Object.values(secrets).find((v) => v.JWT_SECRET_KEY)?.JWT_SECRET_KEY ?? '';
      ssm.addCommand({
        commandId,
        documentName: DOCUMENT,
        requestedAt: new Date(now - 5 * DAY - 3_600_000),
        instanceIds: INSTANCES,
        parameters: { commands: ['cd /opt/aegis', './deploy.sh --debug'], workingDirectory: [''] },
        invocations: [
          { instanceId: INSTANCES[0], pluginName: 'deploy', output: 'debug: environment\nLOG_LEVEL=info\ndeployed' },
          { instanceId: INSTANCES[1], pluginName: 'deploy', output: `debug: environment\nJWT_SECRET_KEY=${jwt}\ndeployed` },
        ],
      });
      manifest.push({ check: 'ssm-persisted-secrets', resource: resource({ command: commandId, instance: INSTANCES[1] }) });
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
      for (const message of lines) {
        let ts = now;
        let stream = `${svc}-1`;
        try {
          const o = JSON.parse(message) as { ts?: unknown; instance?: unknown };
          if (typeof o.ts === 'string' || typeof o.ts === 'number') ts = new Date(o.ts).getTime();
          if (typeof o.instance === 'string') stream = o.instance;
        } catch {
          // Not JSON: kept as is; the auditor must ignore and count it.
        }
        if (!Number.isFinite(ts)) ts = now;
        const list = byStream.get(stream) ?? [];
        list.push({ timestamp: Math.round(ts), message });
        byStream.set(stream, list);
      }
      for (const [stream, events] of byStream) logs.putEvents(group, stream, events);
    }
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
      if (selected.has('auth-failure-spike') && svc === gateway) {
        for (let j = 0; j < 120; j++) {
          const ts = now - 60_000 - j * 5_000;
          const client = j % 3 === 0 ? '198.51.100.77' : `203.0.113.${7 + (j % 4)}`;
          events.push({ timestamp: ts, message: JSON.stringify({ ts: new Date(ts).toISOString(), service: svc, event: 'auth_failure', reason: 'invalid_api_key', client }) });
        }
        manifest.push({ check: 'auth-failure-spike', resource: resource({ window: 'current' }) });
      }
      logs.putEvents(groups[svc], `${svc}-auth`, events.sort((a, b) => a.timestamp - b.timestamp));
    }

    // ---- Vault: runtime secrets, policies, tokens ---------------------------------------------
    const runtime: Record<string, unknown> = {
      oidc_jwks_uri: `https://idp.${env}.aegis.example/.well-known/jwks.json`,
      model_signing_pubkey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n',
      'clients/allowed': ['client-alpha', 'client-beta'],
    };
    if (selected.has('runtime-secret-missing')) {
      delete runtime['clients/allowed'];
      manifest.push({ check: 'runtime-secrets-present', resource: resource({ path: 'secret/data/aegis/runtime', field: 'clients/allowed' }) });
    }
    vault.putKv('secret', 'aegis/runtime', runtime, { createdTime: new Date(now - 20 * DAY) });
    vault.putPolicy('aegis-auditor', { 'secret/data/aegis/*': ['read'], 'auth/token/lookup-accessor': ['update'] });
    const auditor = vault.createToken({ policies: ['aegis-auditor'], ttl: 3600, renewable: true, displayName: 'aegis-audit' });
    secretValues.push(auditor.id);
    const accessors: Record<string, string> = {};
    const rootSvc = pick(services, 'insight', 4);
    const noExpirySvc = pick(services, 'api', 2);
    for (const svc of services) {
      vault.putPolicy(`aegis-${svc}`, { [`secret/data/aegis/${svc}`]: ['read'], 'secret/data/aegis/runtime': ['read'] });
      const accessor = `acc-${svc}-${hex(seed, `acc-${svc}`, 12)}`;
      if (selected.has('vault-root-token') && svc === rootSvc) {
        vault.createToken({ policies: [], root: true, accessor });
        manifest.push({ check: 'vault-token-hygiene', resource: resource({ token: svc }) });
      } else if (selected.has('vault-token-no-expiry') && svc === noExpirySvc) {
        vault.createToken({ policies: [`aegis-${svc}`], ttl: 0, renewable: false, displayName: svc, accessor });
        manifest.push({ check: 'vault-token-hygiene', resource: resource({ token: svc }) });
      } else {
        vault.createToken({ policies: [`aegis-${svc}`], ttl: 1800, renewable: true, displayName: svc, accessor });
      }
      accessors[svc] = accessor;
    }
    await mkdir(opts.dir, { recursive: true });
    const tokenFile = join(opts.dir, 'vault-token');
    // As Vault Agent's file sink writes it: the bare token, here with a trailing newline.
    await writeFile(tokenFile, `${auditor.id}\n`, { mode: 0o600 });

    process.env[SANDBOX_AWS_ENV.access_key_id] = 'AKIDSANDBOXEXAMPLE00';
    process.env[SANDBOX_AWS_ENV.secret_access_key] = `sandbox-${hex(seed, 'aws-secret', 32)}`;
    const aws = { region: REGION, credentials_env: { ...SANDBOX_AWS_ENV }, max_attempts: 3, timeout: '5s' };

    return {
      ssmUrl: ssmRun.url,
      logsUrl: logsRun.url,
      vaultUrl: vaultRun.url,
      tokenFile,
      configFragment: {
        logs: { cloudwatch: { ...aws, endpoint: logsRun.url, groups } },
        secrets: {
          ssm: { ...aws, endpoint: ssmRun.url, path, deploy_document: DOCUMENT, history: '30d' },
          vault: { address: vaultRun.url, token_file: tokenFile, kv_mount: 'secret', path_prefix: 'aegis', runtime_path: 'aegis/runtime', token_accessors: accessors, timeout: '5s' },
        },
      },
      manifestEntries: manifest,
      secretValues,
      emulators: { ssm, logs, vault },
      async stop() {
        await Promise.all(running.map((r) => r.close()));
      },
    };
  } catch (e) {
    await Promise.all(running.map((r) => r.close().catch(() => undefined)));
    throw e;
  }
}
