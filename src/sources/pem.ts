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

/** The first private-key PEM block of a file's text, reduced to its public fingerprint. */
export function describePrivateKeyFile(
  text: string,
  register: (block: string) => void,
): { label: string; fingerprint?: string; keyType?: string; problem?: string } | undefined {
  const m = /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----[\s\S]*?-----END \1-----/.exec(text);
  if (!m) {
    const armor = /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----/.exec(text);
    return armor ? { label: armor[1], problem: 'the PEM block has no END line within the first 64 KiB' } : undefined;
  }
  const block = m[0];
  register(block);
  const label = m[1];
  if (label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(block)) return { label, problem: 'encrypted: its public key cannot be derived without the passphrase' };
  if (label === 'OPENSSH PRIVATE KEY') return { label, problem: 'an OpenSSH private key, which the auditor does not parse' };
  try {
    const pub = createPublicKey(createPrivateKey({ key: block, format: 'pem' }));
    return { label, fingerprint: spkiFingerprint(pub.export({ type: 'spki', format: 'der' })), keyType: pub.asymmetricKeyType ?? 'unknown' };
  } catch (e) {
    return { label, problem: `malformed (${describeKeyError(e)})` };
  }
}
