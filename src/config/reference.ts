/**
 * The configuration reference (docs/configuration.md), generated from the zod schema itself:
 * every key the loader accepts, its type and default come from `configSchema`; the words come
 * from CONFIG_DOCS below (or a `.describe()` on the schema). A test keeps the committed page
 * equal to this output and fails on any accepted key without words, so nothing is accepted
 * that is not documented. `aegis-audit config reference` prints it.
 */
import type { z } from 'zod';
import { fleetSettingsSchema, MAX_DEPLOYMENTS, MAX_FLEET_BYTES, MAX_INCLUDE_PATTERNS } from './fleet';
import { configSchema } from './schema';
import { formatDuration, isDurationSchema } from '../core/duration';
import { optionKeys, type Registry } from '../core/registry';

/** What each key means, by its path (`<…>` stands for a map key). */
export const CONFIG_DOCS: Readonly<Record<string, string>> = {
  deployment: 'Name of the audited deployment, shown in reports and metrics; history and checkpoints are kept per deployment.',
  services: "The deployment's services; checks that look at every service use this list.",

  'sources.postgres.url': 'The audit database, e.g. `${AUDIT_DATABASE_URL}`; a read-only role is enough (`docs/deploy/postgres-grants.sql`).',
  'sources.postgres.schema': 'Schema of the Aegis tables.',
  'sources.postgres.tables.audit_log': 'The audit rows (hash chain).',
  'sources.postgres.tables.historical_keys': 'Public keys of rotated-out signing keys.',
  'sources.postgres.tables.roots': 'Signed transparency roots.',
  'sources.postgres.tables.api_keys': 'API keys (ids and dates only are read).',
  'sources.postgres.statement_timeout': 'Longest a query may run (the server enforces it; the client gives up a little later).',
  'sources.postgres.connect_timeout': 'Longest to wait for a connection.',

  'sources.logs.files.<service>': 'A glob of JSON-lines log files of that service, e.g. `/var/log/aegis/audit/*.jsonl`.',
  'sources.logs.cloudwatch.region': 'AWS region of the log groups.',
  'sources.logs.cloudwatch.endpoint': 'An endpoint URL instead of the public one (a VPC endpoint).',
  'sources.logs.cloudwatch.max_attempts': 'Attempts per call, the first included; throttling and 5xx are retried.',
  'sources.logs.cloudwatch.timeout': 'Socket timeout per call.',
  'sources.logs.cloudwatch.credentials_env.access_key_id': 'Name of the environment variable holding the access key id (static credentials; without `credentials_env` the standard AWS credential chain applies).',
  'sources.logs.cloudwatch.credentials_env.secret_access_key': 'Name of the environment variable holding the secret access key.',
  'sources.logs.cloudwatch.credentials_env.session_token': 'Name of the environment variable holding a session token.',
  'sources.logs.cloudwatch.groups.<service>': 'The log group of that service, e.g. `/aegis/prod/audit`.',
  'sources.logs.cloudwatch.page_size': 'Largest page of events to ask for (FilterLogEvents limit).',
  'sources.logs.cloudwatch.ingestion_delay': 'How late an event may reach CloudWatch after its timestamp: a resumed read starts this much earlier.',
  'sources.logs.window': 'How far back windowed log checks read (auth-failure spikes, secrets in logs).',
  'sources.logs.lookback': 'How far back "latest" verdicts may look (the latest start of each audit instance), however long ago; later runs read only what was logged since.',

  'sources.secrets.env_files.<service>': "The service's dotenv file (sidecar mode), e.g. `/run/aegis/audit.env`.",
  'sources.secrets.pem_files.receipt': 'The receipt signing key PEM on the volume (the fallback path).',
  'sources.secrets.pem_files.root': 'The root signing key PEM on the volume.',
  'sources.secrets.signing_key_service': 'The service whose secrets hold `RECEIPT_SIGNING_PRIVATE_KEY` and `ROOT_SIGNING_PRIVATE_KEY`.',
  'sources.secrets.ssm.region': 'AWS region of Parameter Store and Run Command.',
  'sources.secrets.ssm.endpoint': 'An endpoint URL instead of the public one (a VPC endpoint).',
  'sources.secrets.ssm.max_attempts': 'Attempts per call, the first included; throttling and 5xx are retried.',
  'sources.secrets.ssm.timeout': 'Socket timeout per call.',
  'sources.secrets.ssm.credentials_env.access_key_id': 'Name of the environment variable holding the access key id (without `credentials_env` the standard AWS credential chain applies).',
  'sources.secrets.ssm.credentials_env.secret_access_key': 'Name of the environment variable holding the secret access key.',
  'sources.secrets.ssm.credentials_env.session_token': 'Name of the environment variable holding a session token.',
  'sources.secrets.ssm.path': "The deployment's parameter hierarchy, e.g. `/aegis/prod`; a service's secret NAME is `<path>/<service>/<NAME>`.",
  'sources.secrets.ssm.deploy_document': 'The SSM document the deploys run (its command history is inspected).',
  'sources.secrets.ssm.history': 'How far back to read Run Command history (SSM keeps about 30 days).',
  'sources.secrets.vault.address': 'Vault address, e.g. `https://vault:8200`.',
  'sources.secrets.vault.token_file': "A file holding the auditor's Vault token (e.g. written by Vault Agent). One of `token_file` or `token_env` is required.",
  'sources.secrets.vault.token_env': "Name of the environment variable holding the auditor's Vault token.",
  'sources.secrets.vault.namespace': 'Vault Enterprise namespace (sent as `X-Vault-Namespace`).',
  'sources.secrets.vault.kv_mount': 'The KV version 2 mount.',
  'sources.secrets.vault.path_prefix': "A service's secrets are the fields of `<kv_mount>/data/<path_prefix>/<service>`.",
  'sources.secrets.vault.runtime_path': 'The runtime secret (`oidc_jwks_uri`, `model_signing_pubkey`, `clients/allowed`), under the mount.',
  'sources.secrets.vault.token_accessors.<name>': "Accessor of a service token to inspect (never the token itself), e.g. `gateway: hmac-accessor…`.",
  'sources.secrets.vault.timeout': 'Timeout per call.',
  'sources.secrets.vault.max_attempts': 'Attempts per call, the first included; throttling (429) and gateway errors (502, 504) are retried.',
  'sources.secrets.vault.ca_file': "PEM file of the CA that signed Vault's certificate (a private CA).",

  'sources.deploy.trees.<name>': 'A directory of deployment files (Kubernetes manifests, compose files, Dockerfiles, CI workflows) searched for static Vault tokens; findings name files as `<name>:<path>`.',
  'sources.deploy.exclude': 'File or directory names never entered, at any depth.',
  'sources.deploy.max_file_bytes': 'Files larger than this are not read (reported as not scanned).',
  'sources.deploy.max_files': 'A tree with more YAML files and Dockerfiles than this is an error (narrow it with `exclude`).',
  'sources.deploy.max_depth': 'Deepest folder level entered.',
  'sources.repo.roots.<name>': 'A repository checkout searched for committed secrets (repo-secret-scan); findings name files as `<name>:<path>`.',
  'sources.repo.baseline': "The repository's detect-secrets baseline, relative to each root; a root without one is a finding.",
  'sources.repo.include': 'Globs of the files searched, relative to the root (`**` crosses folders; dot-files included).',
  'sources.repo.exclude': 'Globs of files and folders never searched (an excluded folder is not entered); `.git` never is.',
  'sources.repo.max_file_bytes': 'Files larger than this are not searched (listed in a note).',
  'sources.repo.max_baseline_bytes': 'A baseline larger than this is not read (a finding).',
  'sources.repo.max_files': 'A root with more files to search than this is an error (narrow it with `exclude`).',
  'sources.repo.max_depth': 'Deepest folder level entered.',
  'sources.artifacts.dir': 'A directory of model artifacts, each with its `.sig.json` (one of `dir` or `s3` is required).',
  'sources.artifacts.s3.region': 'AWS region of the artifacts bucket.',
  'sources.artifacts.s3.endpoint': 'An endpoint URL instead of the public one (a VPC endpoint or an S3-compatible store).',
  'sources.artifacts.s3.max_attempts': 'Attempts per call, the first included; throttling and 5xx are retried.',
  'sources.artifacts.s3.timeout': 'Socket timeout per call.',
  'sources.artifacts.s3.credentials_env.access_key_id': 'Name of the environment variable holding the access key id (without `credentials_env` the standard AWS credential chain applies).',
  'sources.artifacts.s3.credentials_env.secret_access_key': 'Name of the environment variable holding the secret access key.',
  'sources.artifacts.s3.credentials_env.session_token': 'Name of the environment variable holding a session token.',
  'sources.artifacts.s3.bucket': 'The bucket holding the model artifacts.',
  'sources.artifacts.s3.prefix': 'The key prefix under which the artifacts are.',
  'sources.artifacts.s3.force_path_style': 'Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible stores.',
  'sources.artifacts.exclude': 'Keys (relative to the location) that are not artifacts: globs such as `docs/**` or `*.md` (a `*` stays within one path segment).',
  'sources.artifacts.max_objects': 'More objects than this under the locations is an error (bounded work per run).',

  'sources.endpoints.ca_file': "PEM bundle the endpoints' and JWKS servers' certificates must chain to (default: Node's bundled public roots).",
  'sources.endpoints.system_ca': 'With `ca_file`: also trust the public roots (a JWKS on a public identity provider).',
  'sources.endpoints.client_cert_file': "The auditor's enrolled client certificate (PEM), for the probes that must be admitted; goes with `client_key_file`.",
  'sources.endpoints.client_key_file': 'Its private key (a secret: read, never shown).',
  'sources.endpoints.unenrolled_cert_file': 'A valid client certificate of the same CA that is not enrolled: the endpoint must answer it 403; goes with `unenrolled_key_file`.',
  'sources.endpoints.unenrolled_key_file': 'Its private key.',
  'sources.endpoints.token_signing_key_file': "PKCS#8 PEM of a key whose public half the issuer's JWKS carries for the auditor: signs the expired, wrong-audience and wrong-issuer probe tokens.",
  'sources.endpoints.timeout': 'Per request: connect, TLS handshake and answer.',
  'sources.endpoints.targets.<name>.url': 'An `https://host:port/path` of a protected route (inference, enrollment, review), without credentials, query or fragment.',
  'sources.endpoints.targets.<name>.service': "The Aegis service behind it (default: the target's name).",
  'sources.endpoints.targets.<name>.probes': '`mtls`: client-certificate probes; `oidc`: bearer-token probes (opt-in per endpoint: they send forged tokens).',
  'sources.endpoints.targets.<name>.identity_header': 'The header the ingress forwards the verified client CN in (Aegis `MTLS_ID_HEADER`); a forged one must be refused.',
  'sources.endpoints.targets.<name>.server_name': "TLS server name to send and verify (default: the URL's host).",
  'sources.endpoints.targets.<name>.oidc.audience': 'The audience the endpoint expects; a token for another audience must be refused.',
  'sources.endpoints.targets.<name>.oidc.issuer': 'The issuer the endpoint expects; a token from another issuer must be refused.',
  'sources.endpoints.targets.<name>.oidc.jwks_uri': "The JWKS URI the endpoint verifies tokens with; oidc-jwks judges it with the others (the services' `OIDC_JWKS_URI`, the runtime secret's `oidc_jwks_uri`).",
  'sources.prometheus.url': 'Prometheus base URL, for `aegis_auth_failures_total` when no logs are configured.',
  'sources.prometheus.timeout': 'Timeout per query.',
  'sources.prometheus.max_attempts': 'Attempts per query; throttling (429) and gateway errors (502, 503, 504) are retried.',

  'checks.<check id>.enabled': 'Set `false` to leave the check out of every run.',
  'checks.<check id>.schedule': "Cron expression for the daemon (default: the check's own, under [Check options](#check-options)).",
  'checks.<check id>.timeout': "Per-check timeout (default: `run.timeout`, or the check's own when it declares a longer one, under [Check options](#check-options)); a check cut short keeps what it can (receipt-chain resumes next run).",
  'checks.<check id>.options': "The check's options, validated against its schema; an unknown option is an error. See [Check options](#check-options).",

  'run.concurrency': 'Checks run at once.',
  'run.timeout': 'Per-check timeout.',
  'run.fail_on': 'Lowest finding severity that makes `run` exit 1 (`--fail-on` overrides).',

  'state.dir': 'Where checkpoints live (receipt-chain, latest starts seen in the logs), relative to the config file; bound to what they describe.',
  'state.postgres.url': "Keep state and run history in the auditor's own Postgres schema instead (shared by daemon replicas).",
  'state.postgres.schema': "The auditor's own schema.",

  waivers: 'The waivers file (`{ waivers: [ { check, resource, justification, approver, ticket, expires } ] }`).',
  waiver_max_lifetime: 'The furthest a waiver may expire from now.',
  attestations: 'The attestations file for checklist items no check can prove.',

  'outputs.dir': 'Output directory, relative to the config file (`--out` overrides, relative to the working directory; `--out -` writes the JSON report to stdout).',
  'outputs.formats': 'Which files to write (`--format` overrides).',
  'outputs.history_keep': 'Previous runs kept per deployment, for "what changed" and the trend chart.',
  'outputs.runbook_base_url': 'Where the runbooks are published, e.g. `https://git.example.com/aegis-audit/blob/main/`: reports link `docs/runbooks/<check>.md` under it. Unset, report.html links the runbooks shipped with aegis-audit relative to the report\'s folder.',

  'server.listen': 'The daemon\'s HTTP address (`/metrics`, `/healthz`, `/readyz`, `/report`).',
  'leader_lock.url': 'A Postgres URL: replicas sharing it elect one runner with an advisory lock.',
  'leader_lock.key': 'The advisory lock key.',
  'queue.url': 'A Postgres URL: daemon replicas sharing it share the checks through a job queue (pg-boss) there; the replica holding the leader lock (`leader_lock`, else an advisory lock on this database) schedules them and exports the compliance metrics.',
  'queue.schema': "The auditor's own schema the queue's tables, the shared latest results and the run log live in.",
  'queue.concurrency': 'Checks this replica runs at once.',
  'queue.replica': 'This replica\'s name in the run log and in its own metrics (default: host name and process id).',
  'queue.expire_grace': "A run still unfinished this long after its check's timeout is taken for dead (its replica gone) and retried on another replica.",
  'queue.retry_limit': 'Retries of a run whose replica died or whose run failed before its check reported.',
  'queue.retry_delay': 'Delay before the first retry; each next one doubles.',
  'queue.publish_interval': 'How often the leader reads the shared latest results into its metrics and reports.',
  'queue.maintenance_interval': 'How often expired runs are looked for (one replica at a time does it).',
  plugins: 'Folders (every `*.js` file in one is a check module) or module files of external checks; see [plugins.md](plugins.md).',
};

