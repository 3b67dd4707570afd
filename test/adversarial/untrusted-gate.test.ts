/**
 * The gate for text read from the audited deployment (src/core/untrusted.ts): enumerated
 * fields show only known values, shaped fields only their shape, free text is one line,
 * bounded and scrubbed — of secrets this process read and of secret shapes nobody read.
 * Issue 9, case 3 started here: a log field quoted 24 characters of a secret.
 */
import { untrusted } from '../../src/core/untrusted';
import { isHighEntropyToken, scrubSecretShapes } from '../../src/core/redact';
import { processSecrets } from '../../src/core/secret';
import { wrapSourceError } from '../../src/sources/errors';
import { canaryToken, findLeaks, shapedCanaries } from './helpers';

describe('untrusted.oneOf', () => {
  const SOURCES = ['env', 'file', 'generated'] as const;
  test.each([
    ['env', 'env'],
    ['generated', 'generated'],
    ['ENV', 'unrecognised value, 3 characters'],
    ['env ', 'unrecognised value, 4 characters'],
    [canaryToken('one-of', 28), 'unrecognised value, 28 characters'],
    ['🔑🔑', 'unrecognised value, 2 characters'],
    [undefined, '(missing)'],
    [null, '(missing)'],
    [7, 'unrecognised value (number)'],
    [['env'], 'unrecognised value (a list)'],
  ])('%j shows as %j', (value, shown) => {
    expect(untrusted.oneOf(value, SOURCES)).toBe(shown);
  });
});

describe('untrusted.matching', () => {
  const FP = /^sha256:[0-9a-f]{64}$/;
  const fp = `sha256:${'ab'.repeat(32)}`;
  test('a value of the shape is shown; anything else only by its length', () => {
    expect(untrusted.matching(fp, FP)).toBe(fp);
    expect(untrusted.matching(`${fp}\n`, FP)).toBe('unrecognised value, 72 characters');
    expect(untrusted.matching(canaryToken('matching', 30), FP)).toBe('unrecognised value, 30 characters');
    expect(untrusted.matching(undefined, FP)).toBe('(missing)');
  });
  test('a global pattern gives the same answer every time', () => {
    const g = /^i-[0-9a-f]{8,17}$/g;
    expect([1, 2, 3].map(() => untrusted.matching('i-0123456789abcdef0', g))).toEqual(['i-0123456789abcdef0', 'i-0123456789abcdef0', 'i-0123456789abcdef0']);
  });
});

