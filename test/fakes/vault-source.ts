/** An in-memory VaultSource: KV v2 secrets by path, the auditor's token and tokens by accessor. */
import { Secret } from '../../src/core/secret';
import type { TransitKeyInfo, TransitVerdict, VaultHealth, VaultSource, VaultTokenInfo } from '../../src/core/sources';
import { Failures } from './failures';

type Method = 'health' | 'readKv' | 'lookupSelf' | 'lookupAccessor' | 'transitKey' | 'transitVerify';

/** A Transit verify answer: by `<mount>/<key>` and then `input signature`, what Vault says. */
export type TransitAnswers = Record<string, Record<string, TransitVerdict>>;

/** A well-behaved token: a service token with a TTL, renewable. */
export function goodToken(over: Partial<VaultTokenInfo> = {}): VaultTokenInfo {
  return { label: 'svc', accessor: 'acc-good', policies: ['default', 'aegis-runtime'], path: 'auth/kubernetes/login', ttl: 3600, expireTime: new Date('2026-11-22T13:00:00.000Z'), renewable: true, type: 'service', ...over };
}

/** A root token as lookup-self reports it: no TTL, no expiry, no renewable key. */
export function rootToken(over: Partial<VaultTokenInfo> = {}): VaultTokenInfo {
  return { label: 'root', accessor: 'acc-root', policies: ['root'], path: 'auth/token/root', ttl: 0, expireTime: null, renewable: false, type: 'service', ...over };
}

export class FakeVaultSource implements VaultSource {
  readonly kvMount: string;
  readonly runtimePath?: string;
  readonly tokenAccessors?: Readonly<Record<string, string>>;
  readonly failures = new Failures<Method>('vault');
  readonly #kv: Record<string, Record<string, string>>;
  readonly #self: VaultTokenInfo;
  readonly #byAccessor: Record<string, VaultTokenInfo>;
  readonly #health: VaultHealth;
  readonly #transitKeys: Record<string, TransitKeyInfo>;
  readonly #transitAnswers: TransitAnswers;
  readonly #settings: Set<string>;
  /** Transit verify calls, as `<mount>/<key> <input>`. */
  readonly verifies: string[] = [];
  /** KV paths read, in order. */
  readonly reads: string[] = [];

  constructor(data: {
    kv?: Record<string, Record<string, string>>;
    self?: VaultTokenInfo;
    accessors?: Record<string, VaultTokenInfo>;
    tokenAccessors?: Record<string, string>;
    kvMount?: string;
    runtimePath?: string;
    health?: Partial<VaultHealth>;
    transitKeys?: Record<string, TransitKeyInfo>;
    transitAnswers?: TransitAnswers;
    /** KV fields holding plain settings a check may show (a public JWKS URI): the canary does not plant them. */
    settings?: string[];
  } = {}) {
    this.#settings = new Set(data.settings ?? []);
    this.#transitKeys = data.transitKeys ?? {};
    this.#transitAnswers = data.transitAnswers ?? {};
    this.#kv = data.kv ?? {};
    this.#self = data.self ?? goodToken({ label: 'auditor', accessor: 'acc-self' });
    this.#byAccessor = data.accessors ?? {};
    this.tokenAccessors = data.tokenAccessors;
    this.kvMount = data.kvMount ?? 'secret';
    this.runtimePath = data.runtimePath;
    this.#health = { initialized: true, sealed: false, standby: false, ...data.health };
  }

  fail(method: Method, error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  async health(): Promise<VaultHealth> {
    this.failures.check('health');
    return { ...this.#health };
  }

  async readKv(path: string): Promise<Record<string, Secret> | undefined> {
    this.reads.push(path);
    this.failures.check('readKv');
    const data = this.#kv[path];
    if (!data) return undefined;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, new Secret(v)]));
  }

  async lookupSelf(): Promise<VaultTokenInfo> {
    this.failures.check('lookupSelf');
    return { ...this.#self };
  }

  async lookupAccessor(accessor: string): Promise<VaultTokenInfo> {
    this.failures.check('lookupAccessor');
    const t = this.#byAccessor[accessor];
    if (!t) throw new Error(`fake vault: no token with accessor ${accessor}`);
    return { ...t };
  }

  async transitKey(mount: string, name: string): Promise<TransitKeyInfo | undefined> {
    this.failures.check('transitKey');
    const k = this.#transitKeys[`${mount}/${name}`];
    return k ? { ...k } : undefined;
  }

  /** Unknown input/signature pairs verify as false, as a wrong signature does in Vault. */
  async transitVerify(mount: string, name: string, input: string, signature: string): Promise<TransitVerdict> {
    this.verifies.push(`${mount}/${name} ${input}`);
    this.failures.check('transitVerify');
    return this.#transitAnswers[`${mount}/${name}`]?.[`${input} ${signature}`] ?? { valid: false };
  }

  /** Every KV value (for the no-leak canary). */
  secretValues(): string[] {
    return Object.values(this.#kv).flatMap((d) => Object.entries(d).filter(([k]) => !this.#settings.has(k)).map(([, v]) => v));
  }
}
