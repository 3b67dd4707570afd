/**
 * HashiCorp Vault through node-vault: KV v2 reads, token lookups and sys/health.
 *
 * Wire facts this module leans on (shared/reference/wire-protocols.md D, E):
 * - node-vault resolves every sys/health response, 503-sealed included, so `sealed` is read
 *   from the body. Other calls on a sealed Vault reject with 503 "Vault is sealed": the source
 *   reports it as down (reason `sealed`), never as an absent secret.
 * - A missing secret is 404 `{"errors":[]}` (message "Status 404"); a soft-deleted version
 *   is 404 with an envelope and `data.data: null`. Both mean "absent", not "down". A 404 with
 *   an error text ("no handler for route": no such mount) is a misconfiguration and an error.
 * - 403 means the token may not read that path; the error names the path, never the token.
 * - axios has no default timeout, and node-vault's `list()` would send the LIST verb, so the
 *   client is built with `requestOptions.timeout` and `noCustomHTTPVerbs: true`.
 */
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import NodeVault = require('node-vault');
import type { SecretHolder, SigningKeyHolder, SigningKeyName, TransitKeyInfo, TransitVerdict, VaultHealth, VaultSource, VaultTokenInfo } from '../core/sources';
import { Secret, type KnownSecrets } from '../core/secret';
import { sourceUnavailable } from '../core/errors';
import type { VaultConfig } from '../config/schema';
import { wrapSourceError } from './errors';
import { describeError } from '../core/redact';
import { publicKeyOfPrivatePem } from './pem';
import { SIGNING_KEY_ENV, type SecretBackend } from './secrets';

const SOURCE = 'vault';

/**
 * Idle keep-alive sockets are dropped after 4 s: a server (or proxy) that closes idle
 * connections after 5 s — Node's default — would otherwise race the next request on a reused
 * socket and fail it with ECONNRESET, as happened between verifies while artifacts hashed.
 */
const KEEP_ALIVE = { keepAlive: true, timeout: 4_000 } as const;

/** Throttling and gateway errors are worth another try; nothing else is. */
const RETRYABLE_STATUS = new Set([429, 502, 504]);

