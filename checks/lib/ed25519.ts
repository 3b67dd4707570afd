/**
 * Ed25519 verification of the audit chain's signatures, keyed by public-key fingerprint
 * (KeyRing). The verifying itself — libsodium, node:crypto where it cannot load — is
 * ed25519-verify.ts, which is all a signature worker thread loads.
 */
import type { KeyObject } from 'node:crypto';
import { parsePublicKeyPem } from './keys';
import { loadSodium, verifyOne, type PortableKey } from './ed25519-verify';
export { SlotVerifier, verifierBackend, type PortableKey } from './ed25519-verify';

interface RingKey {
  raw?: Buffer;
  key: KeyObject;
  /** SPKI DER, for a worker thread that builds its own KeyObject. */
  spki: Buffer;
}

export type VerifyOutcome = 'valid' | 'invalid' | 'malformed' | 'unknown-key';

/** At most this many keys in a ring: a key's slot travels as 16 bits. */
export const MAX_RING_KEYS = 65_536;

/** Public keys by fingerprint; verifies base64 detached signatures over raw message bytes. */
export class KeyRing {
  readonly #keys = new Map<string, RingKey>();
  readonly #slots = new Map<string, number>();
  readonly #list: RingKey[] = [];
  /** libsodium is loaded at the first signature this ring verifies: a pass verifies on its workers, and this thread may verify none. */
  readonly #useSodium: boolean;

  constructor(opts: { useSodium?: boolean } = {}) {
    this.#useSodium = opts.useSodium !== false;
  }

  /** Whether a signature is 64 bytes of base64 (else its outcome is `malformed`). */
  static wellFormed(signatureB64: string): boolean {
    return /^[A-Za-z0-9+/]{86}==$/.test(signatureB64) && Buffer.byteLength(signatureB64, 'base64') === 64;
  }

  /**
   * Adds an SPKI PEM public key under the fingerprint it actually hashes to (a key recorded
   * under the wrong fingerprint must not vouch for rows naming that fingerprint).
   * Returns the fingerprint, or throws when the PEM is malformed.
   */
  addPem(pem: string): string {
    const parsed = parsePublicKeyPem(pem);
    if (parsed.keyType !== 'ed25519') throw new Error(`expected an ed25519 public key, found ${parsed.keyType}`);
    if (!this.#keys.has(parsed.fingerprint)) {
      if (this.#list.length >= MAX_RING_KEYS) throw new Error(`more than ${MAX_RING_KEYS} keys`);
      const k: RingKey = { raw: parsed.raw, key: parsed.key, spki: parsed.key.export({ type: 'spki', format: 'der' }) };
      this.#keys.set(parsed.fingerprint, k);
      this.#slots.set(parsed.fingerprint, this.#list.length);
      this.#list.push(k);
    }
    return parsed.fingerprint;
  }

  has(fingerprint: string): boolean {
    return this.#keys.has(fingerprint);
  }

  fingerprints(): string[] {
    return [...this.#keys.keys()];
  }

  /** The slot of a key (its place in portable()), undefined when the ring does not hold it. */
  slot(fingerprint: string): number | undefined {
    return this.#slots.get(fingerprint);
  }

  /** The keys in slot order, for a verifier on another thread. */
  portable(): PortableKey[] {
    return this.#list.map((k) => ({ raw: k.raw, spki: k.spki }));
  }

  /** Verifies raw signature bytes under the key in a slot. */
  verifySlot(slot: number, message: Uint8Array, signature: Uint8Array): boolean {
    const k = this.#list[slot];
    if (!k) throw new Error(`no key in slot ${slot}`);
    return verifyOne(this.#useSodium ? loadSodium() : null, k.raw, () => k.key, message, signature);
  }

  /** Verifies a base64 signature; `malformed` when it is not 64 bytes of base64. */
  verify(fingerprint: string, message: Buffer, signatureB64: string): VerifyOutcome {
    const slot = this.#slots.get(fingerprint);
    if (slot === undefined) return 'unknown-key';
    if (!KeyRing.wellFormed(signatureB64)) return 'malformed';
    return this.verifySlot(slot, message, Buffer.from(signatureB64, 'base64')) ? 'valid' : 'invalid';
  }
}
