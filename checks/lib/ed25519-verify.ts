/**
 * Ed25519 signature verification with libsodium (sodium-native's binary), node:crypto where it
 * cannot load — what a signature worker thread loads, and nothing more: node:crypto itself is
 * loaded only if libsodium fails (about 9 ms on each worker thread as it starts; the key
 * fingerprints and PEM parsing of ed25519.ts, another 3).
 * libsodium verifies several times faster than node:crypto, which matters on a first pass over
 * millions of rows.
 */
import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean | undefined;
}

let sodium: Sodium | null | undefined;

/** RFC 8032, section 7.1, test 1: an empty message, its signature and public key. */
const KNOWN = {
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

/** Whether `verify` accepts RFC 8032's test signature and refuses it with one bit changed. */
function answersKnown(verify: Sodium['crypto_sign_verify_detached']): boolean {
  const pk = Buffer.from(KNOWN.publicKey, 'hex');
  const sig = Buffer.from(KNOWN.signature, 'hex');
  const empty = Buffer.alloc(0);
  if (verify(sig, empty, pk) !== true) return false;
  sig[0] ^= 1;
  return verify(sig, empty, pk) === false;
}

/** The raw signature of sodium-native's binding (5.x): each argument as its ArrayBuffer, offset and length. */
type RawVerify = (...args: (ArrayBufferLike | number)[]) => unknown;

/**
 * sodium-native's prebuilt binding, loaded as itself. The package's own entry point (index.js:
 * 3 200 lines wrapping every libsodium function, and the addon resolver it loads) took about
 * 35 ms to load, against 3–4 ms for the binary alone — paid on every thread that verifies,
 * the check's thread and each worker, as a pass starts. Used only when it answers RFC 8032's
 * test as libsodium does; anything else (another build, another layout) loads the package.
 */
function loadBinding(): Sodium | null {
  try {
    const dir = dirname(require.resolve('sodium-native/package.json'));
    for (const file of [join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node'), join(dir, 'build', 'Release', 'sodium-native.node')]) {
      if (!existsSync(file)) continue;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const raw = (require(file) as { crypto_sign_verify_detached?: RawVerify }).crypto_sign_verify_detached;
      if (typeof raw !== 'function') continue;
      const verify: Sodium['crypto_sign_verify_detached'] = (sig, m, pk) => {
        // The package's own checks, before the binding reads the memory.
        if (sig.byteLength < 64 || pk.byteLength !== 32) throw new Error('signature or public key of the wrong length');
        const ok = raw(sig.buffer, sig.byteOffset, sig.byteLength, m.buffer, m.byteOffset, m.byteLength, pk.buffer, pk.byteOffset, pk.byteLength);
        return typeof ok === 'boolean' ? ok : undefined;
      };
      if (answersKnown(verify)) return { crypto_sign_verify_detached: verify };
    }
  } catch {
    // The package below.
  }
  return null;
}

export function loadSodium(): Sodium | null {
  if (sodium !== undefined) return sodium;
  sodium = loadBinding();
  if (sodium) return sodium;
  try {
    // No type declarations ship with sodium-native; the one function we use is typed above.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('sodium-native') as Partial<Sodium>;
    sodium = typeof mod.crypto_sign_verify_detached === 'function' && answersKnown(mod.crypto_sign_verify_detached) ? (mod as Sodium) : null;
  } catch {
    sodium = null;
  }
  return sodium;
}

/** Which implementation verifies signatures in this process. */
export function verifierBackend(): 'sodium-native' | 'node:crypto' {
  return loadSodium() ? 'sodium-native' : 'node:crypto';
}

/** A ring's keys as a worker thread receives them (public material only). */
export interface PortableKey {
  raw?: Uint8Array;
  spki: Uint8Array;
}

/**
 * One signature under one key: libsodium when it loaded and the key has its raw form, else (and
 * whenever libsodium gives no verdict) node:crypto. `sodium` null: node:crypto only.
 */
export function verifyOne(sodium: Sodium | null, raw: Uint8Array | undefined, key: () => KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (sodium && raw) {
    try {
      const ok = sodium.crypto_sign_verify_detached(signature as Buffer, message as Buffer, raw as Buffer);
      // sodium-native answers undefined for memory it cannot take (a SharedArrayBuffer): not a verdict.
      if (typeof ok === 'boolean') return ok;
    } catch {
      // Fall through to node:crypto: a native failure must not read as a bad signature.
    }
  }
  return nodeCrypto().verify(null, message, key(), signature);
}

/** node:crypto, loaded when first needed. */
function nodeCrypto(): typeof import('node:crypto') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:crypto') as typeof import('node:crypto');
}

/** Signature verification over a list of keys by slot: sodium-native, node:crypto when it fails. */
export class SlotVerifier {
  readonly #keys: { raw?: Uint8Array; key: () => KeyObject }[];
  readonly #sodium: Sodium | null;

  constructor(keys: readonly PortableKey[], opts: { useSodium?: boolean } = {}) {
    this.#sodium = opts.useSodium === false ? null : loadSodium();
    this.#keys = keys.map((k) => {
      let made: KeyObject | undefined;
      // node:crypto's key, made only if a signature falls back to it.
      const key = () => (made ??= nodeCrypto().createPublicKey({ key: Buffer.from(k.spki), format: 'der', type: 'spki' }));
      return { raw: k.raw, key };
    });
  }

  verify(slot: number, message: Uint8Array, signature: Uint8Array): boolean {
    const k = this.#keys[slot];
    if (!k) throw new Error(`no key in slot ${slot}`);
    return verifyOne(this.#sodium, k.raw, k.key, message, signature);
  }
}

