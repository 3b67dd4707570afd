/**
 * Minting X.509 certificates at run time with @peculiar/x509 over Node's WebCrypto: the
 * endpoints source's throwaway "untrusted CA" probe certificate, and the sandbox's CA, server
 * and client certificates. ECDSA P-256 throughout: fast to generate, accepted by every TLS
 * stack the auditor meets. Nothing here is committed: every key is generated when needed.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Minted {
  certPem: string;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
  /** For issuing further certificates. */
  readonly signer: { cert: x509.X509Certificate; key: CryptoKey };
}

export interface MintOptions {
  /** An RFC 4514 name, e.g. `CN=api.internal,O=Aegis`. */
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

function serial(): string {
  // Positive, non-zero, 16 bytes of randomness.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  const label = 'PRIVATE KEY';
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** A self-signed CA certificate. */
export async function mintCa(opts: MintOptions): Promise<Minted> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: opts.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey), signer: { cert, key: keys.privateKey } };
}

export interface LeafOptions extends MintOptions {
  issuer: Minted['signer'];
  usage: 'server' | 'client';
  dns?: readonly string[];
  ips?: readonly string[];
}

/** A leaf certificate signed by `issuer`, for a TLS server (with its names) or a TLS client. */
export async function mintLeaf(opts: LeafOptions): Promise<Minted> {
  const keys = await keyPair();
  const names = [...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: opts.subject,
    issuer: opts.issuer.cert.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: keys.publicKey,
    signingKey: opts.issuer.key,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(opts.issuer.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey), signer: { cert, key: keys.privateKey } };
}

/** The RFC 4514 subject of a PEM certificate (for a probe certificate that claims the same identity). */
export function subjectOf(pem: string): string {
  return new x509.X509Certificate(pem).subject;
}
