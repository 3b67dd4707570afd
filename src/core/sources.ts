/**
 * What checks see of the audited deployment. Each interface is implemented in
 * `src/sources/` against a real system, and by in-memory fakes in the tests. Checks never
 * see a network client: they ask these interfaces, which speak the deployment's domain
 * (audit rows, log events, secret holders) rather than SQL or HTTP.
 *
 * Every method may throw an {@link AuditError} with code SOURCE_UNAVAILABLE (the source is
 * down) or BAD_DATA (the source answered with something that cannot be parsed); the runner
 * turns either into an `error` result for the check.
 */
import type { Secret } from './secret';

export type SigningKeyName = 'receipt' | 'root';

// ---------------------------------------------------------------- postgres (audit database)

export interface AuditRow {
  id: number;
  createdAt: Date;
  action: string;
  payload: unknown;
  prevHash: string;
  rowHash: string;
  signature: string;
  keyFingerprint: string;
}

export interface RootRow {
  id: number;
  createdAt: Date;
  upToId: number;
  rootHash: string;
  signature: string;
  keyFingerprint: string;
}

export interface HistoricalKey {
  fingerprint: string;
  /** SPKI PEM of the public key. Public material. */
  publicKey: string;
  promotedAt: Date | null;
}

export interface ApiKeyRow {
  id: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface FingerprintUsage {
  fingerprint: string;
  rows: number;
  firstId: number;
  lastId: number;
  lastAt: Date;
}

/** Where a chain lives, as the server says: with the first row's hash, the identity of the chain. */
export interface ChainLocation {
  /** Postgres `system_identifier` of the server (shared by its physical replicas); null when it could not be read. */
  systemIdentifier: string | null;
  /** Why `systemIdentifier` is null (e.g. no permission to call pg_control_system()). */
  systemIdentifierUnavailable?: string;
  database: string;
  /** The database's OID: a database dropped and created again under the same name gets another. */
  databaseOid: number;
  /** `schema.table` of the audit log. */
  table: string;
}

export interface StreamRowsOptions {
  batchSize?: number;
  signal?: AbortSignal;
  /** Stop after this many rows. */
  limit?: number;
  /** Only rows with id ≤ untilId. */
  untilId?: number;
}

/**
 * Audit rows as the server sent them, not yet parsed: the tuples of a `COPY … (FORMAT
 * binary)` of the audit columns in their documented order, in a buffer of their own (it can
 * be transferred to another thread whole).
 */
export interface RawAuditRows {
  readonly raw: true;
  /** The tuples, without COPY's header and trailer. */
  data: Uint8Array;
  rows: number;
  /** The last row as read: the anchor of the batch after it. */
  lastId: number;
  /** Its row_hash as AuditRow.rowHash holds it (shape-gated). */
  lastRowHash: string;
  /** How `payload` is encoded: jsonb (a version byte, then JSON text) or json (JSON text). */
  payload: 'jsonb' | 'json';
  /** The table's configured name, as errors name a row (`audit_log row id=7`). */
  table: string;
}

/** How much of the chain lies after an id (AuditDb.chainExtent). */
export interface ChainExtent {
  /** Rows after it; null when counting them took too long. */
  rowsAfter: number | null;
  /** The highest id; null for an empty table. */
  lastId: number | null;
}

export interface AuditDb {
  /** The configured name of the historical keys table, as findings name it. */
  readonly historicalKeysTable: string;
  /** The most recent audit rows, newest first. */
  recentRows(limit: number): Promise<AuditRow[]>;
  /** The most recent transparency roots, newest first. */
  recentRoots(limit: number): Promise<RootRow[]>;
  historicalKeys(): Promise<HistoricalKey[]>;
  /** Rows with `action` in the given set (e.g. key_rotated, secret_rotated), oldest first. */
  rowsByAction(actions: string[]): Promise<AuditRow[]>;
  /** Which key fingerprints signed audit rows, with counts and id ranges. */
  fingerprintUsage(): Promise<FingerprintUsage[]>;
  /** Which key fingerprints signed transparency roots. */
  rootFingerprintUsage(): Promise<FingerprintUsage[]>;
  /**
   * Audit rows with id > afterId, oldest first, in batches; memory stays flat however many
   * rows. Each batch is read by its own statement (a statement timeout bounds one batch,
   * never the pass), so a batch carries everything needed to verify it apart from the last
   * row of the batch before (rows carry their own prev_hash).
   */
  streamRows(afterId: number, opts?: StreamRowsOptions): AsyncIterable<AuditRow[]>;
  /**
   * The same rows as streamRows, as raw batches where the source can send them so (a
   * table with the documented column types); batches of parsed rows otherwise.
   */
  streamRawRows?(afterId: number, opts?: StreamRowsOptions): AsyncIterable<AuditRow[] | RawAuditRows>;
  /** The server, database and table the audit log is read from. */
  chainLocation(): Promise<ChainLocation>;
  /**
   * How much of the chain lies after `afterId`: the number of rows (null when counting takes
   * longer than `timeoutMs`, or with `count: false`: the highest id alone, one index probe)
   * and the highest id (null for an empty table).
   */
  chainExtent(afterId: number, opts?: { timeoutMs?: number; count?: boolean }): Promise<ChainExtent>;
  rowById(id: number): Promise<AuditRow | undefined>;
  /** Roots with id > afterId, oldest first. */
  rootsAfter(afterId: number): Promise<RootRow[]>;
  firstRow(): Promise<AuditRow | undefined>;
  apiKeys(): AsyncIterable<ApiKeyRow>;
}

// ---------------------------------------------------------------- logs

export interface LogEvent {
  ts: Date;
  service: string;
  /** The parsed JSON object of the line. Fields are untrusted input. */
  fields: Record<string, unknown>;
  /** Where the line came from: `file:/var/log/aegis/audit/a.jsonl:12` or `cloudwatch:/aegis/prod/audit:stream`. */
  origin: string;
}

export interface LogQuery {
  /** The oldest event wanted (by its `ts`). Also bounds a resumed read. */
  since: Date;
  /** The newest event wanted; a bounded read cannot be resumed (see {@link LogRead.cursor}). */
  until?: Date;
  /** Only events whose `event` field equals this (pushed down as a filter pattern where possible). */
  event?: string;
  signal?: AbortSignal;
  /**
   * Resume after an earlier read of the same service: only events that read did not deliver
   * (still no older than `since`). A cursor of another location (the config changed) or one
   * the source cannot use (a rotated file, a truncated file) is ignored for that part: those
   * events are read from `since` again.
   */
  after?: LogCursor;
}

/**
 * Where a read of one service's logs stopped, to resume the next read from: byte positions
 * of files, the time a CloudWatch read reached. JSON-safe and opaque to checks; holds no log
 * text. `location` names what it is a position in ({@link LogSource.location}).
 */
export interface LogCursor {
  location: string;
  at: unknown;
}

/**
 * One read of one service's events, oldest first as far as each file or stream is in time
 * order (files and streams are merged by their heads, so memory stays flat however much is
 * read). A resumed read may deliver again an event delivered just before the cursor (a line
 * still being written, CloudWatch's ingestion-delay margin): consumers fold idempotently.
 */
export interface LogRead extends AsyncIterable<LogEvent> {
  /**
   * Where this read stopped, to pass as `after` next time. Only once the iteration has run to
   * its end, and only for reads without `until` (events past it were skipped, not left).
   */
  cursor(): LogCursor;
}

export interface LogStats {
  linesRead: number;
  /** Lines that are not JSON, or JSON without a known event: ignored, and counted. */
  linesIgnored: number;
}

export interface LogSource {
  /** Which services have a configured log location. */
  services(): string[];
  /**
   * What a service's logs are, as a stable text (`files:/var/log/aegis/audit/*.jsonl`,
   * `cloudwatch:eu-west-1:/aegis/prod/audit`): state about them is keyed by it, so it follows
   * the logs, not the deployment's name.
   */
  location(service: string): string;
  /** Parsed events of one service since a time (or after a cursor), oldest first. */
  events(service: string, query: LogQuery): LogRead;
  /** The raw streams (files, CloudWatch log groups) of one service, for checks that read every line. */
  rawStreams(service: string, signal?: AbortSignal): Promise<RawLogStream[]>;
  /** The default window from config (`sources.logs.window`), in milliseconds: how far back windowed checks read. */
  readonly windowMs: number;
  /** How far back "latest" verdicts may look (`sources.logs.lookback`), in milliseconds. */
  readonly lookbackMs: number;
  stats(): LogStats;
}

/**
 * Where a raw read resumes in one stream. Files: the byte offset and line number after the
 * last complete line read. CloudWatch: the timestamp of the last event read and the ids of
 * the events at that timestamp. Plain JSON, never log content.
 */
export interface RawLogPosition {
  offset?: number;
  line?: number;
  /** Files: hex SHA-256 of the file's first `headLen` bytes when the position was taken (the same content, not only the same inode). */
  head?: string;
  headLen?: number;
  ts?: number;
  ids?: string[];
}

/** Where one CloudWatch event starts in a chunk. */
export interface RawLogEventMark {
  /** Byte index in the chunk's data. */
  at: number;
  id: string;
  ts: number;
  /** The log stream in the group. */
  stream: string;
}

/** Lines of a stream, raw bytes, every line (JSON or not). Untrusted. */
export interface RawLogChunk {
  data: Buffer;
  /** Byte offset in the file of data's first byte (0 for CloudWatch). */
  offset: number;
  /** 1-based line number of data's first line (files). */
  line: number;
  /** CloudWatch: where each event starts in data, ascending; its messages are separated by a newline. */
  events?: RawLogEventMark[];
  /** Where the next read resumes once this chunk is handled. */
  next: RawLogPosition;
  /**
   * The read could not resume from the position it was given (a file truncated or rewritten
   * in place): this chunk starts the stream over (it may be empty), and whatever was counted
   * from the old content no longer applies.
   */
  restarted?: boolean;
}

export interface RawLogStream {
  readonly kind: 'file' | 'cloudwatch';
  /** What findings call it: the file path, or the log group. */
  readonly name: string;
  /**
   * What the stream is, whatever it is called now: device and inode of a file (a rotated file
   * keeps it), region and name of a log group. Keys the stream's checkpoint.
   */
  readonly identity: string;
  /**
   * Lines after `from`, oldest first, in chunks of whole lines. Without `from` (or with a
   * position the stream no longer has: a truncated file), a file is read from its start and
   * a log group from `since`.
   */
  read(from: RawLogPosition | undefined, opts: { since: Date; signal?: AbortSignal }): AsyncIterable<RawLogChunk>;
}

// ---------------------------------------------------------------- secrets

export type SecretProvider = 'env_file' | 'pem_file' | 'ssm' | 'vault';

/** One place that holds a value of a named secret for a service. */
export interface SecretHolder {
  service: string;
  name: string;
  provider: SecretProvider;
  /** Where it lives, e.g. `/run/aegis/gateway.env` or `ssm:/aegis/prod/gateway/INTERNAL_SECRET`. Never the value. */
  origin: string;
  value: Secret;
  /** When the value was last written, where the provider knows (SSM LastModifiedDate, Vault created_time, file mtime). */
  lastModified?: Date;
}

/** A configured signing key, reduced to its public fingerprint; the private key never leaves the source. */
export interface SigningKeyHolder {
  key: SigningKeyName;
  provider: SecretProvider;
  origin: string;
  /** `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo. */
  fingerprint: string;
  /** SPKI PEM of the public key, for signature verification. */
  publicKeyPem: string;
}

/**
 * A private key found at rest on the volume (a configured PEM path, or a file in the same
 * directory), reduced to what identifies it. Never the key.
 */
export interface PrivateKeyFile {
  path: string;
  /** The PEM label, e.g. `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`. */
  label: string;
  /** `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo, when the key could be read. */
  fingerprint?: string;
  keyType?: string;
  /** Why there is no fingerprint (encrypted, a format the auditor cannot read). */
  problem?: string;
  /** The signing key whose configured PEM path this is. */
  configuredFor?: SigningKeyName;
}

export interface SecretStore {
  /** The services the deployment has (from config). */
  services(): string[];
  /** Every holder of the named secret across services and providers. Absent values are simply not listed. */
  holders(name: string): Promise<SecretHolder[]>;
  /**
   * Every secret value the providers hold for the services: secret-named env variables and
   * the passwords of URLs in env files, the parameters under the SSM path, the fields of the
   * services' Vault secrets.
   */
  all(): Promise<SecretHolder[]>;
  /** Every configured copy of a signing key (env var in the audit env file, PEM file, SSM, Vault). */
  signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]>;
  /** Which providers are configured, so a check can say where it looked. */
  providers(): SecretProvider[];
  /**
   * Private keys at rest: the configured PEM paths and every file in their directories that
   * holds a private-key PEM block. Empty when no PEM path is configured.
   */
  privateKeyFiles(): Promise<PrivateKeyFile[]>;
}

