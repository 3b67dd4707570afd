/**
 * Signing keys: PKCS#8 PEM ed25519 private keys reduced to their public fingerprint
 * (`sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo). The private key object never
 * leaves this module; parse errors name where the PEM came from, never its bytes.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { badData } from '../core/errors';

export function spkiFingerprint(spkiDer: Buffer): string {
  return 'sha256:' + createHash('sha256').update(spkiDer).digest('hex');
}

export interface PublicKeyInfo {
  fingerprint: string;
  publicKeyPem: string;
}

function describeKeyError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // OpenSSL messages are about structure ("unsupported", "bad base64 decode"), not content.
  return msg.replace(/\s+/g, ' ').slice(0, 120);
}

export function publicKeyOfPrivatePem(pem: string, source: string, where: string): PublicKeyInfo {
  if (!/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(pem)) {
    throw badData(source, where, 'not a PKCS#8 PEM private key (expected the PEM armor of a PKCS#8 "PRIVATE KEY")');
  }
  let priv: KeyObject;
  try {
    priv = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw badData(source, where, `malformed PEM private key (${describeKeyError(e)})`);
  }
  if (priv.asymmetricKeyType !== 'ed25519') {
    throw badData(source, where, `expected an ed25519 key, found ${priv.asymmetricKeyType ?? 'an unknown key type'}`);
  }
  const pub = createPublicKey(priv);
  const der = pub.export({ type: 'spki', format: 'der' });
  return { fingerprint: spkiFingerprint(der), publicKeyPem: pub.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Fingerprint of an SPKI PEM public key (historical keys table); throws on a malformed key. */
export function fingerprintOfPublicPem(pem: string): string {
  const pub = createPublicKey({ key: pem, format: 'pem' });
  return spkiFingerprint(pub.export({ type: 'spki', format: 'der' }));
}