function statusOf(e: unknown): number | undefined {
  const s = (e as { response?: { statusCode?: unknown } })?.response?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The `errors` strings of a Vault error body (empty for "not found" and for soft-deleted versions). */
function errorsOf(e: unknown): string[] {
  const errors = (e as { response?: { body?: { errors?: unknown } } })?.response?.body?.errors;
  return Array.isArray(errors) ? errors.filter((x): x is string => typeof x === 'string' && x.trim() !== '') : [];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function malformed(what: string, detail: string) {
  return sourceUnavailable(SOURCE, 'malformed_response', `${what}: malformed response: ${detail}`);
}

/** A field value as text; empty containers and blank strings count as empty. */
function fieldText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v.trim() === '' ? '' : v;
  if (Array.isArray(v)) return v.length === 0 ? '' : JSON.stringify(v);
  if (isObject(v)) return Object.keys(v).length === 0 ? '' : JSON.stringify(v);
  return String(v);
}

/** Public keys are not secrets, and every ed25519 SPKI shares a prefix the scrubber would then mangle. */
function isPublicPem(s: string): boolean {
  return /^\s*-----BEGIN PUBLIC KEY-----/.test(s);
}

/**
 * Runtime fields that are public by definition: the JWKS URI is what the IdP publishes, and
 * findings name the key set by it. A URL with credentials or a query string stays secret.
 */
function isPublicField(field: string, value: string): boolean {
  return field === 'oidc_jwks_uri' && /^https?:\/\/[^\s@?#]+$/i.test(value.trim());
}

/**
 * One node-vault client per run, shared by the VaultSource and the KV secret backend. The
 * token (and CA) are read on first use, so a missing token file fails the Vault checks with
 * a clear error instead of stopping the run.
 */
export class VaultClientHandle {
  readonly config: VaultConfig;
  readonly #known: KnownSecrets;
  #agent: HttpAgent | HttpsAgent;
  #client: Promise<NodeVault.client> | undefined;
  #sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms));

  constructor(config: VaultConfig, known: KnownSecrets) {
    this.config = config;
    this.#known = known;
    // Our own agent, so close() can drop keep-alive sockets instead of leaving them to the process.
    this.#agent = config.address.startsWith('https:') ? new HttpsAgent(KEEP_ALIVE) : new HttpAgent(KEEP_ALIVE);
  }

  async #token(): Promise<string> {
    const c = this.config;
    let token: string | undefined;
    if (c.token_file) {
      const file = c.token_file;
      // Vault Agent writes the bare token, usually with a trailing newline.
      token = (await readFile(file, 'utf8').catch((e: unknown) => {
        throw wrapSourceError(SOURCE, `reading token file ${file}`, e);
      })).trim();
      if (!token) throw sourceUnavailable(SOURCE, 'no_token', `token file ${file} is empty`);
    } else if (c.token_env) {
      token = process.env[c.token_env]?.trim();
      if (!token) throw sourceUnavailable(SOURCE, 'no_token', `environment variable ${c.token_env} (token_env) is not set`);
    }
    if (!token) throw sourceUnavailable(SOURCE, 'no_token', 'no token configured (token_file or token_env)');
    this.#known.add(token);
    return token;
  }

  client(): Promise<NodeVault.client> {
    this.#client ??= (async () => {
      const token = await this.#token();
      const ca = this.config.ca_file
        ? await readFile(this.config.ca_file, 'utf8').catch((e: unknown) => {
            throw wrapSourceError(SOURCE, `reading CA file ${this.config.ca_file}`, e);
          })
        : undefined;
      // With a CA the TLS agent is replaced, and the handle owns the replacement (close() destroys it).
      if (ca && this.#agent instanceof HttpsAgent) {
        this.#agent.destroy();
        this.#agent = new HttpsAgent({ ...KEEP_ALIVE, ca });
      }
      const agentOpt = this.#agent instanceof HttpsAgent ? { httpsAgent: this.#agent } : { httpAgent: this.#agent };
      return NodeVault({
        apiVersion: 'v1',
        endpoint: this.config.address,
        token,
        ...(this.config.namespace ? { namespace: this.config.namespace } : {}),
        noCustomHTTPVerbs: true,
        requestOptions: { timeout: this.config.timeout, ...agentOpt },
      });
    })();
    return this.#client;
  }

  /** Runs one Vault call; retries throttling and gateway errors up to max_attempts, then wraps the failure. */
  async call<T>(what: string, fn: (v: NodeVault.client) => Promise<T>): Promise<T> {
    const v = await this.client();
    const attempts = this.config.max_attempts;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(v);
      } catch (e) {
        const status = statusOf(e);
        if (status !== undefined && RETRYABLE_STATUS.has(status) && attempt < attempts) {
          await this.#sleep(Math.random() * Math.min(100 * 2 ** attempt, 2_000));
          continue;
        }
        if (status === 503 && /sealed/i.test((e as Error).message)) throw sourceUnavailable(SOURCE, 'sealed', `${what}: Vault is sealed`);
        if (status === 429) throw sourceUnavailable(SOURCE, 'throttled', `${what}: throttled (gave up after ${attempt} attempts)`);
        throw wrapSourceError(SOURCE, what, e);
      }
    }
  }

  registerSecret(value: string): void {
    if (value && !isPublicPem(value)) this.#known.add(value);
  }

  close(): void {
    this.#agent.destroy();
  }
}

function tokenInfo(what: string, body: unknown, fallbackLabel: string, known: (v: string) => void): VaultTokenInfo {
  if (!isObject(body) || !isObject(body.data)) throw malformed(what, 'no data object');
  const d = body.data;
  // lookup-self echoes the token itself in `id`; it is a secret and is dropped here.
  if (typeof d.id === 'string' && d.id) known(d.id);
  const policies = Array.isArray(d.policies) ? d.policies.filter((p): p is string => typeof p === 'string') : [];
  const ttl = typeof d.ttl === 'number' ? d.ttl : Number(d.ttl ?? 0);
  if (!Number.isFinite(ttl)) throw malformed(what, 'ttl is not a number');
  let expireTime: Date | null = null;
  if (typeof d.expire_time === 'string' && d.expire_time) {
    const t = new Date(d.expire_time);
    if (Number.isNaN(t.getTime())) throw malformed(what, 'expire_time is not a date');
    expireTime = t;
  }
  const accessor = typeof d.accessor === 'string' && d.accessor ? d.accessor : undefined;
  const display = typeof d.display_name === 'string' && d.display_name ? d.display_name : undefined;
  return {
    label: display ?? accessor ?? fallbackLabel,
    ...(accessor ? { accessor } : {}),
    policies,
    ...(typeof d.path === 'string' ? { path: d.path } : {}),
    ttl,
    expireTime,
    // Root tokens usually carry no `renewable` key at all: absent means not renewable.
    renewable: d.renewable === true,
    ...(typeof d.type === 'string' ? { type: d.type } : {}),
  };
}

export class NodeVaultSource implements VaultSource {
  readonly #h: VaultClientHandle;
  readonly kvMount: string;
  readonly runtimePath: string;
  readonly tokenAccessors: Readonly<Record<string, string>>;

  constructor(handle: VaultClientHandle) {
    this.#h = handle;
    this.kvMount = handle.config.kv_mount;
    this.runtimePath = handle.config.runtime_path;
    this.tokenAccessors = { ...handle.config.token_accessors };
  }

