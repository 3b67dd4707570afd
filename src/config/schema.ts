/**
 * The shape of audit.yaml. Everything that points at the audited deployment (tables, log
 * groups, paths, parameter paths) is configurable; defaults follow docs/aegis-formats.md. Secrets never
 * appear here literally: the config names where they are.
 */
import { z } from 'zod';
import cron from 'node-cron';
import { duration } from '../core/duration';
import { SEVERITIES } from '../core/types';

const nonEmpty = z.string().min(1);
/**
 * Names that become folder names, metric and finding labels, SQL identifiers: a bounded
 * charset and length, so a name never reaches the file system or Postgres to fail there.
 */
const MAX_NAME = 63;
const MAX_DEPLOYMENT = 100;
const bounded = (max: number) => z.string().max(max, `at most ${max} characters`);
const serviceName = bounded(MAX_NAME).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a service name (letters, digits, _ . -)');
/** Postgres cuts identifiers at 63 bytes: a longer table name would silently be another table. */
const sqlIdent = bounded(MAX_NAME).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a SQL identifier');
const cronExpr = z.string().refine((s) => cron.validate(s), 'a valid cron expression, e.g. "*/5 * * * *"');
const hostPort = z.string().regex(/^[^:\s]*:\d{1,5}$/, 'an address "host:port", e.g. 0.0.0.0:9464');

const awsCommon = {
  region: nonEmpty,
  /** A VPC endpoint or the sandbox's emulator; the standard credential chain applies. */
  endpoint: z.url().optional(),
  /** Total attempts per call, including the first (the SDK's maxAttempts). */
  max_attempts: z.number().int().min(1).max(10).default(3),
  timeout: duration().default(10_000),
  /** Static credentials for the sandbox; production uses the standard chain. Named, never literal: env var names. */
  credentials_env: z
    .object({ access_key_id: nonEmpty, secret_access_key: nonEmpty, session_token: nonEmpty.optional() })
    .strict()
    .optional(),
};

export const postgresSchema = z
  .object({
    url: nonEmpty,
    schema: sqlIdent.default('public'),
    tables: z
      .object({
        audit_log: sqlIdent.default('audit_log'),
        historical_keys: sqlIdent.default('transparency_historical_keys'),
        roots: sqlIdent.default('transparency_roots'),
        api_keys: sqlIdent.default('api_keys'),
      })
      .strict()
      .prefault({}),
    statement_timeout: duration().default(30_000),
    connect_timeout: duration().default(5_000),
  })
  .strict();

