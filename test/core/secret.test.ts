import { inspect } from 'node:util';
import { Fingerprinter, KnownSecrets, Secret } from '../../src/core/secret';
import { fakePrivatePem } from '../helpers/pem';

describe('Secret', () => {
  const s = new Secret('hunter2-super-secret-value');
  test('never prints its value', () => {
    expect(String(s)).toBe('[secret]');
    expect(JSON.stringify({ s })).toBe('{"s":"[secret]"}');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(`${s}`).not.toContain('hunter2');
  });
  test('compares by value', () => {
    expect(s.equals(new Secret('hunter2-super-secret-value'))).toBe(true);
    expect(s.equals(new Secret('hunter2-super-secret-valuX'))).toBe(false);
    expect(s.equals(new Secret('short'))).toBe(false);
  });
});

describe('Fingerprinter', () => {
  test('same value, same fingerprint within a process; different keys differ; value not recoverable', () => {
    const a = new Fingerprinter();
    const b = new Fingerprinter();
    const v = new Secret('INTERNAL-0123456789');
    expect(a.fingerprint(v)).toBe(a.fingerprint('INTERNAL-0123456789'));
    expect(a.fingerprint(v)).not.toBe(b.fingerprint(v));
    expect(a.fingerprint(v)).toMatch(/^hmac:[0-9a-f]{16}$/);
    expect(a.fingerprint(v)).not.toBe(a.fingerprint('INTERNAL-0123456780'));
  });
});

describe('KnownSecrets.scrub', () => {
  test('replaces whole values and any 8-character piece of one', () => {
    const k = new KnownSecrets();
    k.add(new Secret('s3cr3t-internal-value-XYZ'));
    expect(k.scrub('token is s3cr3t-internal-value-XYZ!')).toBe('token is [redacted]!');
    expect(k.scrub('prefix s3cr3t-in leaked')).toBe('prefix [redacted] leaked');
    expect(k.scrub('tail value-XYZ end')).toBe('tail [redacted] end');
    expect(k.scrub('nothing to see here')).toBe('nothing to see here');
    // a 7-character piece is too short to count as a leak
    expect(k.scrub('s3cr3t-')).toBe('s3cr3t-');
  });
  test('scrubs PEM bodies line by line', () => {
    const k = new KnownSecrets();
    const pem = fakePrivatePem('MC4CAQAwBQYDK2VwBCIEIAbcdefghijklmnopqrstuvwxyz0123456');
    k.add(pem);
    const out = k.scrub('error near MC4CAQAwBQYDK2VwBCIEIAbcdefghijklmnopqrstuvwxyz0123456 in file');
    expect(out).toBe('error near MC4CAQAwBQYDK2[redacted] in file');
    expect(out).not.toContain('Abcdefgh');
  });
  test('leaves text alone when it shares no piece with any secret', () => {
    const k = new KnownSecrets();
    for (let i = 0; i < 200; i++) k.add(`secret-number-${i}-${'x'.repeat(40)}`);
    const text = 'lorem ipsum dolor sit amet '.repeat(20_000);
    expect(k.scrub(text)).toBe(text);
    expect(k.scrub(`a secret-number-7-xxxx b`)).toBe('a [redacted] b');
  });
});

test('the public PKCS#8 header of ed25519 keys is not treated as secret, the key bytes are', () => {
  const k = new KnownSecrets();
  k.add(fakePrivatePem('MC4CAQAwBQYDK2VwBCIEIGm3nQ1aZr8s0XvYtWqPp2b4c5d6e7f8g9h0i1j2k3l4'));
  const spki = 'MCowBQYDK2VwAyEAexamplePublicKeyBase64xxxxxxxxxxxxxxxxxxxxxxxx';
  expect(k.scrub(spki)).toBe(spki);
  expect(k.scrub('seed Gm3nQ1aZr8s0 here')).toBe('seed [redacted] here');
});
