/**
 * Vault KV secrets engine, version 2 (and the plain version 1), per wire-protocols.md §D.3.
 *
 * The v2 quirks clients trip over are reproduced on purpose: a soft-deleted or destroyed
 * version reads as a 404 that still carries the envelope (and no `errors` key), a v1-style path
 * on a v2 mount is a 404 with a warning, and "nothing there" is a 404 with `{"errors":[]}`.
 */
import { isJsonObject, type JsonObject } from './aws-json';
import {
  badRequest,
  empty,
  isoTime,
  notFound,
  ok,
  unsupported,
  type VaultEngine,
  type VaultReply,
  type VaultRequest,
} from './vault-engine';

export interface KvVersion {
  data: JsonObject;
  created: Date;
  deleted?: Date;
  destroyed: boolean;
}

interface KvSecret {
  versions: Map<number, KvVersion>;
  current: number;
  created: Date;
  updated: Date;
  customMetadata: Record<string, string> | null;
  casRequired: boolean;
}

export interface PutKvOptions {
  customMetadata?: Record<string, string>;
  createdTime?: Date;
  /** Soft-delete the version this call writes (v2 only). */
  deleted?: boolean;
  /** Destroy the version this call writes (v2 only). */
  destroyed?: boolean;
  /** KV version of the mount if it does not exist yet; default 2. */
  kvVersion?: 1 | 2;
}

const V1_PATH_WARNING =
  "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";

const V2_PREFIXES = ['data', 'metadata', 'delete', 'undelete', 'destroy', 'config', 'subkeys'] as const;

function splitV2(path: string): { prefix: string; rest: string } | undefined {
  const slash = path.indexOf('/');
  const prefix = slash < 0 ? path : path.slice(0, slash);
  if (!(V2_PREFIXES as readonly string[]).includes(prefix)) return undefined;
  return { prefix, rest: slash < 0 ? '' : path.slice(slash + 1) };
}

/** The immediate children of `dir` among `paths`; folders end in `/`. */
function listKeys(paths: Iterable<string>, dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  const prefix = base === '' ? '' : `${base}/`;
  const keys = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    const slash = rest.indexOf('/');
    keys.add(slash < 0 ? rest : `${rest.slice(0, slash)}/`);
  }
  return [...keys].sort();
}