/** Environment variables the auditor reads, besides the `${VAR}` references a config makes. */
export const ENVIRONMENT: readonly { name: string; meaning: string }[] = [
  { name: '`AEGIS_AUDIT_LOG_LEVEL`', meaning: 'Level of the JSON logs on stderr: `trace`, `debug`, `info` (default; `demo`: `warn`), `warn`, `error`, `fatal`, `silent`.' },
  { name: '`${VAR}` in audit.yaml', meaning: 'Any variable a config names as `${VAR}` or `${VAR:-default}`; a missing one without a default is an error naming file, line and key.' },
  { name: 'the variables that `token_env` and `credentials_env` name', meaning: 'Hold the Vault token and static AWS credentials; the config names them, never the values.' },
  { name: '`AWS_REGION`, `AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, …', meaning: "The AWS SDK's standard credential chain (instance roles, IRSA), used when `credentials_env` is not set." },
  { name: '`AEGIS_AUDIT_WORKER_NICE`', meaning: "Nice increment (0–19) of the worker threads that verify receipt-chain signatures, over the checks' thread that starts them: `10` in the daemon unless set (its HTTP thread is never queued behind them), `0` otherwise." },
  { name: '`AEGIS_AUDIT_CHECKS_NICE`', meaning: "Nice increment (0–19) of the daemon's checks' thread (and the threads it starts) once its HTTP thread runs: `10` unless set, so `/metrics` and `/healthz` are answered before the checks' own work; `0` keeps every thread at the process's priority." },
  { name: '`NODE_COMPILE_CACHE`, `NODE_DISABLE_COMPILE_CACHE`, `XDG_CACHE_HOME`', meaning: "Node 22.1 and later: where each command keeps the bytecode of the modules it loaded, so that the next one compiles none of them again — `$XDG_CACHE_HOME/aegis-audit/node-compile-cache` (an absolute `XDG_CACHE_HOME`), else `~/.cache/aegis-audit/node-compile-cache`, unless `NODE_COMPILE_CACHE` names another directory; `NODE_DISABLE_COMPILE_CACHE=1` turns it off. Never the shared temporary directory. Older Node has no such cache." },
  { name: '`AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED`', meaning: "Set to `true` by `aegis-audit` unless already set: silences the AWS SDK's notice about future Node versions on stderr." },
];