// ---------------------------------------------------------------- AWS SSM

export interface SsmCommand {
  commandId: string;
  documentName: string;
  requestedAt: Date;
  status: string;
  instanceIds: string[];
  /** Command parameters as SSM stores them (name → values). May hold literal secrets: that is what we audit. */
  parameters: Record<string, string[]>;
}

export interface SsmInvocationOutput {
  commandId: string;
  instanceId: string;
  pluginName: string;
  output: string;
}

export interface SsmParameterMeta {
  name: string;
  type: 'String' | 'StringList' | 'SecureString';
  lastModified?: Date;
  keyId?: string;
}

export interface SsmSource {
  /** Commands of a document requested since a time, newest first. */
  commands(query: { documentName: string; since: Date; signal?: AbortSignal }): AsyncIterable<SsmCommand>;
  /** Plugin outputs of one command's invocations. */
  outputs(commandId: string, signal?: AbortSignal): AsyncIterable<SsmInvocationOutput>;
  /** Parameter metadata under the configured path (no values). */
  parameters(signal?: AbortSignal): AsyncIterable<SsmParameterMeta>;
  /** The configured parameter path, e.g. `/aegis/prod`. */
  readonly path: string;
  readonly deployDocument: string;
  /** How far back Run Command history is read (config `history`), in milliseconds. */
  readonly historyMs?: number;
}