  async health(): Promise<VaultHealth> {
    const what = 'reading sys/health';
    const body = await this.#h.call(what, (v) => v.health() as Promise<unknown>);
    if (isObject(body) && Array.isArray(body.errors)) {
      // node-vault resolves every sys/health status, so a failure shows up only as an error body.
      const first = body.errors.find((x): x is string => typeof x === 'string') ?? '';
      const [reason, text] = /permission denied/i.test(first)
        ? ['forbidden', 'access denied']
        : /rate limit/i.test(first)
          ? ['throttled', 'throttled']
          : ['server_error', 'server error'];
      throw sourceUnavailable(SOURCE, reason, `${what}: ${text}${first ? `: ${first.replace(/\s+/g, ' ').trim()}` : ''}`);
    }
    if (!isObject(body) || typeof body.sealed !== 'boolean' || typeof body.initialized !== 'boolean') {
      throw malformed(what, 'expected initialized and sealed flags');
    }
    return {
      initialized: body.initialized,
      sealed: body.sealed,
      standby: body.standby === true,
      ...(typeof body.version === 'string' ? { version: body.version } : {}),
    };
  }

  async readKv(path: string): Promise<Record<string, Secret> | undefined> {
    return (await this.readKvVersion(path))?.fields;
  }

  /** The current version's fields and its created_time (for SecretHolder.lastModified). */
  async readKvVersion(path: string): Promise<{ fields: Record<string, Secret>; createdTime?: Date } | undefined> {
    const full = `${this.kvMount}/data/${path.replace(/^\/+/, '')}`;
    const what = `reading ${full}`;
    const body = await this.#h.call(what, async (v) => {
      try {
        return (await v.read(full)) as unknown;
      } catch (e) {
        // 404 with {"errors":[]} = no such secret; 404 with an envelope = deleted or destroyed version.
        // A 404 that names an error ("no handler for route") means the mount is not there: a
        // misconfiguration that must not read as "no secrets".
        if (statusOf(e) === 404) {
          if (errorsOf(e).length === 0) return undefined;
          throw sourceUnavailable(SOURCE, 'not_found', `${what}: ${describeError(e)} (is kv_mount "${this.kvMount}" a KV v2 mount?)`);
        }
        throw e;
      }
    });
    if (body === undefined) return undefined;
    if (!isObject(body) || !isObject(body.data)) throw malformed(what, 'no data envelope');
    const data = body.data.data;
    if (data === null) return undefined;
    if (!isObject(data)) throw malformed(what, 'data.data is not an object');
    const fields: Record<string, Secret> = {};
    for (const [k, raw] of Object.entries(data)) {
      const text = fieldText(raw);
      if (!isPublicField(k, text)) this.#h.registerSecret(text);
      fields[k] = new Secret(text);
    }
    const meta = body.data.metadata;
    const created = isObject(meta) && typeof meta.created_time === 'string' ? new Date(meta.created_time) : undefined;
    return { fields, ...(created && !Number.isNaN(created.getTime()) ? { createdTime: created } : {}) };
  }

  async lookupSelf(): Promise<VaultTokenInfo> {
    const what = 'looking up the auditor token (auth/token/lookup-self)';
    const body = await this.#h.call(what, (v) => v.tokenLookupSelf() as Promise<unknown>);
    return tokenInfo(what, body, 'self', (t) => this.#h.registerSecret(t));
  }

  async lookupAccessor(accessor: string): Promise<VaultTokenInfo> {
    const what = `looking up the token by accessor ${accessor}`;
    const body = await this.#h.call(what, (v) => v.tokenLookupAccessor({ accessor }) as Promise<unknown>);
    return tokenInfo(what, body, accessor, (t) => this.#h.registerSecret(t));
  }

  /**
   * `GET <mount>/keys/<name>` (wire-protocols.md D.6). node-vault's transitReadKey hard-codes
   * the mount `transit`, so the generic read is used. A missing key is 404 `{"errors":[]}`.
   */
  async transitKey(mount: string, name: string): Promise<TransitKeyInfo | undefined> {
    const path = `${trimSlashes(mount)}/keys/${encodeURIComponent(name)}`;
    const what = `reading Transit key ${path}`;
    const body = await this.#h.call(what, async (v) => {
      try {
        return (await v.read(path)) as unknown;
      } catch (e) {
        if (statusOf(e) === 404 && errorsOf(e).length === 0) return undefined;
        if (statusOf(e) === 404) throw sourceUnavailable(SOURCE, 'not_found', `${what}: ${describeError(e)} (is "${trimSlashes(mount)}" a Transit mount?)`);
        throw e;
      }
    });
    if (body === undefined) return undefined;
    if (!isObject(body) || !isObject(body.data)) throw malformed(what, 'no data object');
    const d = body.data;
    if (typeof d.type !== 'string' || typeof d.exportable !== 'boolean') throw malformed(what, 'expected type and exportable');
    const num = (x: unknown, dflt: number) => (typeof x === 'number' && Number.isFinite(x) ? x : dflt);
    return {
      name: typeof d.name === 'string' ? d.name : name,
      type: d.type,
      exportable: d.exportable,
      // Older Vault versions leave supports_signing out: then the type decides.
      supportsSigning: typeof d.supports_signing === 'boolean' ? d.supports_signing : /^(ed25519|ecdsa-|rsa-|ml-dsa|slh-dsa)/.test(d.type),
      latestVersion: num(d.latest_version, 0),
      minDecryptionVersion: num(d.min_decryption_version, 1),
    };
  }

  /**
   * `POST <mount>/verify/<name>` with `hash_algorithm: sha2-256` (wire-protocols.md D.6): a wrong
   * signature is 200 `valid:false`; a signature Transit cannot even read (no prefix, a version
   * it does not have or no longer allows) is 400 with the reason. Anything else is an error.
   */
  async transitVerify(mount: string, name: string, input: string, signature: string): Promise<TransitVerdict> {
    const path = `${trimSlashes(mount)}/verify/${encodeURIComponent(name)}`;
    const what = `verifying through ${path}`;
    const body = await this.#h.call(what, async (v) => {
      try {
        return (await v.write(path, { input, signature, hash_algorithm: 'sha2-256' })) as unknown;
      } catch (e) {
        const errors = errorsOf(e);
        if (statusOf(e) === 400 && errors.length > 0) return { refused: errors[0] };
        throw e;
      }
    });
    if (isObject(body) && typeof body.refused === 'string') return { refused: body.refused };
    if (!isObject(body) || !isObject(body.data) || typeof body.data.valid !== 'boolean') throw malformed(what, 'expected data.valid');
    return { valid: body.data.valid };
  }
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

