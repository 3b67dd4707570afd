/**
 * The secret store checks see: every configured provider (env files, PEM files, and — when
 * configured — SSM Parameter Store and Vault KV) behind one interface. Each value read is
 * registered with the run's known-secret scrubber before anyone can see it.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { PrivateKeyFile, SecretHolder, SecretProvider, SecretStore, SigningKeyHolder, SigningKeyName } from '../core/sources';
import { Secret, type KnownSecrets } from '../core/secret';
import type { SecretsConfig } from '../config/schema';
import { parseDotenv } from './dotenv';
import { publicKeyOfPrivatePem, describePrivateKeyFile } from './pem';
import { guard } from './errors';

const SOURCE = 'secrets';

export const SIGNING_KEY_ENV: Record<SigningKeyName, string> = {
  receipt: 'RECEIPT_SIGNING_PRIVATE_KEY',
  root: 'ROOT_SIGNING_PRIVATE_KEY',
};

export const SECRET_NAME_RE = /SECRET|PASSW|TOKEN|PRIVATE|KEY|CREDENTIAL|AUTH|SALT|SIGNING|CERT/i;

/** The password of a URL value (`postgres://app:<password>@db/x`), when it has one. */
export function urlPassword(value: string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return undefined;
  try {
    const u = new URL(value);
    return u.password ? decodeURIComponent(u.password) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Registers what is secret in an env value with the scrubber: the password of a URL, or the
 * whole value of a secret-named variable. Plain settings (SERVICE_NAME=identity) are not
 * registered: scrubbing them would blank ordinary words in reports.
 */
export function registerEnvValue(known: KnownSecrets, name: string, value: string): void {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      const u = new URL(value);
      if (u.password) known.add(decodeURIComponent(u.password));
      if (SECRET_NAME_RE.test(name) && !u.password) known.add(value);
      return;
    } catch {
      // not a URL after all: fall through
    }
  }
  if (SECRET_NAME_RE.test(name)) known.add(value);
}

/** One backend of the secret store. */
export interface SecretBackend {
  readonly provider: SecretProvider;
  holders(name: string, services: readonly string[]): Promise<SecretHolder[]>;
  /** Every secret value it holds for the services (see SecretStore.all). */
  all(services: readonly string[]): Promise<SecretHolder[]>;
  /** Private keys at rest (see SecretStore.privateKeyFiles); only the PEM-file backend has any. */
  privateKeyFiles?(): Promise<PrivateKeyFile[]>;
  signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]>;
}

/** Env files of the services (sidecar mode). Parsed once per run. */
export class EnvFileBackend implements SecretBackend {
  readonly provider = 'env_file' as const;
  readonly #files: Record<string, string>;
  readonly #signingService: string;
  readonly #known: KnownSecrets;
  readonly #cache = new Map<string, Promise<{ vars: Map<string, string>; mtime: Date }>>();

  constructor(files: Record<string, string>, signingService: string, known: KnownSecrets) {
    this.#files = files;
    this.#signingService = signingService;
    this.#known = known;
  }

  #load(service: string): Promise<{ vars: Map<string, string>; mtime: Date }> | undefined {
    const file = this.#files[service];
    if (!file) return undefined;
    let p = this.#cache.get(service);
    if (!p) {
      p = guard(SOURCE, `reading env file ${file}`, async () => {
        const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
        const vars = parseDotenv(text, file, SOURCE);
        for (const [name, v] of vars) registerEnvValue(this.#known, name, v);
        return { vars, mtime: st.mtime };
      });
      this.#cache.set(service, p);
    }
    return p;
  }

