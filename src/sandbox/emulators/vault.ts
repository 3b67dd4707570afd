/**
 * HashiCorp Vault HTTP API emulator (wire-protocols.md §D) on a raw `http` server, for
 * node-vault and any other HTTP client.
 *
 * Node's HTTP parser rejects the `LIST` method with a 400 before any handler runs, so clients
 * must list with `GET ...?list=true`: build node-vault with `noCustomHTTPVerbs: true` (it then
 * sends `GET ?list=1`, which real Vault accepts too). LIST is still honoured here for clients
 * that reach the handler with it (none can through Node's parser today).
 *
 * Covered: the response envelope, token auth (`X-Vault-Token` or `Authorization: Bearer`),
 * simple ACL policies, KV v1/v2, sys/health, sys/seal-status, sealing, token lookup-self,
 * lookup and lookup-accessor, and transit keys (ed25519, ECDSA, RSA, symmetric) with sign/verify.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isJsonObject, type JsonObject } from './aws-json';
import { FaultController } from './faults';
import { LoopbackListener, readBody, truncatedJson, type RunningEmulator, type StartOptions } from './listener';
import { multierror, unsupported, type VaultEngine, type VaultReply, type VaultRequest } from './vault-engine';
import { KvEngine, type PutKvOptions } from './vault-kv';
import { allows, DEFAULT_POLICY, type Capability, type PolicyRules } from './vault-policy';
import { TransitEngine, type CreateTransitKeyOptions } from './vault-transit';

export interface VaultEmulatorOptions {
  /** Reported by sys/health; default 1.15.2. */
  version?: string;
  /** The root token's id; default a random `hvs.` token. */
  rootToken?: string;
  /** Clock in epoch milliseconds, for token expiry tests. */
  now?: () => number;
}

export interface CreateTokenOptions {
  id?: string;
  /** Policy names. Non-root tokens also get `default`, as Vault adds it. */
  policies: string[];
  /** Seconds; 0 or omitted = no expiry. */
  ttl?: number;
  renewable?: boolean;
  /** A root token: policies ["root"], path auth/token/root, no expiry. */
  root?: boolean;
  displayName?: string;
  accessor?: string;
  meta?: Record<string, string>;
}

export interface CreatedToken {
  id: string;
  accessor: string;
}

interface StoredToken {
  id: string;
  accessor: string;
  policies: string[];
  root: boolean;
  ttl: number;
  renewable: boolean;
  displayName: string;
  meta: Record<string, string> | null;
  /** Epoch milliseconds. */
  created: number;
}

interface Mount {
  path: string;
  engine: VaultEngine;
}

const PERMISSION_DENIED = multierror('permission denied');
const INVALID_TOKEN = multierror('permission denied', 'invalid token');
const SEALED = 'Vault is sealed';

function randomToken(prefix: string): string {
  return `${prefix}${randomBytes(18).toString('base64url')}`;
}