/** JSON merge patch (RFC 7396), as KV v2 PATCH applies it. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return patch;
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class KvEngine implements VaultEngine {
  readonly type = 'kv';
  private readonly secrets = new Map<string, KvSecret>();
  private readonly v1 = new Map<string, JsonObject>();

  constructor(
    readonly kvVersion: 1 | 2,
    private readonly now: () => Date,
  ) {}

  operation(req: Pick<VaultRequest, 'method' | 'path' | 'list'>): string {
    if (req.list) return 'kv-list';
    const prefix = this.kvVersion === 2 ? splitV2(req.path)?.prefix : undefined;
    if (prefix === 'metadata') return req.method === 'GET' ? 'kv-metadata' : 'kv-metadata-write';
    if (req.method === 'GET') return 'kv-read';
    if (req.method === 'DELETE' || prefix === 'delete' || prefix === 'destroy' || prefix === 'undelete') return 'kv-delete';
    return 'kv-write';
  }

  // ---- seeding -------------------------------------------------------------------------

  put(path: string, data: JsonObject, opts: PutKvOptions = {}): number {
    const clean = path.replace(/^\/+|\/+$/g, '');
    if (this.kvVersion === 1) {
      this.v1.set(clean, structuredClone(data));
      return 1;
    }
    const at = opts.createdTime ?? this.now();
    const version = this.write(clean, structuredClone(data), at);
    const secret = this.secrets.get(clean);
    const v = secret?.versions.get(version);
    if (secret && opts.customMetadata) secret.customMetadata = { ...opts.customMetadata };
    if (v && opts.deleted) v.deleted = at;
    if (v && opts.destroyed) {
      v.destroyed = true;
      v.data = {};
    }
    return version;
  }

  private write(path: string, data: JsonObject, at: Date): number {
    const secret = this.secrets.get(path) ?? {
      versions: new Map<number, KvVersion>(),
      current: 0,
      created: at,
      updated: at,
      customMetadata: null,
      casRequired: false,
    };
    secret.current += 1;
    secret.updated = at;
    secret.versions.set(secret.current, { data, created: at, destroyed: false });
    this.secrets.set(path, secret);
    return secret.current;
  }

  // ---- HTTP ----------------------------------------------------------------------------

  handle(req: VaultRequest): VaultReply {
    if (this.kvVersion === 1) return this.handleV1(req);
    const split = splitV2(req.path);
    // Everything outside data/, metadata/, ... is the v1 API, which a v2 mount answers with a warning.
    if (!split) return { kind: 'envelope', status: 404, data: null, warnings: [V1_PATH_WARNING] };
    const { prefix, rest } = split;
    switch (prefix) {
      case 'data':
        return this.handleData(req, rest);
      case 'metadata':
        return this.handleMetadata(req, rest);
      case 'delete':
      case 'undelete':
      case 'destroy':
        return this.handleVersions(req, prefix, rest);
      case 'config':
        if (req.method !== 'GET') return unsupported();
        return ok({ cas_required: false, delete_version_after: '0s', max_versions: 0 });
      default:
        return notFound();
    }
  }

  private handleV1(req: VaultRequest): VaultReply {
    if (req.list) {
      const keys = listKeys(this.v1.keys(), req.path);
      return keys.length ? ok({ keys }) : notFound();
    }
    switch (req.method) {
      case 'GET': {
        const data = this.v1.get(req.path);
        // KV v1 reports its default lease (768h) as the lease duration.
        return data ? { kind: 'envelope', data: structuredClone(data), leaseDuration: 2764800 } : notFound();
      }
      case 'POST':
      case 'PUT':
        this.v1.set(req.path, structuredClone(req.body));
        return empty();
      case 'DELETE':
        this.v1.delete(req.path);
        return empty();
      default:
        return unsupported();
    }
  }

  private versionMeta(secret: KvSecret, n: number, v: KvVersion): JsonObject {
    return {
      created_time: isoTime(v.created),
      custom_metadata: secret.customMetadata,
      deletion_time: v.deleted ? isoTime(v.deleted) : '',
      destroyed: v.destroyed,
      version: n,
    };
  }

  private handleData(req: VaultRequest, path: string): VaultReply {
    if (req.list) return unsupported();
    switch (req.method) {
      case 'GET':
        return this.read(path, req.query.get('version'));
      case 'POST':
      case 'PUT':
        return this.writeRequest(path, req.body);
      case 'PATCH':
        return this.patch(path, req);
      case 'DELETE': {
        const secret = this.secrets.get(path);
        const v = secret?.versions.get(secret.current);
        if (v && !v.deleted) v.deleted = this.now();
        return empty();
      }
      default:
        return unsupported();
    }
  }

  private read(path: string, versionParam: string | null): VaultReply {
    const secret = this.secrets.get(path);
    if (!secret) return notFound();
    const n = versionParam && versionParam !== '0' ? Number(versionParam) : secret.current;
    if (!Number.isInteger(n)) return badRequest('invalid version');
    const v = secret.versions.get(n);
    if (!v) return notFound();
    const metadata = this.versionMeta(secret, n, v);
    if (v.deleted || v.destroyed) return { kind: 'envelope', status: 404, data: { data: null, metadata } };
    return ok({ data: structuredClone(v.data), metadata });
  }

  private writeRequest(path: string, body: JsonObject): VaultReply {
    const data = body.data;
    if (!isJsonObject(data)) return badRequest('no data provided');
    const secret = this.secrets.get(path);
    const options = isJsonObject(body.options) ? body.options : {};
    const cas = options.cas;
    if (cas !== undefined || secret?.casRequired) {
      const current = secret?.current ?? 0;
      if (typeof cas !== 'number') {
        return badRequest('check-and-set parameter required for this call');
      }
      if (cas !== current) return badRequest('check-and-set parameter did not match the current version');
    }
    const n = this.write(path, structuredClone(data), this.now());
    const stored = this.secrets.get(path);
    const v = stored?.versions.get(n);
    if (!stored || !v) return notFound();
    return ok(this.versionMeta(stored, n, v));
  }

  private patch(path: string, req: VaultRequest): VaultReply {
    if (req.contentType !== 'application/merge-patch+json') {
      return { kind: 'errors', status: 415, errors: ['PATCH requires the application/merge-patch+json content type'] };
    }
    const secret = this.secrets.get(path);
    const v = secret?.versions.get(secret.current);
    if (!secret || !v || v.deleted || v.destroyed) return notFound();
    const patched = mergePatch(v.data, req.body.data);
    if (!isJsonObject(patched)) return badRequest('no data provided');
    return this.writeRequest(path, { data: patched });
  }

  private handleMetadata(req: VaultRequest, path: string): VaultReply {
    if (req.list) {
      const keys = listKeys(this.secrets.keys(), path);
      return keys.length ? ok({ keys }) : notFound();
    }
    const secret = this.secrets.get(path);
    switch (req.method) {
      case 'GET': {
        if (!secret) return notFound();
        const versions: JsonObject = {};
        let oldest = 0;
        for (const [n, v] of secret.versions) {
          if (oldest === 0) oldest = n;
          versions[String(n)] = {
            created_time: isoTime(v.created),
            deletion_time: v.deleted ? isoTime(v.deleted) : '',
            destroyed: v.destroyed,
          };
        }
        return ok({
          cas_required: secret.casRequired,
          created_time: isoTime(secret.created),
          current_version: secret.current,
          custom_metadata: secret.customMetadata,
          delete_version_after: '0s',
          max_versions: 0,
          oldest_version: oldest,
          updated_time: isoTime(secret.updated),
          versions,
        });
      }
      case 'DELETE':
        this.secrets.delete(path);
        return empty();
      case 'POST':
      case 'PUT': {
        if (!secret) return notFound();
        if (typeof req.body.cas_required === 'boolean') secret.casRequired = req.body.cas_required;
        const custom = req.body.custom_metadata;
        if (isJsonObject(custom)) {
          secret.customMetadata = Object.fromEntries(Object.entries(custom).map(([k, v]) => [k, String(v)]));
        }
        return empty();
      }
      default:
        return unsupported();
    }
  }

  private handleVersions(req: VaultRequest, action: 'delete' | 'undelete' | 'destroy', path: string): VaultReply {
    if (req.method !== 'POST' && req.method !== 'PUT') return unsupported();
    const list = req.body.versions;
    if (!Array.isArray(list) || list.length === 0 || !list.every((n) => Number.isInteger(n))) {
      return badRequest('no version number provided');
    }
    const secret = this.secrets.get(path);
    if (!secret) return empty();
    for (const n of list) {
      const v = secret.versions.get(Number(n));
      if (!v) continue;
      if (action === 'delete' && !v.destroyed) v.deleted = this.now();
      if (action === 'undelete' && !v.destroyed) delete v.deleted;
      if (action === 'destroy') {
        v.destroyed = true;
        v.data = {};
      }
    }
    return empty();
  }
}