export const logsSchema = z
  .object({
    files: z.record(serviceName, nonEmpty).optional(),
    cloudwatch: z
      .object({
        ...awsCommon,
        groups: z.record(serviceName, z.string().regex(/^[.\-_/#A-Za-z0-9]+$/, 'a CloudWatch log group name')),
        /** Largest page to ask for (FilterLogEvents limit, 1..10000). */
        page_size: z.number().int().min(1).max(10_000).default(10_000),
        /** How late an event may reach CloudWatch after its timestamp: a resumed read starts this much earlier. */
        ingestion_delay: duration().default(10 * 60_000),
      })
      .strict()
      .optional(),
    window: duration().default(24 * 3_600_000),
    /** How far back "latest" verdicts (the latest start of each instance) may look. */
    lookback: duration().default(30 * 86_400_000),
  })
  .strict()
  .refine((l) => l.files || l.cloudwatch, 'logs needs "files" or "cloudwatch"');

export const ssmSchema = z
  .object({
    ...awsCommon,
    /** Parameter hierarchy of the deployment; a service's secret NAME is at `<path>/<service>/<NAME>`. */
    path: z.string().regex(/^\/[A-Za-z0-9_.\-/]*$/, 'an SSM parameter path such as /aegis/prod'),
    deploy_document: nonEmpty.default('aegis-deploy'),
    /** How far back to read Run Command history (SSM keeps about 30 days). */
    history: duration().default(30 * 86_400_000),
  })
  .strict();

export const vaultSchema = z
  .object({
    address: z.url(),
    token_file: nonEmpty.optional(),
    token_env: nonEmpty.optional(),
    namespace: nonEmpty.optional(),
    kv_mount: nonEmpty.default('secret'),
    /** A service's secrets live at `<kv_mount>/data/<path_prefix>/<service>`, one field per NAME. */
    path_prefix: nonEmpty.default('aegis'),
    runtime_path: nonEmpty.default('aegis/runtime'),
    /** Accessors of service tokens to inspect (never the tokens themselves). */
    token_accessors: z.record(z.string(), nonEmpty).default({}),
    timeout: duration().default(5_000),
    /** Total attempts per call; throttling (429) and gateway errors (502, 504) are retried. */
    max_attempts: z.number().int().min(1).max(10).default(3),
    ca_file: nonEmpty.optional(),
  })
  .strict()
  .refine((v) => v.token_file || v.token_env, 'vault needs "token_file" or "token_env"');

export const secretsSchema = z
  .object({
    env_files: z.record(serviceName, nonEmpty).optional(),
    pem_files: z.object({ receipt: nonEmpty.optional(), root: nonEmpty.optional() }).strict().optional(),
    /** The service whose env holds the signing keys. */
    signing_key_service: serviceName.default('audit'),
    ssm: ssmSchema.optional(),
    vault: vaultSchema.optional(),
  })
  .strict();

export const prometheusSchema = z
  .object({
    url: z.url(),
    timeout: duration().default(10_000),
    /** Total attempts per query; throttling (429) and gateway errors (502, 503, 504) are retried. */
    max_attempts: z.number().int().min(1).max(10).default(3),
  })
  .strict();

/** Deploy trees (Kubernetes manifests, compose files, Dockerfiles, CI workflows) the auditor reads. */
export const deploySchema = z
  .object({
    /** name → directory; findings name files as `<name>:<path in the tree>`. */
    trees: z.record(bounded(MAX_NAME).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a tree name (letters, digits, _ . -)'), nonEmpty),
    /** Names (files or directories) never entered, at any depth. */
    exclude: z.array(nonEmpty).default(['.git', 'node_modules']),
    /** Files larger than this are not read (reported as not scanned). */
    max_file_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(2 * 1024 * 1024),
    /** A tree with more YAML files and Dockerfiles than this is an error (narrow it with exclude). */
    max_files: z.number().int().min(1).max(1_000_000).default(20_000),
    max_depth: z.number().int().min(1).max(256).default(32),
  })
  .strict();

/** Repository checkouts scanned for committed secrets, each with its detect-secrets baseline. */
export const repoSchema = z
  .object({
    /** name → directory of a checkout; findings name files as `<name>:<path in the checkout>`. */
    roots: z.record(bounded(MAX_NAME).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a root name (letters, digits, _ . -)'), nonEmpty),
    /** The detect-secrets baseline, relative to each root. */
    baseline: nonEmpty.default('.secrets.baseline'),
    /** Globs (relative to the root, `**` across folders) of the files scanned. */
    include: z.array(nonEmpty).min(1).default(['**']),
    /** Globs of files and folders never scanned (`.git` never is). */
    exclude: z.array(nonEmpty).default(['**/node_modules/**', '**/.venv/**', '**/venv/**', '**/__pycache__/**']),
    /** Files larger than this are not scanned (reported as a note). */
    max_file_bytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
    /** A baseline larger than this is not read. */
    max_baseline_bytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(32 * 1024 * 1024),
    /** A root with more files to scan than this is an error (narrow it with exclude). */
    max_files: z.number().int().min(1).max(10_000_000).default(200_000),
    max_depth: z.number().int().min(1).max(256).default(64),
  })
  .strict();

/** Where the model artifacts are: a directory, an S3 prefix, or both. */
export const artifactsSchema = z
  .object({
    dir: nonEmpty.optional(),
    s3: z
      .object({
        ...awsCommon,
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
        prefix: z.string().default(''),
        /** Path-style URLs (`endpoint/bucket/key`): needed by most S3-compatible stores and emulators. */
        force_path_style: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Keys (relative to the location) that are not artifacts: globs such as `docs/**` or `*.md` (a `*` stays within one path segment). */
    exclude: z.array(nonEmpty).default([]),
    /** More objects than this under the locations is an error (bounded work per run). */
    max_objects: z.number().int().min(1).max(10_000_000).default(100_000),
  })
  .strict()
  .refine((a) => a.dir || a.s3, 'artifacts needs "dir" or "s3"');
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name such as x-ssl-client-cn');

export const endpointTargetSchema = z
  .object({
    /** https://host:port/path of a protected route (inference, enrollment, review). */
    url: z.url().refine((u) => /^https:\/\//i.test(u) && !/[?#]/.test(u) && !new URL(u).username, 'an https:// URL without credentials, query or fragment'),
    /** The Aegis service behind it; default: the target's name. */
    service: serviceName.optional(),
    /** mtls: client-certificate probes; oidc: bearer-token probes (opt-in: they send forged tokens). */
    probes: z.array(z.enum(['mtls', 'oidc'])).min(1),
    /** The header the ingress forwards the verified client CN in (Aegis MTLS_ID_HEADER). */
    identity_header: headerName.default('x-ssl-client-cn'),
    /** TLS server name to send and verify; default: the URL's host. */
    server_name: nonEmpty.optional(),
    oidc: z
      .object({ audience: nonEmpty.optional(), issuer: nonEmpty.optional(), jwks_uri: z.url().optional() })
      .strict()
      .prefault({}),
  })
  .strict();

export const endpointsSchema = z
  .object({
    /** PEM bundle the endpoints' and the JWKS servers' certificates must chain to; default Node's bundled roots. */
    ca_file: nonEmpty.optional(),
    /** With ca_file: also trust Node's bundled public roots (a JWKS on a public IdP). */
    system_ca: z.boolean().default(false),
    /** The auditor's enrolled client certificate and its key (a secret). */
    client_cert_file: nonEmpty.optional(),
    client_key_file: nonEmpty.optional(),
    /** A valid client certificate of the same CA that is NOT enrolled (the 403 probe). */
    unenrolled_cert_file: nonEmpty.optional(),
    unenrolled_key_file: nonEmpty.optional(),
    /** PKCS#8 PEM of a key the issuer's JWKS carries for the auditor: signs the expired/audience/issuer probe tokens. */
    token_signing_key_file: nonEmpty.optional(),
    /** Per request: connect, TLS handshake and answer. */
    timeout: duration().default(5_000),
    targets: z.record(serviceName, endpointTargetSchema).default({}),
  })
  .strict()
  .refine((e) => !e.client_cert_file === !e.client_key_file, 'client_cert_file and client_key_file go together')
  .refine((e) => !e.unenrolled_cert_file === !e.unenrolled_key_file, 'unenrolled_cert_file and unenrolled_key_file go together');

export const checkSettingsSchema = z
  .object({
    enabled: z.boolean().default(true),
    schedule: cronExpr.optional(),
    timeout: duration().optional(),
    /** Validated against the check's own options schema once the registry is known. */
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

import { FORMATS } from './formats';
export { FORMATS };

/** The advisory lock key replicas elect their leader with ('Aegi'). */
export const DEFAULT_LEADER_LOCK_KEY = 0x4165_6769;

export const configSchema = z
  .object({
    deployment: bounded(MAX_DEPLOYMENT).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a deployment name (letters, digits, _ . -)'),
    services: z.array(serviceName).min(1).default(['identity', 'gateway', 'api', 'audit', 'insight']),
    sources: z
      .object({
        postgres: postgresSchema.optional(),
        logs: logsSchema.optional(),
        secrets: secretsSchema.optional(),
        prometheus: prometheusSchema.optional(),
        deploy: deploySchema.optional(),
        artifacts: artifactsSchema.optional(),
        endpoints: endpointsSchema.optional(),
        repo: repoSchema.optional(),
      })
      .strict()
      .prefault({}),
    checks: z.record(z.string(), checkSettingsSchema).default({}),
    run: z
      .object({
        concurrency: z.number().int().min(1).max(64).default(4),
        timeout: duration().default(120_000),
        fail_on: z.enum(SEVERITIES).default('low'),
      })
      .strict()
      .prefault({}),
    state: z
      .object({
        /** Relative to the config file, as every path here. */
        dir: nonEmpty.default('.aegis-audit/state'),
        postgres: z.object({ url: nonEmpty, schema: sqlIdent.default('aegis_audit') }).strict().optional(),
      })
      .strict()
      .prefault({}),
    waivers: nonEmpty.optional(),
    waiver_max_lifetime: duration().default(90 * 86_400_000),
    attestations: nonEmpty.optional(),
    outputs: z
      .object({
        dir: nonEmpty.default('reports'),
        formats: z.array(z.enum(FORMATS)).min(1).default([...FORMATS]),
        history_keep: z.number().int().min(1).default(50),
        runbook_base_url: z.url({ protocol: /^https?$/ }).optional(),
      })
      .strict()
      .prefault({}),
    server: z.object({ listen: hostPort.default('127.0.0.1:9464') }).strict().prefault({}),
    leader_lock: z
      .object({ url: nonEmpty, key: z.number().int().default(DEFAULT_LEADER_LOCK_KEY) })
      .strict()
      .optional(),
    /** Replicas share the checks through a job queue (pg-boss) in the auditor's own Postgres schema. */
    queue: z
      .object({
        url: nonEmpty,
        schema: sqlIdent.default('aegis_audit'),
        /** Checks this replica runs at once. */
        concurrency: z.number().int().min(1).max(64).default(4),
        /** This replica's name in the run log and its own metrics; default `<hostname>-<pid>`. */
        replica: bounded(MAX_NAME).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a replica name (letters, digits, _ . -)').optional(),
        /** A run still unfinished this long after the check's timeout is taken for dead and retried elsewhere. */
        expire_grace: duration().default(30_000),
        retry_limit: z.number().int().min(0).max(100).default(3),
        /** First retry delay; each next one doubles. */
        retry_delay: duration().default(5_000),
        /** How often the leader reads the shared results for its metrics and reports. */
        publish_interval: duration().default(5_000),
        /** How often expired runs are looked for (one replica does it). */
        maintenance_interval: duration().default(10_000),
      })
      .strict()
      .optional(),
    plugins: z.array(nonEmpty).default([]),
  })
  .strict();

export type AuditConfig = z.output<typeof configSchema>;
export type PostgresConfig = z.output<typeof postgresSchema>;
export type LogsConfig = z.output<typeof logsSchema>;
export type SecretsConfig = z.output<typeof secretsSchema>;
export type SsmConfig = z.output<typeof ssmSchema>;
export type VaultConfig = z.output<typeof vaultSchema>;
export type PrometheusConfig = z.output<typeof prometheusSchema>;
export type DeployConfig = z.output<typeof deploySchema>;
export type ArtifactsConfig = z.output<typeof artifactsSchema>;
export type EndpointsConfig = z.output<typeof endpointsSchema>;
export type QueueConfig = z.output<typeof configSchema>['queue'] & {};
export type RepoConfig = z.output<typeof repoSchema>;
export type CheckSettings = z.output<typeof checkSettingsSchema>;
export type { OutputFormat } from './formats';
