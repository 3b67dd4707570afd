/**
 * Ed25519 verification of the audit chain's signatures, keyed by public-key fingerprint.
 * libsodium (sodium-native) verifies several times faster than node:crypto, which matters
 * on a first pass over millions of rows; node:crypto is the fallback when the native
 * module cannot load on this platform.
 */
import { verify as nodeVerify, type KeyObject } from 'node:crypto';
import { parsePublicKeyPem } from './keys';

interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

let sodium: Sodium | null | undefined;

function loadSodium(): Sodium | null {
  if (sodium !== undefined) return sodium;
  try {
    // No type declarations ship with sodium-native; the one function we use is typed above.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('sodium-native') as Partial<Sodium>;
    sodium = typeof mod.crypto_sign_verify_detached === 'function' ? (mod as Sodium) : null;
  } catch {
    sodium = null;
  }
  return sodium;
}

/** Which implementation verifies signatures in this process. */
export function verifierBackend(): 'sodium-native' | 'node:crypto' {
  return loadSodium() ? 'sodium-native' : 'node:crypto';
}

interface RingKey {
  raw?: Buffer;
  key: KeyObject;
}

export type VerifyOutcome = 'valid' | 'invalid' | 'malformed' | 'unknown-key';

/** Public keys by fingerprint; verifies base64 detached signatures over raw message bytes. */
export class KeyRing {
  readonly #keys = new Map<string, RingKey>();
  readonly #sodium: Sodium | null;

  constructor(opts: { useSodium?: boolean } = {}) {
    this.#sodium = opts.useSodium === false ? null : loadSodium();
  }

  /**
   * Adds an SPKI PEM public key under the fingerprint it actually hashes to (a key recorded
   * under the wrong fingerprint must not vouch for rows naming that fingerprint).
   * Returns the fingerprint, or throws when the PEM is malformed.
   */
  addPem(pem: string): string {
    const parsed = parsePublicKeyPem(pem);
    if (parsed.keyType !== 'ed25519') throw new Error(`expected an ed25519 public key, found ${parsed.keyType}`);
    if (!this.#keys.has(parsed.fingerprint)) this.#keys.set(parsed.fingerprint, { raw: parsed.raw, key: parsed.key });
    return parsed.fingerprint;
  }

  has(fingerprint: string): boolean {
    return this.#keys.has(fingerprint);
  }

  fingerprints(): string[] {
    return [...this.#keys.keys()];
  }

  /** Verifies a base64 signature; `malformed` when it is not 64 bytes of base64. */
  verify(fingerprint: string, message: Buffer, signatureB64: string): VerifyOutcome {
    const k = this.#keys.get(fingerprint);
    if (!k) return 'unknown-key';
    if (!/^[A-Za-z0-9+/]{86}==$/.test(signatureB64)) return 'malformed';
    const sig = Buffer.from(signatureB64, 'base64');
    if (sig.length !== 64) return 'malformed';
    if (this.#sodium && k.raw) {
      try {
        return this.#sodium.crypto_sign_verify_detached(sig, message, k.raw) ? 'valid' : 'invalid';
      } catch {
        // Fall through to node:crypto: a native failure must not read as a bad signature.
      }
    }
    return nodeVerify(null, message, k.key, sig) ? 'valid' : 'invalid';
  }
}
