/**
 * Vault transit engine, ed25519 keys only (wire-protocols.md §D.6): read key, sign, verify,
 * rotate. Signatures are real Ed25519 (node:crypto), so a client can verify them with the
 * public key from the key read, as it would against Vault.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { JsonObject } from './aws-json';
import { badRequest, isoTime, notFound, ok, unsupported, type VaultEngine, type VaultReply, type VaultRequest } from './vault-engine';

interface KeyVersion {
  privateKey: KeyObject;
  publicKey: KeyObject;
  created: Date;
}

interface TransitKey {
  name: string;
  versions: KeyVersion[];
  minDecryptionVersion: number;
}

/** Raw 32-byte Ed25519 public key, base64 (Vault's format), from a KeyObject. */
function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an ed25519 public key');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

export interface CreateTransitKeyOptions {
  /** PKCS#8 PEM private keys, oldest first; default one freshly generated key. */
  privateKeysPem?: string[];
  createdTime?: Date;
}

export class TransitEngine implements VaultEngine {
  readonly type = 'transit';
  private readonly keys = new Map<string, TransitKey>();

  constructor(private readonly now: () => Date) {}

  operation(req: Pick<VaultRequest, 'method' | 'path' | 'list'>): string {
    const [kind] = req.path.split('/');
    if (kind === 'sign') return 'transit-sign';
    if (kind === 'verify') return 'transit-verify';
    return 'transit-key';
  }

  createKey(name: string, opts: CreateTransitKeyOptions = {}): void {
    const created = opts.createdTime ?? this.now();
    const versions: KeyVersion[] = (opts.privateKeysPem ?? [undefined]).map((pem) => {
      if (pem === undefined) {
        const pair = generateKeyPairSync('ed25519');
        return { privateKey: pair.privateKey, publicKey: pair.publicKey, created };
      }
      const privateKey = createPrivateKey(pem);
      if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`transit key ${name}: not an ed25519 key`);
      return { privateKey, publicKey: createPublicKey(privateKey), created };
    });
    this.keys.set(name, { name, versions, minDecryptionVersion: 1 });
  }

  rotateKey(name: string): number {
    const key = this.keys.get(name);
    if (!key) throw new Error(`transit key ${name} does not exist`);
    const pair = generateKeyPairSync('ed25519');
    key.versions.push({ privateKey: pair.privateKey, publicKey: pair.publicKey, created: this.now() });
    return key.versions.length;
  }

  handle(req: VaultRequest): VaultReply {
    const parts = req.path.split('/');
    const [kind, name, extra] = parts;
    if (kind === 'keys' && name && parts.length === 2 && req.method === 'GET' && !req.list) return this.readKey(name);
    if (kind === 'keys' && name && extra === 'rotate' && (req.method === 'POST' || req.method === 'PUT')) {
      if (!this.keys.has(name)) return badRequest('encryption key not found');
      this.rotateKey(name);
      return this.readKey(name);
    }
    if (kind === 'keys' && req.list && parts.length <= 2 && !name) {
      const keys = [...this.keys.keys()].sort();
      return keys.length ? ok({ keys }) : notFound();
    }
    if ((kind === 'sign' || kind === 'verify') && name && (req.method === 'POST' || req.method === 'PUT')) {
      return kind === 'sign' ? this.sign(name, req.body) : this.verify(name, req.body);
    }
    if (kind === 'keys' || kind === 'sign' || kind === 'verify') return unsupported();
    return notFound();
  }

  private readKey(name: string): VaultReply {
    const key = this.keys.get(name);
    if (!key) return notFound();
    const keys: JsonObject = {};
    key.versions.forEach((v, i) => {
      keys[String(i + 1)] = {
        name: 'ed25519',
        public_key: rawPublicKey(v.publicKey),
        creation_time: isoTime(v.created),
        certificate_chain: '',
        hybrid_public_key: '',
      };
    });
    return ok({
      name,
      type: 'ed25519',
      derived: false,
      deletion_allowed: false,
      exportable: false,
      allow_plaintext_backup: false,
      latest_version: key.versions.length,
      min_available_version: 0,
      min_decryption_version: key.minDecryptionVersion,
      min_encryption_version: 0,
      supports_encryption: false,
      supports_decryption: false,
      supports_signing: true,
      supports_derivation: true,
      auto_rotate_period: 0,
      imported_key: false,
      keys,
    });
  }

  private input(body: JsonObject): Buffer | VaultReply {
    const input = body.input;
    if (typeof input !== 'string') return badRequest('missing input to process');
    // Go's base64.StdEncoding is strict; Buffer.from silently skips junk, so check the alphabet.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(input) || input.length % 4 !== 0) {
      return badRequest('unable to decode input as base64: illegal base64 data');
    }
    return Buffer.from(input, 'base64');
  }

  private sign(name: string, body: JsonObject): VaultReply {
    const key = this.keys.get(name);
    if (!key) return badRequest('encryption key not found');
    const input = this.input(body);
    if (!Buffer.isBuffer(input)) return input;
    const requested = body.key_version;
    const n = typeof requested === 'number' && requested > 0 ? requested : key.versions.length;
    const version = key.versions[n - 1];
    if (!version) return badRequest('requested version for signing is not available');
    const signature = sign(null, input, version.privateKey).toString('base64');
    return ok({ signature: `vault:v${n}:${signature}`, key_version: n });
  }

  private verify(name: string, body: JsonObject): VaultReply {
    const key = this.keys.get(name);
    if (!key) return badRequest('encryption key not found');
    const input = this.input(body);
    if (!Buffer.isBuffer(input)) return input;
    const signature = body.signature;
    if (typeof signature !== 'string') return badRequest('missing signature');
    if (!signature.startsWith('vault:')) return badRequest('invalid signature: no prefix');
    const fields = signature.split(':');
    if (fields.length !== 3) return badRequest('invalid signature: wrong number of fields');
    const vField = fields[1] ?? '';
    const n = /^v\d+$/.test(vField) ? Number(vField.slice(1)) : NaN;
    if (!Number.isInteger(n)) return badRequest('invalid signature: version number could not be decoded');
    if (n > key.versions.length) return badRequest('invalid signature: version is too new');
    if (n < key.minDecryptionVersion) return badRequest('ciphertext or signature version is disallowed by policy (too old)');
    const raw = fields[2] ?? '';
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(raw) || raw.length % 4 !== 0) return badRequest('invalid base64 signature value');
    const version = key.versions[n - 1];
    if (!version) return badRequest('invalid signature: version is too new');
    const sig = Buffer.from(raw, 'base64');
    // A well-formed but wrong signature is valid:false with 200, not an error.
    const valid = sig.length === 64 && verify(null, input, version.publicKey, sig);
    return ok({ valid });
  }
}
