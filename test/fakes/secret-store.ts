/** An in-memory SecretStore. Values are wrapped in Secret, as the real providers wrap them. */
import { Secret } from '../../src/core/secret';
import type { PrivateKeyFile, SecretHolder, SecretProvider, SecretStore, SigningKeyHolder, SigningKeyName } from '../../src/core/sources';
import { Failures } from './failures';

export interface FakeHolder {
  service: string;
  name: string;
  value: string;
  provider?: SecretProvider;
  lastModified?: Date;
  /** A plain setting a check may show (an enumerated AUTH_MODE): the canary does not plant it. */
  setting?: boolean;
}

export interface FakeSigningKey {
  key: SigningKeyName;
  provider?: SecretProvider;
  fingerprint: string;
  publicKeyPem: string;
  /** The private PEM the provider holds: never reaches a check, but the canary looks for it. */
  privateKeyPem?: string;
}

export class FakeSecretStore implements SecretStore {
  readonly #services: string[];
  readonly #holders: FakeHolder[];
  readonly #keys: FakeSigningKey[];
  readonly #files: PrivateKeyFile[];
  readonly failures = new Failures<'holders' | 'signingKeys' | 'privateKeyFiles'>('secrets');

  constructor(data: { services?: string[]; holders?: FakeHolder[]; signingKeys?: FakeSigningKey[]; privateKeyFiles?: PrivateKeyFile[] } = {}) {
    this.#services = data.services ?? ['identity', 'gateway', 'api', 'audit', 'insight'];
    this.#holders = data.holders ?? [];
    this.#keys = data.signingKeys ?? [];
    this.#files = data.privateKeyFiles ?? [];
  }

  async privateKeyFiles(): Promise<PrivateKeyFile[]> {
    this.failures.check('privateKeyFiles');
    return this.#files.map((f) => ({ ...f }));
  }

  fail(method: 'holders' | 'signingKeys' | 'privateKeyFiles', error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  services(): string[] {
    return [...this.#services];
  }

  providers(): SecretProvider[] {
    const set = new Set<SecretProvider>();
    for (const h of this.#holders) set.add(h.provider ?? 'env_file');
    for (const k of this.#keys) set.add(k.provider ?? 'env_file');
    return [...set];
  }

  async holders(name: string): Promise<SecretHolder[]> {
    this.failures.check('holders');
    return this.#holders
      .filter((h) => h.name === name)
      .map((h) => {
        const provider = h.provider ?? 'env_file';
        const origin = provider === 'ssm' ? `ssm:/aegis/test/${h.service}/${h.name}` : `/run/aegis/${h.service}.env`;
        return { service: h.service, name: h.name, provider, origin, value: new Secret(h.value), lastModified: h.lastModified };
      });
  }

  async all(): Promise<SecretHolder[]> {
    this.failures.check('holders');
    const names = [...new Set(this.#holders.map((h) => h.name))];
    return (await Promise.all(names.map((n) => this.holders(n)))).flat();
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    this.failures.check('signingKeys');
    return this.#keys
      .filter((k) => k.key === key)
      .map((k) => {
        const provider = k.provider ?? 'env_file';
        return { key, provider, origin: provider === 'pem_file' ? `/data/keys/${key}-signing.pem` : `/run/aegis/audit.env`, fingerprint: k.fingerprint, publicKeyPem: k.publicKeyPem };
      });
  }

  /** Every secret value this store holds (for the no-leak canary). */
  secretValues(): string[] {
    return [...this.#holders.filter((h) => !h.setting).map((h) => h.value), ...this.#keys.flatMap((k) => (k.privateKeyPem ? [k.privateKeyPem] : []))];
  }
}