/**
 * Vault KV v2 as a secret backend: a service's secrets are the fields of
 * `<kv_mount>/data/<path_prefix>/<service>`, one field per NAME; the signing keys are
 * fields of the signing service's secret. Each service's secret is read once per run.
 */
export class VaultSecretBackend implements SecretBackend {
  readonly provider = 'vault' as const;
  readonly #src: NodeVaultSource;
  readonly #prefix: string;
  readonly #signingService: string;
  readonly #cache = new Map<string, Promise<{ fields: Record<string, Secret>; createdTime?: Date } | undefined>>();

  constructor(src: NodeVaultSource, handle: VaultClientHandle, signingService: string) {
    this.#src = src;
    this.#prefix = handle.config.path_prefix.replace(/^\/+|\/+$/g, '');
    this.#signingService = signingService;
  }

  #path(service: string): string {
    return `${this.#prefix}/${service}`;
  }

  #read(service: string): Promise<{ fields: Record<string, Secret>; createdTime?: Date } | undefined> {
    let p = this.#cache.get(service);
    if (!p) {
      p = this.#src.readKvVersion(this.#path(service));
      this.#cache.set(service, p);
    }
    return p;
  }

  async holders(name: string, services: readonly string[]): Promise<SecretHolder[]> {
    const out: SecretHolder[] = [];
    for (const service of services) {
      const read = await this.#read(service);
      const v = read?.fields[name];
      if (!read || !v || v.length === 0) continue;
      const origin = `vault:${this.#src.kvMount}/data/${this.#path(service)}#${name}`;
      out.push({ service, name, provider: this.provider, origin, value: v, ...(read.createdTime ? { lastModified: read.createdTime } : {}) });
    }
    return out;
  }

  async all(services: readonly string[]): Promise<SecretHolder[]> {
    const out: SecretHolder[] = [];
    for (const service of services) {
      const read = await this.#read(service);
      if (!read) continue;
      for (const [name, v] of Object.entries(read.fields)) {
        if (v.length === 0) continue;
        const origin = `vault:${this.#src.kvMount}/data/${this.#path(service)}#${name}`;
        out.push({ service, name, provider: this.provider, origin, value: v, ...(read.createdTime ? { lastModified: read.createdTime } : {}) });
      }
    }
    return out;
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    const read = await this.#read(this.#signingService);
    const field = SIGNING_KEY_ENV[key];
    const v = read?.fields[field];
    if (!v || v.length === 0) return [];
    const origin = `vault:${this.#src.kvMount}/data/${this.#path(this.#signingService)}#${field}`;
    return [{ key, provider: this.provider, origin, ...publicKeyOfPrivatePem(v.reveal(), SOURCE, origin) }];
  }
}