/** Map keys by the path of the map they belong to (default `<name>`). */
const MAP_KEY: Readonly<Record<string, string>> = {
  'sources.logs.files': '<service>',
  'sources.logs.cloudwatch.groups': '<service>',
  'sources.secrets.env_files': '<service>',
  checks: '<check id>',
};

export interface KeyDoc {
  key: string;
  type: string;
  default: string;
  required: boolean;
  meaning: string | undefined;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** An object of a list, in the page's flow style: `{ path: aegis/jwt, field: key }`. */
const flow = (v: unknown): string =>
  v && typeof v === 'object' && !Array.isArray(v) ? `{ ${Object.entries(v).map(([k, x]) => `${k}: ${flow(x)}`).join(', ')} }` : Array.isArray(v) ? `[${v.map(flow).join(', ')}]` : String(v);

function formatDefault(v: unknown, isDuration: boolean): string {
  if (isDuration && typeof v === 'number') return `\`${formatDuration(v)}\``;
  // null: unset, the key's meaning says what applies then.
  if (v === null) return '—';
  if (Array.isArray(v)) return `\`[${v.map(flow).join(', ')}]\``;
  if (v && typeof v === 'object') return Object.keys(v).length === 0 ? '`{}`' : `\`${JSON.stringify(v)}\``;
  if (typeof v === 'number' && Number.isInteger(v) && v > 0xffff) return `\`${v}\` (0x${v.toString(16)})`;
  return `\`${String(v)}\``;
}

/** The schema under optional / default / nullable wrappers. */
function unwrapped(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let d = defOf(cur); d.type === 'optional' || d.type === 'default' || d.type === 'prefault' || d.type === 'nullable'; d = defOf(cur)) cur = d.innerType as z.ZodType;
  return cur;
}