  async holders(name: string, services: readonly string[]): Promise<SecretHolder[]> {
    const out: SecretHolder[] = [];
    for (const service of services) {
      const loaded = await this.#load(service);
      const v = loaded?.vars.get(name);
      if (loaded && v !== undefined && v !== '') {
        out.push({ service, name, provider: this.provider, origin: this.#files[service], value: new Secret(v), lastModified: loaded.mtime });
      }
    }
    return out;
  }

  async all(services: readonly string[]): Promise<SecretHolder[]> {
    const out: SecretHolder[] = [];
    for (const service of services) {
      const loaded = await this.#load(service);
      if (!loaded) continue;
      const origin = this.#files[service];
      for (const [name, v] of loaded.vars) {
        const password = urlPassword(v);
        const value = password ?? (SECRET_NAME_RE.test(name) ? v : '');
        if (value !== '') out.push({ service, name, provider: this.provider, origin, value: new Secret(value), lastModified: loaded.mtime });
      }
    }
    return out;
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    const loaded = await this.#load(this.#signingService);
    const pem = loaded?.vars.get(SIGNING_KEY_ENV[key]);
    if (!loaded || !pem) return [];
    const origin = `${this.#files[this.#signingService]} (${SIGNING_KEY_ENV[key]})`;
    return [{ key, provider: this.provider, origin, ...publicKeyOfPrivatePem(pem, SOURCE, origin) }];
  }
}

/** PEM files on the audit service's volume (the fallback path). */
export class PemFileBackend implements SecretBackend {
  readonly provider = 'pem_file' as const;
  readonly #files: Partial<Record<SigningKeyName, string>>;
  readonly #known: KnownSecrets;

  constructor(files: Partial<Record<SigningKeyName, string>>, known: KnownSecrets) {
    this.#files = files;
    this.#known = known;
  }

  async holders(): Promise<SecretHolder[]> {
    return [];
  }

  async all(): Promise<SecretHolder[]> {
    return [];
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    const file = this.#files[key];
    if (!file) return [];
    // The fallback path is where a key may be, not where one must be: a deployment that loads
    // its keys from env and removed the files (as it should) has none there.
    const pem = await guard(SOURCE, `reading PEM file ${file}`, () =>
      readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e))),
    );
    if (pem === undefined) return [];
    this.#known.add(pem);
    return [{ key, provider: this.provider, origin: file, ...publicKeyOfPrivatePem(pem, SOURCE, file) }];
  }

  async privateKeyFiles(): Promise<PrivateKeyFile[]> {
    const configured = new Map<string, SigningKeyName>();
    for (const [key, file] of Object.entries(this.#files) as [SigningKeyName, string | undefined][]) if (file) configured.set(resolve(file), key);
    const paths = new Set<string>(configured.keys());
    for (const dir of new Set([...configured.keys()].map((f) => dirname(f)))) {
      const entries = await guard(SOURCE, `listing ${dir}`, () =>
        readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e))),
      );
      for (const e of entries) if (e.isFile() || e.isSymbolicLink()) paths.add(join(dir, e.name));
    }
    const out: PrivateKeyFile[] = [];
    for (const path of [...paths].sort()) {
      const head = await guard(SOURCE, `reading ${path}`, () => readHead(path, MAX_KEY_FILE_HEAD));
      if (!head) continue;
      try {
        const found = describePrivateKeyFile(head.toString('latin1'), (block) => this.#known.add(block));
        if (found) out.push({ path, ...found, ...(configured.has(path) ? { configuredFor: configured.get(path) } : {}) });
      } finally {
        head.fill(0);
      }
    }
    return out;
  }
}

/** A private-key PEM is a few KiB; a file whose first 64 KiB hold no key armor is not a key file. */
const MAX_KEY_FILE_HEAD = 64 * 1024;

/** The first `max` bytes of a regular file; undefined when it is gone or not a regular file. */
async function readHead(path: string, max: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'EISDIR') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(max, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export class CompositeSecretStore implements SecretStore {
  readonly #backends: SecretBackend[];
  readonly #services: string[];

  constructor(backends: SecretBackend[], services: readonly string[]) {
    this.#backends = backends;
    this.#services = [...services];
  }

  services(): string[] {
    return [...this.#services];
  }

  providers(): SecretProvider[] {
    return this.#backends.map((b) => b.provider);
  }

  async holders(name: string): Promise<SecretHolder[]> {
    const all = await Promise.all(this.#backends.map((b) => b.holders(name, this.#services)));
    return all.flat();
  }

  async all(): Promise<SecretHolder[]> {
    const all = await Promise.all(this.#backends.map((b) => b.all(this.#services)));
    return all.flat();
  }

  async privateKeyFiles(): Promise<PrivateKeyFile[]> {
    const all = await Promise.all(this.#backends.map((b) => b.privateKeyFiles?.() ?? Promise.resolve([])));
    return all.flat();
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    const all = await Promise.all(this.#backends.map((b) => b.signingKeys(key)));
    return all.flat();
  }
}

export function envAndPemBackends(cfg: SecretsConfig, known: KnownSecrets): SecretBackend[] {
  const out: SecretBackend[] = [];
  if (cfg.env_files && Object.keys(cfg.env_files).length > 0) out.push(new EnvFileBackend(cfg.env_files, cfg.signing_key_service, known));
  if (cfg.pem_files && (cfg.pem_files.receipt || cfg.pem_files.root)) out.push(new PemFileBackend(cfg.pem_files, known));
  return out;
}
