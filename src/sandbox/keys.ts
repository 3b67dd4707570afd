/**
 * ed25519 signing keys of the sandbox deployment, in the formats the audited deployment uses:
 * PKCS#8 PEM private keys, SPKI PEM public keys, and the fingerprint
 * `sha256:` + lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
 *
 * Keys are derived from a 32-byte seed so a sandbox seed reproduces the same keys. Signing
 * uses sodium-native when it loads (twice as fast as node:crypto, which matters for 100 000
 * rows) and node:crypto otherwise; both give the same bytes (ed25519 is deterministic).
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';

/** The fixed DER prefix of an ed25519 PKCS#8 PrivateKeyInfo; the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Ed25519KeyPair {
  /** The 32-byte private seed. Secret. */
  readonly seed: Buffer;
  /** PKCS#8 PEM of the private key. Secret. */
  readonly privateKeyPem: string;
  /** SPKI PEM of the public key. */
  readonly publicKeyPem: string;
  readonly publicKeyDer: Buffer;
  /** `sha256:` + hex SHA-256 of the SPKI DER. */
  readonly fingerprint: string;
  readonly privateKey: KeyObject;
  /** ed25519 signature of `data` (64 bytes). */
  sign(data: Buffer): Buffer;
}

interface SodiumSign {
  crypto_sign_seed_keypair(pk: Buffer, sk: Buffer, seed: Buffer): void;
  crypto_sign_detached(sig: Buffer, msg: Buffer, sk: Buffer): void;
}

let sodium: SodiumSign | null | undefined;
function loadSodium(): SodiumSign | null {
  if (sodium === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      sodium = require('sodium-native') as SodiumSign;
    } catch {
      sodium = null;
    }
  }
  return sodium;
}

export function spkiFingerprint(spkiDer: Buffer): string {
  return 'sha256:' + createHash('sha256').update(spkiDer).digest('hex');
}

export function fingerprintOfPublicKeyPem(pem: string): string {
  return spkiFingerprint(createPublicKey({ key: pem, format: 'pem' }).export({ type: 'spki', format: 'der' }));
}

export function keyPairFromSeed(seed: Buffer): Ed25519KeyPair {
  if (seed.length !== 32) throw new Error(`an ed25519 seed is 32 bytes, got ${seed.length}`);
  const s = Buffer.from(seed);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, s]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(privateKey);
  const publicKeyDer = pub.export({ type: 'spki', format: 'der' });
  const na = loadSodium();
  let signFn: (data: Buffer) => Buffer;
  if (na) {
    const pk = Buffer.alloc(32);
    const sk = Buffer.alloc(64);
    na.crypto_sign_seed_keypair(pk, sk, s);
    signFn = (data) => {
      const sig = Buffer.alloc(64);
      na.crypto_sign_detached(sig, data, sk);
      return sig;
    };
  } else {
    signFn = (data) => nodeSign(null, data, privateKey);
  }
  return {
    seed: s,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: pub.export({ type: 'spki', format: 'pem' }).toString(),
    publicKeyDer,
    fingerprint: spkiFingerprint(publicKeyDer),
    privateKey,
    sign: signFn,
  };
}

/** A fresh random key pair. */
export function generateKeyPair(): Ed25519KeyPair {
  return keyPairFromSeed(randomBytes(32));
}