function formatMap(m: Record<string, unknown>, isDuration: boolean): string {
  const parts = Object.entries(m).map(([k, v]) => `${k}: ${isDuration && typeof v === 'number' ? formatDuration(v) : String(v)}`);
  return `\`{ ${parts.join(', ')} }\``;
}

/** A leaf's type in words. */
function typeOf(s: z.ZodType): string {
  if (isDurationSchema(s)) return 'duration';
  const d = defOf(s);
  const n = s as unknown as { minValue?: number | null; maxValue?: number | null; isInt?: boolean; format?: string | null; options?: unknown[] };
  switch (d.type) {
    case 'string':
      return n.format === 'url' ? 'URL' : 'string';
    case 'number': {
      const int = n.isInt === true;
      let lo: string | undefined;
      let hi: string | undefined;
      for (const c of (d.checks as { _zod: { def: { check: string; value?: number; inclusive?: boolean } } }[] | undefined) ?? []) {
        const { check, value, inclusive } = c._zod.def;
        if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) >= Number.MAX_SAFE_INTEGER) continue;
        if (check === 'greater_than') lo = String(inclusive || !int ? value : value + 1) + (inclusive || int ? '' : ' (exclusive)');
        if (check === 'less_than') hi = String(inclusive || !int ? value : value - 1) + (inclusive || int ? '' : ' (exclusive)');
      }
      const what = int ? 'integer' : 'number';
      if (lo !== undefined && hi !== undefined) return `${what} ${lo}–${hi}`;
      if (lo !== undefined) return `${what} ≥ ${lo}`;
      if (hi !== undefined) return `${what} ≤ ${hi}`;
      return what;
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return `one of ${(n.options ?? []).map((o) => `\`${String(o)}\``).join(', ')}`;
    case 'array':
      return `list of ${typeOf(d.element as z.ZodType)}`;
    case 'record':
      return 'map';
    case 'unknown':
      return 'any';
    default:
      return d.type;
  }
}

/** Every key of a schema, depth first, in declaration order. */
function walk(schema: z.ZodType, path: string[], out: KeyDoc[], inherited: { required: boolean; default?: unknown }): void {
  let s = schema;
  let required = inherited.required;
  let dflt: unknown = inherited.default;
  let hasDefault = 'default' in inherited;
  const description = (schema as { description?: string }).description;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'optional') required = false;
    else if (d.type === 'default' || d.type === 'prefault') {
      required = false;
      const v = d.defaultValue;
      dflt = typeof v === 'function' ? (v as () => unknown)() : v;
      hasDefault = true;
    } else if (d.type === 'nullable') {
      /* keep going */
    } else break;
    s = d.innerType as z.ZodType;
  }
  const key = path.join('.');
  const d = defOf(s);
  if (d.type === 'object' && !isDurationSchema(s)) {
    for (const [k, child] of Object.entries(d.shape as Record<string, z.ZodType>)) walk(child, [...path, k], out, { required: true });
    return;
  }
  if (d.type === 'record') {
    const value = d.valueType as z.ZodType;
    const vd = defOf(value);
    const placeholder = MAP_KEY[key] ?? '<name>';
    if (vd.type === 'object') {
      walk(value, [...path, placeholder], out, { required: true });
      return;
    }
    if (vd.type === 'unknown') {
      out.push({ key, type: 'map', default: hasDefault ? formatDefault(dflt, false) : '—', required, meaning: description ?? CONFIG_DOCS[key] });
      return;
    }
    const k = [...path, placeholder].join('.');
    const shown = hasDefault && dflt && typeof dflt === 'object' && Object.keys(dflt).length > 0 ? formatMap(dflt as Record<string, unknown>, isDurationSchema(unwrapped(value))) : '—';
    out.push({ key: k, type: typeOf(unwrapped(value)), default: shown, required: false, meaning: (value as { description?: string }).description ?? description ?? CONFIG_DOCS[k] });
    return;
  }
  out.push({ key, type: typeOf(s), default: hasDefault ? formatDefault(dflt, isDurationSchema(s)) : '—', required, meaning: description ?? CONFIG_DOCS[key] });
}

/** Every key `audit.yaml` accepts, with its type, default and meaning. */
export function configKeys(): KeyDoc[] {
  const out: KeyDoc[] = [];
  walk(configSchema, [], out, { required: true });
  // An optional group's keys are required only once the group is given; say "required" only at top level.
  return out;
}

/** The keys of a fleet config's `fleet:` group. */
export function fleetKeys(): KeyDoc[] {
  const out: KeyDoc[] = [];
  walk(fleetSettingsSchema, ['fleet'], out, { required: false, default: {} });
  return out;
}

/** The page's section on fleets: many deployments in one config. */
function fleetSection(): string[] {
  return [
    '## Fleets: many deployments in one config',
    '',
    'One config can describe many deployments (environments, regions, large tenants). Instead of a',
    'top-level `deployment:`, a fleet config has:',
    '',
    '| key | meaning |',
    '| --- | --- |',
    '| `deployments` | A list of deployments, each a mapping with the keys above (`deployment`, `services`, `sources`, `checks`, `waivers`, `attestations`, …); `deployment` is required and unique in the fleet. |',
    '| `include` | A list of files or globs (relative to the config file) of per-deployment YAML files, each holding one deployment as a mapping with the keys above; at most ' + MAX_INCLUDE_PATTERNS + ' patterns, and a pattern that matches no file is an error. Included deployments follow the listed ones, in path order. |',
    '| `defaults` | Keys above shared by every deployment, laid under each (see the merge rule). |',
    ...fleetKeys().map((k) => `| \`${k.key}\` | ${cell(k.meaning ?? '')} Type ${cell(k.type)}${k.default === '—' ? '' : `, default ${cell(k.default)}`}. |`),
    '| `server`, `leader_lock`, `queue`, `plugins` | As above, written once at the top for the whole process; in `defaults` or a deployment they are an error. With `queue`, replicas share the checks of every deployment of the fleet (see below). |',
    '',
    '**Merge rule.** A deployment\'s settings are laid over `defaults`: mappings merge key by key at',
    'any depth; a list, string or number in the deployment replaces the default whole (so a',
    'deployment\'s `services` replaces the default list, while its `sources.logs.files` adds to the',
    'default files). Relative paths are relative to the file they are written in: a default\'s to the',
    'fleet config, an included deployment\'s to its own file. `${VAR}` works in every file.',
    '',
    '**Outputs.** Each deployment\'s reports go to `<outputs.dir>/<deployment>/` (`report.html`,',
    '`checklist.html`, `report.json`, …), its history to `<outputs.dir>/history/<deployment>/`, and',
    '`index.html` and `index.json` in the fleet\'s outputs folder (`defaults.outputs.dir`, default',
    '`reports` beside the config) list every deployment with its state (FAIL when a check failed,',
    'NOT EVALUATED when none failed but one could not be evaluated, PASS), its failing checks, its',
    'last run and a link to its report, worst first. The names `history`, `index.html` and',
    '`index.json` are therefore reserved. The daemon serves the index at `/` and `/report` (as JSON',
    'at `/report.json`) and each deployment\'s report at `/<deployment>/report` and',
    '`/<deployment>/report.json`; every metric series carries its `deployment`.',
    '',
    '**Running.** `aegis-audit run --config <fleet config>` audits every deployment and exits with the',
    'worst code (1 before 3 before 0); `aegis-audit run --config <fleet config> --deployment <name>`',
    '(repeatable) audits only those, and the index keeps the others with the report they last had.',
    '`--json` needs exactly one deployment. The daemon schedules every check of every deployment',
    'on its own schedule; a slow or unreachable deployment holds at most its share of',
    '`fleet.concurrency` and its own checks end `error`, while the others run on. A reload (SIGHUP)',
    'starts deployments added to the config (or its included files) and drops removed ones with',
    'their series. Bad waivers or attestations of any deployment stop the run (exit 2), naming it.',
    '',
    '**Replicas.** With `queue:`, daemon replicas running the same fleet config share the checks of',
    'every deployment: the leader enqueues a run of each (deployment, check) on its schedule, any',
    'replica runs it (with that deployment\'s own sources, waivers and share of `fleet.concurrency`),',
    'and the leader alone exports every deployment\'s results — its series, its reports and the',
    'index. Give the replicas one `state.dir` they all reach, or `state.postgres`, so checkpoints',
    'follow the work.',
    '',
    '**State.** Deployments may share one `state.dir`: each checkpoint is keyed by what it',
    'describes (a chain by its database server, database, table and first row; a log position by',
    'its location), so a renamed deployment never inherits another\'s checkpoint and two',
    'deployments never judge each other\'s data.',
    '',
    '**Bounds.** At most ' + MAX_DEPLOYMENTS + ' deployments; each included file is a regular file of',
    'at most 1 MiB, and the config with its included files at most ' + MAX_FLEET_BYTES / (1024 * 1024) + ' MiB in all. Every',
    'error names the file and line it was written in (a bad default once, where the default is).',
    '',
    '```yaml',
    'fleet: { concurrency: 4 }',
    'server: { listen: "0.0.0.0:9464" }',
    'defaults:',
    '  services: [identity, gateway, api, audit, insight]',
    '  sources:',
    '    logs: { window: 24h }',
    '  checks:',
    '    receipt-chain: { schedule: "*/15 * * * *" }',
    '  outputs: { dir: reports }',
    'deployments:',
    '  - deployment: prod-eu',
    '    sources:',
    '      postgres: { url: "${PROD_EU_AUDIT_DATABASE_URL}" }',
    '      logs: { files: { audit: /var/log/aegis/prod-eu/audit/*.jsonl } }',
    '    waivers: waivers/prod-eu.yaml',
    'include: ["tenants/*.yaml"]     # one deployment per file',
    '```',
    '',
  ];
}

