/**
 * `buildSandbox`: a complete local Aegis deployment on a real Postgres, seeded with a declared
 * set of violations — the audit database (chain, roots, historical keys, API keys), the
 * services' logs, env files and PEM files, and (by default) its cloud side: SSM Parameter
 * Store and Run Command history, CloudWatch Logs and Vault on loopback emulators — plus the
 * one `audit.yaml` that points the auditor at all of it, so every check of the catalog runs,
 * and a `manifest.json` listing every finding the checks will report. audit.yaml names every
 * file relative to itself.
 *
 * Deterministic: the same seed, row count, violations and clock give the same deployment.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { stringify } from 'yaml';
import { startEmbeddedPostgres, type RunningPostgres } from './embedded-postgres';
import { ChainWriter, type RowSpec, type RowTamper } from './chain';
import { createSchema, DEFAULT_TABLES, ident, qualified, type SandboxTables } from './schema';
import { buildPlan, rotationPayload, type Plan } from './plan';
import { nextActivity, tamperPayload } from './activity';
import { Prng } from './prng';
import { resolveViolations, type ManifestEntry, type ViolationId } from './violations';
import { SecretLedger, writeDeployTree, writeEnvFiles, writeLogs, writePemFiles, writeRepoTree, type WrittenLogs } from './files';
import { REPO_DIR, REPO_ROOT } from './repo-tree';
import { startCloudSandbox, type CloudSandbox } from './cloud';
import { DEPLOY_TREE } from './deploy-tree';
import { startIdentitySandbox, type IdentitySandbox } from './identity';

export const DEFAULT_SERVICES: readonly string[] = ['identity', 'gateway', 'api', 'audit', 'insight'];

export interface BuildOptions {
  /** Folder to write the deployment's files into (created if missing). */
  dir: string;
  seed: number;
  /** Audit rows to write (at least 40). */
  rows: number;
  /** `all`, `none`, or violation ids and check ids (see listViolations()). */
  violations: 'all' | 'none' | readonly string[];
  /** A Postgres superuser URL: the sandbox creates a fresh database there. Without it, it starts its own embedded Postgres. */
  adminUrl?: string;
  services?: readonly string[];
  deployment?: string;
  /** The service whose env file holds the signing keys (default `audit`). */
  signingService?: string;
  schema?: string;
  tables?: Partial<SandboxTables>;
  /** The clock the deployment's history is laid out against (default: now). */
  now?: Date;
  /** Keep the database created in `adminUrl`'s server when the sandbox stops. */
  keepDatabase?: boolean;
  /** Embedded Postgres' own log lines. */
  onPostgresLog?: (line: string) => void;
  /**
   * Start the cloud side too (SSM, CloudWatch Logs and Vault emulators; default true). Without
   * it the cloud checks are skipped and the cloud violations cannot be seeded.
   */
  cloud?: boolean;
  /** Seed markup-bearing strings into names that reach findings and reports (default false); see hostileMarkers(). */
  hostile?: boolean;
  /** A stop request (Ctrl-C): the build stops between steps, stopping what it started, and throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Write `state:` and `outputs:` into audit.yaml (default true). A fleet's member leaves them
   * out, so the fleet config's defaults put every deployment's state and reports in one place.
   */
  outputsInConfig?: boolean;
}

export interface Manifest {
  seed: number;
  rows: number;
  /** The violation ids seeded. */
  seeded: ViolationId[];
  /** Every non-info finding the checks will report: check id and resource, exactly. */
  violations: ManifestEntry[];
}

export interface Sandbox {
  /** Absolute path of the deployment's folder. */
  dir: string;
  /** Absolute path of its audit.yaml. */
  configPath: string;
  manifest: Manifest;
  /** URL of the audit database. */
  postgresUrl: string;
  plan: Plan;
  /** Appends ordinary, valid rows (and the roots that fall due) to the chain; adds no finding. */
  append(rows: number): Promise<void>;
  /** Every secret value the sandbox wrote (env values, PEM bodies, private key bytes, SSM and Vault values, tokens): none may appear in any output. */
  secretValues(): string[];
  /** The hostile strings (`hostile: true`) that reach the seeded findings: a report must show each as text, never run it. */
  hostileMarkers(): string[];
  /** The cloud side (its emulators, for tests that inject faults), when started. */
  cloud?: CloudSandbox;
  /** The identity side (TLS endpoints and the OIDC issuer), started with the cloud side. */
  identity?: IdentitySandbox;
  /**
   * Stops the emulators (and takes back the AWS credential variables), drops the database
   * (external server) or stops the embedded Postgres; leaves no process or open handle behind.
   */
  stop(): Promise<void>;
}