// ---------------------------------------------------------------- Vault

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version?: string;
}

export interface VaultTokenInfo {
  /** Label for reports: the display name or accessor, never the token. */
  label: string;
  accessor?: string;
  policies: string[];
  path?: string;
  /** Seconds left; 0 for tokens that never expire. */
  ttl: number;
  expireTime: Date | null;
  renewable: boolean;
  type?: string;
}

/** A Transit key as `GET <mount>/keys/<name>` describes it (public facts only). */
export interface TransitKeyInfo {
  name: string;
  type: string;
  exportable: boolean;
  supportsSigning: boolean;
  latestVersion: number;
  minDecryptionVersion: number;
}

/** What Transit said of a signature: valid or not (200), or refused as malformed (400, with Vault's text). */
export type TransitVerdict = { valid: boolean } | { refused: string };

export interface VaultSource {
  health(): Promise<VaultHealth>;
  /** KV v2 read of `<mount>/data/<path>`; undefined when the secret does not exist. Values are wrapped as secrets. */
  readKv(path: string): Promise<Record<string, Secret> | undefined>;
  /** lookup-self of the auditor's own token. */
  lookupSelf(): Promise<VaultTokenInfo>;
  /** lookup of other tokens named in config (by accessor), e.g. the services' tokens. */
  lookupAccessor(accessor: string): Promise<VaultTokenInfo>;
  /** `GET <mount>/keys/<name>`; undefined when the key does not exist. */
  transitKey(mount: string, name: string): Promise<TransitKeyInfo | undefined>;
  /** `POST <mount>/verify/<name>` with `hash_algorithm: sha2-256`; `input` is base64. */
  transitVerify(mount: string, name: string, input: string, signature: string): Promise<TransitVerdict>;
  readonly kvMount: string;
  /** KV path of the runtime secrets (config `runtime_path`, e.g. `aegis/runtime`). */
  readonly runtimePath?: string;
  /** Service tokens to inspect, by name (config `token_accessors`): name → accessor, never a token. */
  readonly tokenAccessors?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------- deploy files (manifests, compose, Dockerfiles, CI)

export type DeployFileKind = 'yaml' | 'dockerfile';

/** One file of a configured deploy tree, read whole (bounded), or the reason it could not be. */
export interface DeployFile {
  /** The configured tree's name (config `sources.deploy.trees`). */
  tree: string;
  /** Path inside the tree, `/`-separated. Untrusted text (names come from the tree). */
  path: string;
  kind: DeployFileKind;
  /** The content, when it could be read as text. */
  text?: string;
  /** Why the file was not read (too large, binary, not UTF-8, unreadable): it was not scanned. */
  unreadable?: string;
}

export interface DeployWalkStats {
  files: number;
  /** Files whose name is neither YAML nor a Dockerfile. */
  ignored: number;
  /** Symlinks not followed (outside the tree, a loop, or a copy of a file already read). */
  skippedLinks: { tree: string; path: string; reason: string }[];
}

export interface DeploySource {
  trees(): string[];
  /** Every YAML file and Dockerfile of every tree, in a stable order. */
  files(signal?: AbortSignal): AsyncIterable<DeployFile>;
  stats(): DeployWalkStats;
}

// ---------------------------------------------------------------- repository checkouts (secret scan)

/** One file of a configured repository checkout, to be read as a stream of chunks. */
export interface RepoFile {
  /** The configured root's name (config `sources.repo.roots`). */
  root: string;
  /** Path inside the root, `/`-separated. Untrusted text (names come from the repository). */
  path: string;
  size: number;
  /** The file's bytes in order, a bounded chunk at a time (never the whole file). */
  chunks(signal?: AbortSignal): AsyncIterable<Buffer>;
}

/** A file the walk found but did not hand on (larger than the bound, not a regular file, a symlink not followed). */
export interface RepoSkipped {
  root: string;
  path: string;
  skipped: string;
}

/** A root's detect-secrets baseline as found on disk, not yet parsed. */
export type RepoBaseline =
  | { root: string; path: string; status: 'absent' }
  | { root: string; path: string; status: 'ok'; text: string }
  | { root: string; path: string; status: 'unreadable'; reason: string };

export interface RepoSource {
  roots(): string[];
  /** Files of a root that the include/exclude globs select (the baseline and `.git` never), in a stable order. */
  files(root: string, signal?: AbortSignal): AsyncIterable<RepoFile | RepoSkipped>;
  /** The root's detect-secrets baseline (`sources.repo.baseline`, relative to the root). */
  baseline(root: string, signal?: AbortSignal): Promise<RepoBaseline>;
}

// ---------------------------------------------------------------- model artifacts (directory or S3)

export interface ArtifactObject {
  /** `dir` (a local directory) or `s3`. */
  store: 'dir' | 's3';
  /** Key below the configured location, `/`-separated. Untrusted text. */
  key: string;
  size: number;
  /** Where it is, for evidence: the file path or `s3://bucket/key`. */
  location: string;
}

export interface ArtifactStore {
  /** The configured locations, for messages (`dir:/models`, `s3://bucket/prefix`). */
  locations(): string[];
  /** Every object under every location, sorted by store then key. */
  list(signal?: AbortSignal): AsyncIterable<ArtifactObject>;
  /** The object's bytes as a stream (never read whole). */
  stream(obj: ArtifactObject, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** A small object (a signature file) whole; undefined when it does not exist; BAD_DATA past maxBytes. */
  readSmall(obj: Pick<ArtifactObject, 'store' | 'key'>, maxBytes: number, signal?: AbortSignal): Promise<Buffer | undefined>;
}

// ---------------------------------------------------------------- Prometheus

export interface PrometheusSample {
  labels: Record<string, string>;
  value: number;
}

export interface PrometheusSource {
  /** Instant query; returns a vector (scalars come back as one sample without labels). */
  query(promql: string, opts?: { time?: Date; signal?: AbortSignal }): Promise<PrometheusSample[]>;
}

// ---------------------------------------------------------------- endpoints (TLS probes)

/** Probe groups an endpoint is configured for: `mtls` (client-certificate enforcement), `oidc` (bearer-token probes, opt-in). */
export type EndpointProbeGroup = 'mtls' | 'oidc';

/**
 * Which client certificate a probe presents: none; the auditor's enrolled one; a valid one
 * (same CA) that is not enrolled; or one from a throwaway CA the endpoint must not trust,
 * carrying the enrolled certificate's subject.
 */
export type ProbeClient = 'none' | 'enrolled' | 'unenrolled' | 'untrusted';

export interface EndpointTarget {
  /** The configured name (`sources.endpoints.targets.<name>`): what findings call the endpoint. */
  name: string;
  /** Scheme, host, port and path, without query string or credentials (safe to show). */
  url: string;
  /** The Aegis service behind it (default: the name), for its env settings. */
  service: string;
  probes: readonly EndpointProbeGroup[];
  /** The header the ingress forwards the verified client identity in (Aegis MTLS_ID_HEADER). */
  identityHeader: string;
  /** What a valid token for this endpoint carries (default: the service's OIDC_AUDIENCE / OIDC_ISSUER). */
  oidc: { audience?: string; issuer?: string; jwksUri?: string };
}

export interface ProbeRequest {
  client: ProbeClient;
  /** Extra request headers (a forged identity header). */
  headers?: Readonly<Record<string, string>>;
  /** A bearer token for the Authorization header. */
  bearer?: string;
  signal?: AbortSignal;
}

/**
 * What a probe saw. `tls-refused`: the server ended the connection with a TLS alert (or reset
 * it) before any HTTP answer — a refusal at the TLS layer. `response`: an HTTP status.
 */
export type ProbeOutcome = { kind: 'tls-refused'; detail: string } | { kind: 'response'; status: number };

export interface ServerCertificates {
  /** The chain the server presented, leaf first, as PEM (public material). */
  chain: string[];
  /** Whether the chain verified against the configured CA bundle and matched the host name. */
  trusted: boolean;
  /** Why not (an OpenSSL / Node verification code such as CERT_HAS_EXPIRED), when not trusted. */
  reason?: string;
}

/** A client certificate the auditor is configured with (public PEM; the key stays in the source). */
export interface ClientCertificate {
  role: 'enrolled' | 'unenrolled';
  pem: string;
  origin: string;
}

/** A signer for probe tokens with a key the endpoint's issuer trusts; the private key never leaves the source. */
export interface TokenSigner {
  /** The public JWK of the key (kty, n, e / crv, x, y). */
  publicJwk: Record<string, unknown>;
  /** The JWS algorithm it signs with (RS256, ES256, ...). */
  alg: string;
  origin: string;
  /** Signs the claims as a compact JWT with the given protected header (alg is set by the signer). */
  sign(claims: Record<string, unknown>, header: Record<string, unknown>): Promise<string>;
}

export interface FetchedDocument {
  /** The URL as shown: scheme, host, port, path (no query string or credentials). */
  url: string;
  /** The parsed JSON body, or undefined when the body is not JSON (see parseError). */
  body: unknown;
  parseError?: string;
}

export interface EndpointSource {
  targets(): EndpointTarget[];
  /** The auditor's configured client certificates. */
  clientCertificates(): Promise<ClientCertificate[]>;
  /** Whether a probe client is available (enrolled/unenrolled need configured certificates). */
  hasClient(client: ProbeClient): boolean;
  /** The chain an endpoint presents and whether it verifies. */
  serverCertificates(target: string, signal?: AbortSignal): Promise<ServerCertificates>;
  /** One request to an endpoint over verified TLS. Unreachable, timeouts and an unverifiable server throw. */
  probe(target: string, req: ProbeRequest): Promise<ProbeOutcome>;
  /** GET a JSON document (a JWKS) over verified HTTPS (or plain HTTP where the URL says so); a non-2xx answer throws. */
  fetchJson(url: string, signal?: AbortSignal): Promise<FetchedDocument>;
  /** The configured probe-token signer, if any. */
  tokenSigner(): Promise<TokenSigner | undefined>;
}

// ---------------------------------------------------------------- the set

/** The sources of one run. A member that is undefined is not configured. */
export interface Sources {
  postgres?: AuditDb;
  logs?: LogSource;
  secrets?: SecretStore;
  ssm?: SsmSource;
  vault?: VaultSource;
  prometheus?: PrometheusSource;
  deploy?: DeploySource;
  artifacts?: ArtifactStore;
  endpoints?: EndpointSource;
  repo?: RepoSource;
}

export type SourceName = keyof Sources;
export const SOURCE_NAMES: readonly SourceName[] = ['postgres', 'logs', 'secrets', 'ssm', 'vault', 'prometheus', 'deploy', 'artifacts', 'endpoints', 'repo'];

/** What {@link StateStore.read} found under a key. */
export type StateRead<T> =
  | { status: 'absent' }
  | { status: 'ok'; value: T }
  /** Something is stored but cannot be read as a value (a corrupt file): `reason` names where and why. */
  | { status: 'unreadable'; reason: string };

/** Persistent key-value state of the auditor (checkpoints). Never holds a secret. */
export interface StateStore {
  /** The value, or undefined when there is none or it cannot be read (see `read`). */
  get<T>(key: string): Promise<T | undefined>;
  /** Like get, but tells an absent value from one that cannot be read, so a check can say so. */
  read<T>(key: string): Promise<StateRead<T>>;
  set<T>(key: string, value: T): Promise<void>;
}