/** Every option of every check in the registry, with its type and default. */
export function checkOptionKeys(registry: Registry): { check: string; options: KeyDoc[] }[] {
  return [...registry.values()].map((c) => {
    const out: KeyDoc[] = [];
    const shape = (c.options as unknown as { shape: Record<string, z.ZodType> }).shape;
    for (const k of optionKeys(c) ?? []) walk(shape[k], [k], out, { required: true });
    // A `never` option is a retired name kept only to say what replaced it: not accepted, not listed.
    return { check: c.meta.id, options: out.filter((o) => o.type !== 'never') };
  });
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** docs/configuration.md. */
export function renderConfigReference(registry: Registry): string {
  const lines: string[] = [
    '# Configuration reference (`audit.yaml`)',
    '',
    '<!-- Generated by `aegis-audit config reference` from the config schema; do not edit by hand.',
    '     To change it, edit CONFIG_DOCS in src/config/reference.ts (or the schema), then run',
    '     `npm run docs:config`. A test fails when this page and the schema disagree. -->',
    '',
    'One YAML file, validated at start (`aegis-audit config validate FILE`): an unknown key, a',
    'wrong type or an unknown check option is an error naming the file, line, key and what was',
    'expected, and the command exits 2. `${VAR}` and `${VAR:-default}` take values from the',
    'environment. Relative paths (log globs, env and PEM files, token and CA files, endpoint',
    'certificates and keys, waivers, attestations, state dir, plugins) are relative to the config',
    'file. Secrets never appear in it: it names where they are. `aegis-audit init` writes a',
    'commented starter file.',
    '',
    'Durations are `250ms`, `90s`, `15m`, `24h`, `90d`, `2w`, compound forms such as `1h30m` or',
    '`1d 12h` (largest unit first), or a number of milliseconds. What the auditor expects to find at',
    'the places this file names is in [aegis-formats.md](aegis-formats.md).',
    '',
    'The config file (and the waivers and attestations files) must be a regular file of at most',
    '1 MiB; YAML aliases may expand to at most 100 uses and may not refer to themselves.',
    '`deployment` is at most 100 characters, service, tree and SQL names at most 63. An error',
    'about a value that came from `${VAR}` shows `${VAR}`, never the value.',
    '',
    '## Keys',
    '',
    'A key under an optional group (`sources.postgres`, `sources.secrets.vault`, …) is needed only',
    'when the group is given; "required" marks keys that group cannot do without.',
    '',
    '| key | type | default | meaning |',
    '| --- | --- | --- | --- |',
  ];
  for (const k of configKeys()) {
    const dflt = k.required ? 'required' : k.default;
    lines.push(`| \`${k.key}\` | ${cell(k.type)} | ${cell(dflt)} | ${cell(k.meaning ?? '')} |`);
  }
  lines.push(
    '',
    'Rules the table cannot show: `sources.logs` needs `files` or `cloudwatch`; `sources.secrets.vault`',
    'needs `token_file` or `token_env`; a `checks.<check id>` that is not a known check (built in or',
    'from `plugins`) is an error.',
    '',
    ...fleetSection(),
    '## Environment variables',
    '',
    '| variable | meaning |',
    '| --- | --- |',
    ...ENVIRONMENT.map((e) => `| ${e.name} | ${cell(e.meaning)} |`),
    '',
    '## Check options',
    '',
    'Set under `checks.<check id>.options`; `aegis-audit explain <check id>` says what each check',
    'proves and how. Checks from `plugins` take options the same way. Each check also has its own',
    'daemon schedule (`checks.<check id>.schedule` overrides it); a check whose work grows with the',
    'deployment declares its own timeout, used when longer than `run.timeout`.',
    '',
  );
  for (const { check, options } of checkOptionKeys(registry)) {
    const meta = registry.get(check)?.meta;
    lines.push(`### ${check}`, '');
    if (meta) lines.push(`Schedule \`${meta.schedule}\`${meta.timeout ? `; timeout \`${formatDuration(meta.timeout)}\`` : ''}.`, '');
    if (options.length === 0) {
      lines.push('No options.', '');
      continue;
    }
    lines.push('| option | type | default |', '| --- | --- | --- |');
    for (const o of options) lines.push(`| \`${o.key}\` | ${cell(o.type)} | ${cell(o.required ? 'required' : o.default)} |`);
    lines.push('');
  }
  return lines.join('\n');
}