describe('untrusted.text', () => {
  test('one line: line breaks, control, bidi and invisible characters become spaces', () => {
    expect(untrusted.text('audit-1\nERROR forged line\r\n\u2028x\u202eevil\u200b\u0000y')).toBe('audit-1 ERROR forged line x evil y');
  });

  test('bounded, with an ellipsis, never splitting a character', () => {
    expect(untrusted.text('x'.repeat(100), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(untrusted.text('🔑'.repeat(20), 5)).toBe('🔑🔑🔑🔑…');
    expect(untrusted.text('short', 10)).toBe('short');
    expect(untrusted.text('x'.repeat(10_000_000)).length).toBeLessThanOrEqual(64);
  });

  test('absent, blank and non-text values say so', () => {
    expect(untrusted.text(undefined)).toBe('(missing)');
    expect(untrusted.text('  \n ')).toBe('(empty)');
    expect(untrusted.text(42)).toBe('42');
    expect(untrusted.text({ a: 1 })).toBe('unrecognised value (object)');
  });

  test('secrets this process read are scrubbed, pieces included', () => {
    const secret = canaryToken('gate-known', 28).replace(/[-_]/g, 'a');
    processSecrets.add(secret);
    const shown = untrusted.text(`instance ${secret.slice(2, 20)} started`, 200);
    expect(findLeaks({ secret }, new Map([['text', shown]]))).toEqual([]);
  });

  const c = shapedCanaries('gate');
  test.each(Object.entries(c))('a %s nobody read is scrubbed, even when the cut falls inside it', (_name, secret) => {
    for (const prefix of ['', 'instance ', 'x'.repeat(40) + ' ']) {
      for (const max of [64, 200, 2000]) {
        const shown = untrusted.text(`${prefix}${secret} trailing`, max);
        expect({ max, prefix, leaks: findLeaks({ secret }, new Map([['text', shown]])) }).toEqual({ max, prefix, leaks: [] });
      }
    }
  });

  test.each([
    ['a pod name', 'audit-7d9f8c6b5-x2k4q'],
    ['a long pod name', 'aegis-prod-audit-7d9f8c6b5-x2k4q'],
    ['an EC2 private DNS name', 'ip-10-0-12-34.eu-west-1.compute.internal'],
    ['an IPv6 address', '2001:db8:85a3::8a2e:370:7334'],
    ['a UUID', 'cdc82e0b-4b4a-4f8e-8f1e-2a3b4c5d6e7f'],
    ['a secret NAME', 'INTERNAL_SECRET_PREVIOUS'],
    ['an SSM parameter path', '/aegis/prod/gateway/JWT_SECRET_KEY'],
    ['a camel-case name with a version', 'SigningKeyLoaderServiceV2'],
    ['an ARN', 'arn:aws:iam::123456789012:role/AegisAuditRole'],
    ['markup (escaped by the renderers, not the gate)', '"><script>window.__pwned=1</script>'],
    ['an API key id', 'ak_3f9c2a1b0d4e'],
  ])('%s is kept: %s', (_what, name) => {
    expect(untrusted.text(name, 200)).toBe(name);
  });
});

describe('untrusted.id', () => {
  test('a plain name is itself, so finding ids do not change', () => {
    expect(untrusted.id('audit-1')).toBe('audit-1');
  });
  test('names cut or scrubbed stay distinct and bounded', () => {
    const a = untrusted.id('audit-' + 'x'.repeat(500) + 'a');
    const b = untrusted.id('audit-' + 'x'.repeat(500) + 'b');
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThan(220);
    const c = shapedCanaries('gate-id');
    const j1 = untrusted.id(`audit ${c.jwt}`);
    const j2 = untrusted.id(`audit ${shapedCanaries('gate-id-2').jwt}`);
    expect(j1).not.toBe(j2);
    expect(findLeaks({ jwt: c.jwt }, new Map([['id', j1]]))).toEqual([]);
  });
});

describe('untrusted.shaped', () => {
  const FP = /^sha256:[0-9a-f]{64}$/;
  const fp = `sha256:${'cd'.repeat(32)}`;
  test('a value of the shape is itself; anything else a stand-in with none of its text', () => {
    expect(untrusted.shaped(fp, FP)).toBe(fp);
    const secret = canaryToken('shaped', 12);
    const shown = untrusted.shaped(secret, FP);
    expect(shown).toMatch(/^unrecognised value, 12 characters #[0-9a-f]{12}$/);
    expect(findLeaks({ secret }, new Map([['shaped', shown]]))).toEqual([]);
    expect(untrusted.shaped('x'.repeat(10_000), FP)).toMatch(/^unrecognised value, 10000 characters #/);
  });
  test('equal values give equal stand-ins, different ones different, and a stand-in stays itself', () => {
    const a = untrusted.shaped(canaryToken('shaped-a', 12), FP);
    expect(untrusted.shaped(canaryToken('shaped-a', 12), FP)).toBe(a);
    expect(untrusted.shaped(canaryToken('shaped-b', 12), FP)).not.toBe(a);
    expect(untrusted.shaped(a, FP)).toBe(a);
  });
});

describe('source errors', () => {
  test('an AWS validation error does not quote the value it refused (it came from the deployment)', () => {
    const id = canaryToken('validation-echo', 12);
    const e = Object.assign(new Error(`1 validation error detected: Value '${id}' at 'instanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(i-(\\w{8}|\\w{17}))|(mi-\\w{17})$`), {
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
    });
    const msg = wrapSourceError('ssm', 'reading output of command c-1', e).message;
    expect(msg).toContain("A value at 'instanceId' failed to satisfy constraint");
    expect(findLeaks({ id }, new Map([['error', msg]]))).toEqual([]);
    const list = wrapSourceError('ssm', 'x', new Error(`Value [${id}, b] at 'names' failed to satisfy constraint`)).message;
    expect(findLeaks({ id }, new Map([['error', list]]))).toEqual([]);
  });
});

describe('secret shapes', () => {
  test('long generated tokens are recognised in their usual encodings', () => {
    for (const label of ['a', 'b', 'c', 'd']) {
      const bytes = Buffer.from(canaryToken(`shape-${label}`, 64));
      expect(isHighEntropyToken(bytes.subarray(0, 32).toString('hex'))).toBe(true);
      expect(isHighEntropyToken(canaryToken(`shape-url-${label}`, 43))).toBe(true);
    }
    const hex = Buffer.from(canaryToken('shape-hex', 32)).toString('hex');
    expect(findLeaks({ hex }, new Map([['scrubbed', scrubSecretShapes(`digest ${hex} ok`)]]))).toEqual([]);
  });
  test('words, versions and dates are not', () => {
    for (const s of ['2026-11-22T10:00:00.000Z', 'v1.2.3-rc4-build20261122', 'eu-west-1.compute.amazonaws.com', 'aegis-audit-prod-20261122-1015']) {
      expect(isHighEntropyToken(s)).toBe(false);
    }
  });
});
