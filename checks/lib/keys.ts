/**
 * Public-key helpers: fingerprints (`sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo)
 * and the raw 32-byte ed25519 key for fast verification. Only public material passes
 * through here; parse errors describe structure, never key bytes.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { untrusted } from '../../src/core/untrusted';

export const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;

/** The DER SPKI prefix of every ed25519 public key; the raw key is the 32 bytes after it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function spkiFingerprint(spkiDer: Buffer): string {
  return 'sha256:' + createHash('sha256').update(spkiDer).digest('hex');
}

export interface ParsedPublicKey {
  fingerprint: string;
  keyType: string;
  /** Raw ed25519 public key (32 bytes); undefined for other key types. */
  raw?: Buffer;
  key: KeyObject;
}

/** Why a PEM could not be parsed, without echoing any of it. */
export function describeKeyError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // OpenSSL messages name the structure ("unsupported", "bad base64 decode"), not content;
  // cut anything after a colon-free prefix length to be safe.
  return msg.replace(/-----BEGIN[\s\S]*/g, '').replace(/\s+/g, ' ').trim().slice(0, 120) || 'unparseable key';
}

/** Parses an SPKI PEM public key; throws an Error with a structural message when malformed. */
export function parsePublicKeyPem(pem: string): ParsedPublicKey {
  if (!/-----BEGIN PUBLIC KEY-----/.test(pem)) {
    throw new Error('not an SPKI PEM public key (expected "-----BEGIN PUBLIC KEY-----")');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new Error(`malformed PEM public key (${describeKeyError(e)})`);
  }
  const der = key.export({ type: 'spki', format: 'der' });
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const raw =
    keyType === 'ed25519' && der.length === ED25519_SPKI_PREFIX.length + 32 && der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)
      ? Buffer.from(der.subarray(ED25519_SPKI_PREFIX.length))
      : undefined;
  return { fingerprint: spkiFingerprint(der), keyType, raw, key };
}

/**
 * A fingerprint shortened for messages: `sha256:0123456789ab…`. The full one goes in evidence.
 * Anything not shaped like a fingerprint (it was read from the deployment) shows only as
 * untrusted.shaped's stand-in, never a prefix of its text.
 */
export function shortFingerprint(fp: string): string {
  return FINGERPRINT_RE.test(fp) ? fp.slice(0, 19) + '…' : untrusted.shaped(fp, FINGERPRINT_RE);
}