function databaseUrl(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url, application_name: 'aegis-sandbox' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function* rowSpecs(plan: Plan, prng: Prng): Generator<RowSpec> {
  for (let id = 1; id <= plan.opts.rows; id++) {
    const special = plan.specials.get(id);
    const rotation = special && rotationPayload(special);
    const { action, payload } = rotation ?? nextActivity(prng);
    let tamper: RowTamper | undefined;
    if (special?.kind === 'badSignature') tamper = { kind: 'badSignature' };
    else if (special?.kind === 'hashMismatch') tamper = { kind: 'hashMismatch', storedPayload: tamperPayload(payload) };
    else if (special?.kind === 'chainBreak') tamper = { kind: 'chainBreak', prevHash: special.prevHash };
    yield { createdAt: plan.rowTime(id), action, payload, key: plan.receiptKeyForRow(id), tamper };
  }
}

async function writeDatabase(url: string, plan: Plan, writer: ChainWriter, prng: Prng): Promise<void> {
  const { schema, tables } = plan.opts;
  const t = qualified(schema, tables);
  await withClient(url, async (c) => {
    await c.query('SET synchronous_commit = off');
    await createSchema(c, schema, tables);
    await writer.write(c, rowSpecs(plan, prng));
    if (plan.historicalKeys.length > 0) {
      await c.query(
        `INSERT INTO ${t.historical_keys} (fingerprint, public_key, promoted_at) SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`,
        [plan.historicalKeys.map((h) => h.key.fingerprint), plan.historicalKeys.map((h) => h.key.publicKeyPem), plan.historicalKeys.map((h) => h.promotedAt.toISOString())],
      );
    }
    const iso = (d: Date | null) => (d ? d.toISOString() : null);
    await c.query(
      `INSERT INTO ${t.api_keys} (id, prefix, created_at, last_used_at, revoked_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])`,
      [plan.apiKeys.map((k) => k.id), plan.apiKeys.map((k) => k.prefix), plan.apiKeys.map((k) => iso(k.createdAt)), plan.apiKeys.map((k) => iso(k.lastUsedAt)), plan.apiKeys.map((k) => iso(k.revokedAt))],
    );
    await c.query(`ANALYZE ${t.audit_log}`);
  });
}

function configYaml(
  plan: Plan,
  postgresUrl: string,
  files: { logs: Record<string, string>; env: Record<string, string>; pem: { receipt: string; root: string } },
  cloud: CloudSandbox | undefined,
  identity: IdentitySandbox | undefined,
  outputsInConfig: boolean,
): string {
  const o = plan.opts;
  const logs: Record<string, unknown> = { files: files.logs };
  const sources: Record<string, unknown> = {};
  const secrets: Record<string, unknown> = { env_files: files.env, pem_files: files.pem, signing_key_service: o.signingService };
  if (cloud) {
    const f = cloud.configFragment;
    // Only the services that log to CloudWatch get a group: a service read from two places would count twice.
    const groups = Object.fromEntries(plan.cloudLogServices.map((svc) => [svc, (f.logs.cloudwatch.groups as Record<string, string>)[svc]]));
    if (plan.cloudLogServices.length > 0) logs.cloudwatch = { ...f.logs.cloudwatch, groups };
    secrets.ssm = f.secrets.ssm;
    secrets.vault = { ...f.secrets.vault, token_file: 'vault-token' };
    // Relative to audit.yaml, like every other path the sandbox writes.
    sources.artifacts = { ...f.artifacts, dir: 'models' };
  }
  const endpoints = identity ? { endpoints: identity.configFragment } : {};
  // Windowed log checks read the week the logs span; "latest" verdicts (an instance's latest
  // start, 12 days ago for one) look back sources.logs.lookback, 30 days by default.
  logs.window = '7d';
  const config = {
    deployment: o.deployment,
    services: [...o.services],
    sources: { postgres: { url: postgresUrl, schema: o.schema, tables: { ...o.tables } }, logs, secrets, deploy: { trees: { [DEPLOY_TREE]: DEPLOY_TREE } }, repo: { roots: { [REPO_ROOT]: REPO_DIR } }, ...sources, ...endpoints },
    ...(outputsInConfig ? { state: { dir: 'state' }, outputs: { dir: 'reports' } } : {}),
  };
  const header = [
    `# The aegis sandbox deployment "${o.deployment}" (seed ${o.seed}, ${o.rows} audit rows).`,
    '# Generated by the sandbox; paths are relative to this file. The Postgres URL is the',
    '# throwaway sandbox server, not a deployment credential.',
    ...(cloud
      ? [
          '# SSM, CloudWatch Logs and Vault are loopback emulators that live as long as the sandbox.',
          '# AWS credentials come from the variables named in credentials_env, which the sandbox',
          '# process sets while it runs (a forked `aegis-audit run` inherits them). The emulators',
          '# accept any values: from another shell, export both variables with any non-empty value.',
          '# The endpoints (TLS ingresses, OIDC issuer) also live in the sandbox process, on 127.0.0.1.',
        ]
      : []),
  ].join('\n');
  return `${header}\n${stringify(config, { lineWidth: 0 })}`;
}

export async function buildSandbox(opts: BuildOptions): Promise<Sandbox> {
  // Everything that can be wrong with the options fails here, before a server starts.
  const withCloud = opts.cloud ?? true;
  const seeded = resolveViolations(opts.violations, { cloud: withCloud });
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`seed must be an integer (got ${opts.seed})`);
  const tables: SandboxTables = { ...DEFAULT_TABLES, ...opts.tables };
  const schema = opts.schema ?? 'public';
  for (const name of [schema, ...Object.values(tables)]) ident(name);
  const services = [...(opts.services ?? DEFAULT_SERVICES)];
  if (new Set(services).size !== services.length) throw new Error(`services must be distinct (got ${services.join(', ')})`);
  const plan = buildPlan({
    seed: opts.seed,
    rows: opts.rows,
    violations: seeded,
    deployment: opts.deployment ?? 'sandbox',
    services,
    signingService: opts.signingService ?? 'audit',
    schema,
    tables,
    now: new Date(Math.floor((opts.now ?? new Date()).getTime())),
    cloud: withCloud,
    hostile: opts.hostile ?? false,
    dir: resolve(opts.dir),
  });

  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });

  let embedded: RunningPostgres | undefined;
  let adminUrl = opts.adminUrl;
  if (!adminUrl) {
    embedded = await startEmbeddedPostgres({ log: opts.onPostgresLog });
    adminUrl = embedded.adminUrl;
    if (opts.signal?.aborted) {
      await embedded.stop();
      opts.signal.throwIfAborted();
    }
  }
  const database = `aegis_sandbox_${randomBytes(5).toString('hex')}`;
  const postgresUrl = databaseUrl(adminUrl, database);
  const admin = adminUrl;
  let cloud: CloudSandbox | undefined;
  let identity: IdentitySandbox | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const stopCloud = Promise.all([cloud?.stop(), identity?.stop()]);
    if (embedded) await embedded.stop();
    else if (!opts.keepDatabase) await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`));
    await stopCloud;
  };

  const writer = new ChainWriter({ schema, tables, rootKey: plan.rootKey, rootEvery: plan.rootEvery, tamperedRoots: plan.tamperedRoots });
  const rowPrng = new Prng(plan.opts.seed, 'rows');
  const ledger = new SecretLedger();
  // A stop request does not wait for the step under way (seeding can take a while): the
  // server goes at once, the step fails, and the build stops everything it started.
  const onAbort = () => void embedded?.stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    opts.signal?.throwIfAborted();
    await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${ident(database)}`));
    const [, logs, env, pem] = await Promise.all([
      writeDatabase(postgresUrl, plan, writer, rowPrng),
      writeLogs(dir, plan),
      writeEnvFiles(dir, plan, ledger),
      writePemFiles(dir, plan),
      writeDeployTree(dir, plan, ledger),
      writeRepoTree(dir, plan, ledger),
    ]);
    if (plan.selected.has('log-secret-shapes')) for (const v of Object.values(plan.logLeaks.shapes)) ledger.add(v);
    opts.signal?.throwIfAborted();
    if (plan.cloud) {
      // The identity side first: the runtime secret in Vault names its JWKS URL.
      identity = await startIdentitySandbox({ names: plan.identity, deployment: plan.opts.deployment, selected: plan.selected, enrolled: plan.enrolled, dir });
      for (const v of identity.secretValues) ledger.add(v);
      cloud = await startCloud(dir, plan, logs, { oidc_jwks_uri: identity.jwksUrl, 'clients/allowed': plan.enrolledInVault });
      for (const v of cloud.secretValues) ledger.add(v);
    }
    opts.signal?.throwIfAborted();
    const configPath = join(dir, 'audit.yaml');
    await writeFile(configPath, configYaml(plan, postgresUrl, { logs: logs.files, env, pem }, cloud, identity, opts.outputsInConfig ?? true));
    const violations = plan.manifest(identity ? { identity: { ...plan.identity, jwksUrl: identity.jwksUrl } } : undefined);
    const manifest: Manifest = { seed: plan.opts.seed, rows: plan.opts.rows, seeded, violations };
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

    let appending = Promise.resolve();
    const append = (n: number): Promise<void> => {
      if (!Number.isInteger(n) || n < 1) return Promise.reject(new Error(`append needs a positive integer of rows (got ${n})`));
      if (stopped) return Promise.reject(new Error('the sandbox is stopped'));
      // Appends run one after another: each continues the chain where the previous one left it.
      const run = appending.then(() => appendRows(postgresUrl, plan, writer, rowPrng, n));
      appending = run.catch(() => undefined);
      return run;
    };
    const markers = [...plan.hostileMarkers];
    return { dir, configPath, manifest, postgresUrl, plan, append, secretValues: () => ledger.values(), hostileMarkers: () => [...markers], cloud, identity, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    // Stopped on request: say so, rather than whatever the step under way tripped over.
    opts.signal?.throwIfAborted();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The cloud side of the deployment: the services' secrets as their env files hold them
 * (INTERNAL_SECRET, with the drifted or missing one, and JWT_SECRET_KEY) in SSM and Vault, the
 * CloudWatch-logged services' lines, and the selected cloud violations. The signing keys stay
 * in the env and PEM files only: the fingerprint findings name those sources.
 */
async function startCloud(dir: string, plan: Plan, logs: WrittenLogs, runtime: Record<string, unknown>): Promise<CloudSandbox> {
  const o = plan.opts;
  const secrets: Record<string, Record<string, string>> = {};
  for (const svc of o.services) {
    const vars: Record<string, string> = {};
    const internal = plan.internalSecretOf(svc);
    if (internal !== undefined) vars.INTERNAL_SECRET = internal;
    if (plan.jwtServices.includes(svc)) vars.JWT_SECRET_KEY = plan.secrets.jwt;
    if (Object.keys(vars).length > 0) secrets[svc] = vars;
  }
  return startCloudSandbox({
    seed: o.seed,
    deployment: o.deployment,
    services: o.services,
    violations: [...plan.selected],
    secrets,
    logs: logs.cloud,
    authFailures: false,
    hostile: o.hostile ?? false,
    dir,
    now: o.now,
    runtime,
  });
}

/** Ordinary rows after the last one, signed by the deployed receipt key, up to the present. */
async function appendRows(url: string, plan: Plan, writer: ChainWriter, prng: Prng, n: number): Promise<void> {
  const last = writer.state.lastCreatedAt?.getTime() ?? plan.lastRowAt.getTime();
  const end = Math.max(Date.now(), last + n);
  const step = (end - last) / n;
  const key = plan.receiptKeys[plan.receiptKeys.length - 1];
  function* specs(): Generator<RowSpec> {
    for (let i = 1; i <= n; i++) {
      const { action, payload } = nextActivity(prng);
      yield { createdAt: new Date(last + Math.max(i, Math.floor(i * step))), action, payload, key };
    }
  }
  await withClient(url, async (c) => {
    await c.query('SET synchronous_commit = off');
    await writer.write(c, specs());
  });
}