function parseBool(v: string | null): boolean {
  return v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

export class VaultEmulator {
  readonly faults = new FaultController();
  readonly rootToken: string;
  private readonly version: string;
  private readonly clock: () => number;
  private readonly tokens = new Map<string, StoredToken>();
  private readonly policies = new Map<string, PolicyRules>();
  private readonly mounts = new Map<string, Mount>();
  private readonly clusterId = randomUUID();
  private sealed = false;
  private initialized = true;
  private standby = false;
  private readonly listener: LoopbackListener;

  constructor(options: VaultEmulatorOptions = {}) {
    this.version = options.version ?? '1.15.2';
    this.clock = options.now ?? Date.now;
    this.rootToken = this.createToken({ id: options.rootToken, policies: ['root'], root: true }).id;
    this.listener = new LoopbackListener(
      'Vault',
      (req, res) => {
        this.handle(req, res).catch(() => {
          if (!res.headersSent) this.sendJson(res, 500, { errors: [multierror('internal error')] });
          else res.destroy();
        });
      },
      this.faults,
    );
  }

  start(options: StartOptions = {}): Promise<RunningEmulator> {
    return this.listener.start(options);
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  // ---- seeding and state ----------------------------------------------------------------

  seal(): void {
    this.sealed = true;
  }

  unseal(): void {
    this.sealed = false;
  }

  /** Health states other than sealed: an uninitialised Vault (501) or a standby node (429). */
  setHealth(state: { initialized?: boolean; standby?: boolean }): void {
    if (state.initialized !== undefined) this.initialized = state.initialized;
    if (state.standby !== undefined) this.standby = state.standby;
  }

  mountKv(mount: string, kvVersion: 1 | 2 = 2): KvEngine {
    const path = mount.replace(/^\/+|\/+$/g, '');
    const existing = this.mounts.get(path)?.engine;
    if (existing instanceof KvEngine) {
      if (existing.kvVersion !== kvVersion) throw new Error(`mount ${path} is KV v${existing.kvVersion}`);
      return existing;
    }
    if (existing) throw new Error(`mount ${path} is a ${existing.type} mount`);
    const engine = new KvEngine(kvVersion, () => new Date(this.clock()));
    this.mounts.set(path, { path, engine });
    return engine;
  }

  /** Write a secret (a new version on KV v2). The mount is created as KV v2 unless `opts.kvVersion` says 1. */
  putKv(mount: string, path: string, data: Record<string, unknown>, opts: PutKvOptions = {}): number {
    return this.mountKv(mount, opts.kvVersion ?? this.kvVersionOf(mount) ?? 2).put(path, data, opts);
  }

  private kvVersionOf(mount: string): 1 | 2 | undefined {
    const engine = this.mounts.get(mount.replace(/^\/+|\/+$/g, ''))?.engine;
    return engine instanceof KvEngine ? engine.kvVersion : undefined;
  }

  /** A transit key (ed25519 unless `type` says otherwise; mounted at `transit` unless `mount` is given). */
  createTransitKey(name: string, opts: CreateTransitKeyOptions & { mount?: string } = {}): void {
    this.transit(opts.mount ?? 'transit').createKey(name, opts);
  }

  rotateTransitKey(name: string, mount = 'transit'): number {
    return this.transit(mount).rotateKey(name);
  }

  /** Signatures of versions below this are refused as too old (a key's `min_decryption_version`). */
  setTransitMinDecryptionVersion(name: string, version: number, mount = 'transit'): void {
    this.transit(mount).setMinDecryptionVersion(name, version);
  }

  /** Enables a transit mount (`vault secrets enable -path=<mount> transit`) with no key yet. */
  mountTransit(mount = 'transit'): void {
    this.transit(mount);
  }

  private transit(mount: string): TransitEngine {
    const existing = this.mounts.get(mount)?.engine;
    if (existing instanceof TransitEngine) return existing;
    if (existing) throw new Error(`mount ${mount} is a ${existing.type} mount`);
    const engine = new TransitEngine(() => new Date(this.clock()));
    this.mounts.set(mount, { path: mount, engine });
    return engine;
  }

  /** `putPolicy('audit', { 'secret/data/aegis/*': ['read'], 'secret/metadata/*': ['list'] })` */
  putPolicy(name: string, rules: PolicyRules): void {
    if (name === 'root') throw new Error('the root policy cannot be changed');
    this.policies.set(name, { ...rules });
  }

  createToken(opts: CreateTokenOptions): CreatedToken {
    const root = opts.root === true;
    const policies = root
      ? ['root']
      : [...new Set(['default', ...opts.policies])].sort((a, b) => (a === 'default' ? -1 : b === 'default' ? 1 : a < b ? -1 : 1));
    const token: StoredToken = {
      id: opts.id ?? randomToken('hvs.'),
      accessor: opts.accessor ?? randomBytes(18).toString('base64url'),
      policies,
      root,
      ttl: root ? 0 : (opts.ttl ?? 0),
      renewable: root ? false : (opts.renewable ?? (opts.ttl ?? 0) > 0),
      displayName: root ? 'root' : opts.displayName ? `token-${opts.displayName}` : 'token',
      meta: opts.meta ? { ...opts.meta } : null,
      created: this.clock(),
    };
    if (this.tokens.has(token.id)) throw new Error('a token with this id already exists');
    this.tokens.set(token.id, token);
    return { id: token.id, accessor: token.accessor };
  }

  revokeToken(id: string): void {
    this.tokens.delete(id);
  }

  // ---- HTTP -----------------------------------------------------------------------------

  private sendJson(res: ServerResponse, status: number, body: unknown, malformed = false): void {
    const text = JSON.stringify(body);
    const out = malformed ? truncatedJson(text) : text;
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(out),
    });
    res.end(out);
  }

  private envelope(data: unknown, mountType: string, extra: { warnings?: string[]; leaseDuration?: number } = {}): JsonObject {
    return {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: extra.leaseDuration ?? 0,
      data,
      wrap_info: null,
      warnings: extra.warnings ?? null,
      auth: null,
      mount_type: mountType,
    };
  }

  private sendReply(res: ServerResponse, reply: VaultReply, mountType: string, malformed: boolean): void {
    switch (reply.kind) {
      case 'empty':
        res.writeHead(204, { 'Cache-Control': 'no-store' });
        res.end();
        return;
      case 'errors':
        this.sendJson(res, reply.status, { errors: reply.errors }, malformed);
        return;
      case 'envelope':
        this.sendJson(
          res,
          reply.status ?? 200,
          this.envelope(reply.data, mountType, { warnings: reply.warnings, leaseDuration: reply.leaseDuration }),
          malformed,
        );
        return;
    }
  }

  private findMount(path: string): { mount: Mount; rest: string } | undefined {
    let best: Mount | undefined;
    for (const m of this.mounts.values()) {
      if ((path === m.path || path.startsWith(`${m.path}/`)) && (!best || m.path.length > best.path.length)) best = m;
    }
    if (!best) return undefined;
    return { mount: best, rest: path.slice(best.path.length).replace(/^\/+|\/+$/g, '') };
  }

  /** Operation name for fault injection and request counts. */
  private operationOf(path: string, method: string, list: boolean): string {
    if (path === 'sys/health' || path === 'sys/seal-status') return path;
    if (path.startsWith('auth/token/')) return path;
    const found = this.findMount(path);
    if (found) return found.mount.engine.operation({ method, path: found.rest, list });
    return 'other';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rawMethod = (req.method ?? 'GET').toUpperCase();
    const list = rawMethod === 'LIST' || (rawMethod === 'GET' && parseBool(url.searchParams.get('list')));
    const method = rawMethod === 'LIST' ? 'GET' : rawMethod;
    const v1 = url.pathname.startsWith('/v1/');
    const path = v1 ? decodeURIComponent(url.pathname.slice(4)).replace(/^\/+|\/+$/g, '') : '';
    const operation = v1 ? this.operationOf(path, method, list) : 'other';

    const fault = this.faults.onRequest(operation);
    if (fault === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') return;
    const raw = await readBody(req);
    if (fault === 'throttle') {
      this.sendJson(res, 429, { errors: [`request path "${path}": rate limit quota exceeded`] });
      return;
    }
    if (fault === 'forbidden') {
      this.sendJson(res, 403, { errors: [PERMISSION_DENIED] });
      return;
    }
    if (fault === 'server-error') {
      this.sendJson(res, 500, { errors: [multierror('internal error')] });
      return;
    }
    const malformed = fault === 'malformed';

    if (!v1) {
      this.sendJson(res, 404, { errors: [] }, malformed);
      return;
    }
    if (raw === undefined) {
      this.sendJson(res, 413, { errors: ['request body too large'] }, malformed);
      return;
    }
    let body: JsonObject = {};
    if (raw.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        this.sendJson(res, 400, { errors: [`failed to parse JSON input: ${detail}`] }, malformed);
        return;
      }
      if (isJsonObject(parsed)) body = parsed;
    }
    const request: VaultRequest = {
      method,
      path,
      list,
      query: url.searchParams,
      body,
      contentType: (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '',
    };

    // Unauthenticated and usable while sealed.
    if (path === 'sys/health') {
      this.health(res, url.searchParams, rawMethod === 'HEAD', malformed);
      return;
    }
    if (path === 'sys/seal-status' && method === 'GET') {
      this.sendJson(res, 200, this.sealStatus(), malformed);
      return;
    }
    if (this.sealed) {
      this.sendJson(res, 503, { errors: [SEALED] }, malformed);
      return;
    }
    const token = this.authenticate(req);
    if (!token.ok) {
      this.sendJson(res, 403, { errors: [token.error] }, malformed);
      return;
    }
    if (!this.permitted(token.token, request)) {
      this.sendJson(res, 403, { errors: [PERMISSION_DENIED] }, malformed);
      return;
    }
    const { reply, mountType } = this.route(request, token.token);
    this.sendReply(res, reply, mountType, malformed);
  }

  private authenticate(req: IncomingMessage): { ok: true; token: StoredToken } | { ok: false; error: string } {
    const header = req.headers['x-vault-token'];
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const id = (typeof header === 'string' && header !== '' ? header : undefined) ?? bearer;
    if (!id) return { ok: false, error: PERMISSION_DENIED };
    const token = this.liveToken(id);
    return token ? { ok: true, token } : { ok: false, error: INVALID_TOKEN };
  }

  private liveToken(id: string): StoredToken | undefined {
    const token = this.tokens.get(id);
    if (!token) return undefined;
    if (token.ttl > 0 && this.clock() >= token.created + token.ttl * 1000) {
      this.tokens.delete(id); // Vault revokes expired tokens
      return undefined;
    }
    return token;
  }

  private permitted(token: StoredToken, req: VaultRequest): boolean {
    if (token.root) return true;
    const needed: Capability[] = req.list
      ? ['list']
      : req.method === 'GET' || req.method === 'HEAD'
        ? ['read']
        : req.method === 'DELETE'
          ? ['delete']
          : req.method === 'PATCH'
            ? ['patch']
            : ['create', 'update'];
    const rules = token.policies.map((p) => (p === 'default' ? DEFAULT_POLICY : (this.policies.get(p) ?? {})));
    return allows(req.path, needed, rules);
  }

  private route(req: VaultRequest, caller: StoredToken): { reply: VaultReply; mountType: string } {
    if (req.path.startsWith('auth/token/')) return { reply: this.tokenRoute(req, caller), mountType: 'token' };
    if (req.path.startsWith('sys/')) return { reply: unsupported(), mountType: 'system' };
    const found = this.findMount(req.path);
    if (!found) {
      return {
        reply: { kind: 'errors', status: 404, errors: [`no handler for route "${req.path}". route entry not found.`] },
        mountType: '',
      };
    }
    return { reply: found.mount.engine.handle({ ...req, path: found.rest }), mountType: found.mount.engine.type };
  }

  private tokenRoute(req: VaultRequest, caller: StoredToken): VaultReply {
    const sub = req.path.slice('auth/token/'.length);
    const post = req.method === 'POST' || req.method === 'PUT';
    switch (sub) {
      case 'lookup-self':
        if (req.method !== 'GET' && !post) return unsupported();
        return { kind: 'envelope', data: this.lookupData(caller, true) };
      case 'lookup': {
        const id = post ? req.body.token : req.query.get('token');
        if (typeof id !== 'string' || id === '') return { kind: 'errors', status: 400, errors: ['missing token'] };
        const token = this.liveToken(id);
        if (!token) return { kind: 'errors', status: 403, errors: ['bad token'] };
        return { kind: 'envelope', data: this.lookupData(token, true) };
      }
      case 'lookup-accessor': {
        if (!post) return unsupported();
        const accessor = req.body.accessor;
        if (typeof accessor !== 'string' || accessor === '') {
          return { kind: 'errors', status: 400, errors: ['missing accessor'] };
        }
        const token = [...this.tokens.values()].find((t) => t.accessor === accessor);
        const live = token ? this.liveToken(token.id) : undefined;
        if (!live) return { kind: 'errors', status: 400, errors: ['invalid accessor'] };
        // Looking up by accessor never reveals the token itself.
        return { kind: 'envelope', data: this.lookupData(live, false) };
      }
      default:
        return { kind: 'errors', status: 404, errors: [`no handler for route "${req.path}". route entry not found.`] };
    }
  }

  /** handleLookup in vault/token_store.go: lease fields only for tokens with a TTL. */
  private lookupData(t: StoredToken, withId: boolean): JsonObject {
    const data: JsonObject = {
      accessor: t.accessor,
      creation_time: Math.floor(t.created / 1000),
      creation_ttl: t.ttl,
      display_name: t.displayName,
      entity_id: '',
      expire_time: null,
      explicit_max_ttl: 0,
      id: withId ? t.id : '',
      meta: t.meta,
      num_uses: 0,
      orphan: t.root,
      path: t.root ? 'auth/token/root' : 'auth/token/create',
      policies: [...t.policies],
      ttl: 0,
      type: 'service',
    };
    if (t.ttl > 0) {
      const expires = t.created + t.ttl * 1000;
      data.expire_time = new Date(expires).toISOString();
      data.ttl = Math.max(0, Math.floor((expires - this.clock()) / 1000));
      data.issue_time = new Date(t.created).toISOString();
      data.renewable = t.renewable;
    }
    return data;
  }

  private sealStatus(): JsonObject {
    const body: JsonObject = {
      type: 'shamir',
      initialized: this.initialized,
      sealed: this.sealed,
      t: 1,
      n: 1,
      progress: 0,
      nonce: '',
      version: this.version,
      build_date: '2023-11-06T11:33:28Z',
      migration: false,
      recovery_seal: false,
      storage_type: 'inmem',
    };
    if (!this.sealed) {
      body.cluster_name = 'vault-cluster-sandbox';
      body.cluster_id = this.clusterId;
    }
    return body;
  }

  /** http/sys_health.go: not initialised, then sealed, then standby, else active. */
  private health(res: ServerResponse, query: URLSearchParams, head: boolean, malformed: boolean): void {
    const code = (name: string, fallback: number): number => {
      const v = Number(query.get(name));
      return query.has(name) && Number.isInteger(v) && v >= 100 && v < 600 ? v : fallback;
    };
    const active = code('activecode', 200);
    let status: number;
    if (!this.initialized) status = code('uninitcode', 501);
    else if (this.sealed) status = code('sealedcode', 503);
    else if (this.standby) status = parseBool(query.get('standbyok')) ? active : code('standbycode', 429);
    else status = active;
    if (head) {
      res.writeHead(status, { 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    const body: JsonObject = {
      initialized: this.initialized,
      sealed: this.sealed,
      standby: this.standby,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.clock() / 1000),
      version: this.version,
    };
    // cluster_name and cluster_id are omitted while sealed (not fetched, omitempty).
    if (this.initialized && !this.sealed) {
      body.cluster_name = 'vault-cluster-sandbox';
      body.cluster_id = this.clusterId;
    }
    this.sendJson(res, status, body, malformed);
  }
}
