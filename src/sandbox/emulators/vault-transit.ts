/**
 * Vault transit engine (wire-protocols.md §D.6): create, read, rotate keys; sign and verify.
 * Signatures are real, made with the emulator's own keys (node:crypto), with Vault's
 * semantics:
 * - ed25519 signs the decoded input bytes as they are (`hash_algorithm` is ignored);
 * - ECDSA and RSA hash the decoded input with `hash_algorithm` (default sha2-256) before they
 *   sign — so a client that sends base64(SHA-256(file)), as Aegis does, gets a signature over
 *   SHA-256(SHA-256(file)); ECDSA signatures are ASN.1 DER, RSA is PSS by default
 *   (`signature_algorithm: pkcs1v15` for PKCS#1 v1.5); `prehashed` is not emulated (400);
 * - symmetric keys (aes256-gcm96, the default type when none is given) cannot sign: 400.
 */
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { JsonObject } from './aws-json';
import { badRequest, isoTime, notFound, ok, unsupported, type VaultEngine, type VaultReply, type VaultRequest } from './vault-engine';

export const TRANSIT_KEY_TYPES = ['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type TransitKeyType = (typeof TRANSIT_KEY_TYPES)[number];

const CURVES: Partial<Record<TransitKeyType, { curve: string; name: string }>> = {
  'ecdsa-p256': { curve: 'prime256v1', name: 'P-256' },
  'ecdsa-p384': { curve: 'secp384r1', name: 'P-384' },
  'ecdsa-p521': { curve: 'secp521r1', name: 'P-521' },
};
const RSA_BITS: Partial<Record<TransitKeyType, number>> = { 'rsa-2048': 2048, 'rsa-3072': 3072, 'rsa-4096': 4096 };
/** Vault's hash_algorithm names → node's digest names. */
const HASHES: Record<string, string> = { sha1: 'sha1', 'sha2-224': 'sha224', 'sha2-256': 'sha256', 'sha2-384': 'sha384', 'sha2-512': 'sha512', 'sha3-256': 'sha3-256', 'sha3-384': 'sha3-384', 'sha3-512': 'sha3-512' };

interface KeyVersion {
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  created: Date;
}

interface TransitKey {
  name: string;
  type: TransitKeyType;
  exportable: boolean;
  versions: KeyVersion[];
  minDecryptionVersion: number;
}

const isAsymmetric = (t: TransitKeyType) => t === 'ed25519' || t in CURVES || t in RSA_BITS;

/** Raw 32-byte Ed25519 public key, base64 (Vault's format), from a KeyObject. */
function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an ed25519 public key');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

function newVersion(type: TransitKeyType, created: Date): KeyVersion {
  if (type === 'ed25519') return { ...generateKeyPairSync('ed25519'), created };
  const curve = CURVES[type];
  if (curve) return { ...generateKeyPairSync('ec', { namedCurve: curve.curve }), created };
  const bits = RSA_BITS[type];
  if (bits) return { ...generateKeyPairSync('rsa', { modulusLength: bits }), created };
  return { created }; // symmetric: nothing a client can ever see
}

export interface CreateTransitKeyOptions {
  /** Default ed25519 (the sandbox's API; over HTTP Vault's default, aes256-gcm96, applies). */
  type?: TransitKeyType;
  exportable?: boolean;
  /** PKCS#8 PEM private keys (ed25519, ECDSA or RSA, matching `type`), oldest first; default one freshly generated key. */
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
    const type = opts.type ?? 'ed25519';
    const created = opts.createdTime ?? this.now();
    const versions: KeyVersion[] = (opts.privateKeysPem ?? [undefined]).map((pem) => {
      if (pem === undefined) return newVersion(type, created);
      const privateKey = createPrivateKey(pem);
      const kt = privateKey.asymmetricKeyType;
      const fits = type === 'ed25519' ? kt === 'ed25519' : type in CURVES ? kt === 'ec' : type in RSA_BITS ? kt === 'rsa' : false;
      if (!fits) throw new Error(`transit key ${name}: not a ${type} key`);
      return { privateKey, publicKey: createPublicKey(privateKey), created };
    });
    this.keys.set(name, { name, type, exportable: opts.exportable ?? false, versions, minDecryptionVersion: 1 });
  }

  rotateKey(name: string): number {
    const key = this.keys.get(name);
    if (!key) throw new Error(`transit key ${name} does not exist`);
    key.versions.push(newVersion(key.type, this.now()));
    return key.versions.length;
  }

  /** `min_decryption_version` (signatures of older versions are refused as too old). */
  setMinDecryptionVersion(name: string, version: number): void {
    const key = this.keys.get(name);
    if (!key) throw new Error(`transit key ${name} does not exist`);
    key.minDecryptionVersion = version;
  }

  handle(req: VaultRequest): VaultReply {
    const parts = req.path.split('/');
    const [kind, name, extra] = parts;
    const write = req.method === 'POST' || req.method === 'PUT';
    if (kind === 'keys' && name && parts.length === 2 && req.method === 'GET' && !req.list) return this.readKey(name);
    if (kind === 'keys' && name && parts.length === 2 && write) return this.createOverHttp(name, req.body);
    if (kind === 'keys' && name && extra === 'rotate' && write) {
      if (!this.keys.has(name)) return badRequest('encryption key not found');
      this.rotateKey(name);
      return this.readKey(name);
    }
    if (kind === 'keys' && req.list && parts.length <= 2 && !name) {
      const keys = [...this.keys.keys()].sort();
      return keys.length ? ok({ keys }) : notFound();
    }
    if ((kind === 'sign' || kind === 'verify') && name && parts.length <= 3 && write) {
      // The hash algorithm may be the last path segment instead of a body field.
      const body = extra ? { ...req.body, hash_algorithm: extra } : req.body;
      return kind === 'sign' ? this.sign(name, body) : this.verify(name, body);
    }
    if (kind === 'keys' || kind === 'sign' || kind === 'verify') return unsupported();
    return notFound();
  }

  /** `POST keys/<name>`: `type` defaults to aes256-gcm96, as in Vault; an existing key is left as it is. */
  private createOverHttp(name: string, body: JsonObject): VaultReply {
    if (this.keys.has(name)) return { kind: 'empty' };
    const type = body.type === undefined ? 'aes256-gcm96' : body.type;
    if (typeof type !== 'string' || !(TRANSIT_KEY_TYPES as readonly string[]).includes(type)) return badRequest(`unknown key type: ${String(type)}`);
    this.createKey(name, { type: type as TransitKeyType, exportable: body.exportable === true });
    return this.readKey(name);
  }

  private readKey(name: string): VaultReply {
    const key = this.keys.get(name);
    if (!key) return notFound();
    const asym = isAsymmetric(key.type);
    const keys: JsonObject = {};
    key.versions.forEach((v, i) => {
      if (!asym || !v.publicKey) {
        keys[String(i + 1)] = Math.floor(v.created.getTime() / 1000);
        return;
      }
      keys[String(i + 1)] = {
        name: key.type === 'ed25519' ? 'ed25519' : (CURVES[key.type]?.name ?? key.type),
        public_key: key.type === 'ed25519' ? rawPublicKey(v.publicKey) : (v.publicKey.export({ type: 'spki', format: 'pem' }) as string),
        creation_time: isoTime(v.created),
        certificate_chain: '',
        hybrid_public_key: '',
      };
    });
    return ok({
      name,
      type: key.type,
      derived: false,
      deletion_allowed: false,
      exportable: key.exportable,
      allow_plaintext_backup: false,
      latest_version: key.versions.length,
      min_available_version: 0,
      min_decryption_version: key.minDecryptionVersion,
      min_encryption_version: 0,
      supports_encryption: !asym || key.type.startsWith('rsa-'),
      supports_decryption: !asym || key.type.startsWith('rsa-'),
      supports_signing: asym,
      supports_derivation: !asym || key.type === 'ed25519',
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

  /**
   * The digest the key signs the input with: none for ed25519 (it signs the input bytes),
   * else `hash_algorithm` — node's sign() hashes the input once, as Vault does before it signs.
   */
  private digestFor(key: TransitKey, body: JsonObject): string | null | VaultReply {
    const algo = typeof body.hash_algorithm === 'string' ? body.hash_algorithm : 'sha2-256';
    const digest = HASHES[algo];
    if (!digest) return badRequest(`unsupported hash algorithm ${algo}`);
    if (key.type === 'ed25519') return null;
    // Signing a precomputed digest is not something node:crypto offers for ECDSA/RSA; Aegis never sends it.
    if (body.prehashed === true) return badRequest('prehashed input is not supported by this emulator');
    return digest;
  }

  private rsaOptions(key: KeyObject, body: JsonObject, signing: boolean) {
    const algo = body.signature_algorithm === 'pkcs1v15' ? 'pkcs1v15' : 'pss';
    return algo === 'pss'
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: signing ? constants.RSA_PSS_SALTLEN_MAX_SIGN : constants.RSA_PSS_SALTLEN_AUTO }
      : { key, padding: constants.RSA_PKCS1_PADDING };
  }

  private sign(name: string, body: JsonObject): VaultReply {
    const key = this.keys.get(name);
    if (!key) return badRequest('encryption key not found');
    if (!isAsymmetric(key.type)) return badRequest(`key type ${key.type} does not support signing`);
    const input = this.input(body);
    if (!Buffer.isBuffer(input)) return input;
    const requested = body.key_version;
    const n = typeof requested === 'number' && requested > 0 ? requested : key.versions.length;
    const version = key.versions[n - 1];
    if (!version?.privateKey) return badRequest('requested version for signing is not available');
    const digest = this.digestFor(key, body);
    if (digest !== null && typeof digest !== 'string') return digest;
    const raw =
      key.type in RSA_BITS
        ? sign(digest, input, this.rsaOptions(version.privateKey, body, true))
        : sign(digest, input, { key: version.privateKey, dsaEncoding: 'der' });
    return ok({ signature: `vault:v${n}:${raw.toString('base64')}`, key_version: n });
  }

  private verify(name: string, body: JsonObject): VaultReply {
    const key = this.keys.get(name);
    if (!key) return badRequest('encryption key not found');
    if (!isAsymmetric(key.type)) return badRequest(`key type ${key.type} does not support verification`);
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
    if (!version?.publicKey) return badRequest('invalid signature: version is too new');
    const digest = this.digestFor(key, body);
    if (digest !== null && typeof digest !== 'string') return digest;
    const sig = Buffer.from(raw, 'base64');
    // A well-formed but wrong signature is valid:false with 200, not an error.
    let valid: boolean;
    try {
      valid =
        key.type === 'ed25519'
          ? sig.length === 64 && verify(null, input, version.publicKey, sig)
          : key.type in RSA_BITS
            ? verify(digest, input, this.rsaOptions(version.publicKey, body, false), sig)
            : verify(digest, input, { key: version.publicKey, dsaEncoding: 'der' }, sig);
    } catch {
      valid = false;
    }
    return ok({ valid });
  }
}
