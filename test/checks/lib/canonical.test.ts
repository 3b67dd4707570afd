/**
 * checks/lib/canonical.ts against RFC 8785 (JSON Canonicalization Scheme) itself: the
 * examples of §3.2.2 (primitives), §3.2.3 (property order) and §3.2.4 (UTF-8), and the
 * number serialisation samples of Appendix B, written here from the RFC's text.
 */
import { createHash } from 'node:crypto';
import { CanonicalizationError, canonicalJson, canonicalRow, chainHash, GENESIS_HASH } from '../../../checks/lib/canonical';

describe('RFC 8785 §3.2.2: serialisation of primitive data types', () => {
  // The RFC's input, as JSON text: numbers and escapes exactly as printed there.
  const input = String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`;
  const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;

  test('gives the RFC output', () => {
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  test('§3.2.4: its UTF-8 bytes are the RFC hex dump', () => {
    const dump = `
      7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
      75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
      5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
      65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
      5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
      30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d`;
    expect(Buffer.from(canonicalJson(JSON.parse(input)), 'utf8').toString('hex')).toBe(dump.replace(/\s+/g, ''));
  });

  test('escapes: two-character forms, lowercase \\u00xx for other controls, nothing else escaped', () => {
    const controls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join('');
    expect(canonicalJson(controls)).toBe(
      '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
        '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"',
    );
    expect(canonicalJson('/ \u007f \u0080 é € 😀 "\\')).toBe('"/ \u007f \u0080 é € 😀 \\"\\\\"');
  });

  test('no whitespace; literals as themselves; -0 is 0', () => {
    expect(canonicalJson({ a: [1, { b: null }], c: true, d: false, e: -0 })).toBe('{"a":[1,{"b":null}],"c":true,"d":false,"e":0}');
  });
});

describe('RFC 8785 §3.2.3: sorting of object properties', () => {
  test('members sort by UTF-16 code units, recursively; array order is kept', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    const order = [...canonicalJson(JSON.parse(input)).matchAll(/:"([^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33: code units, not code points.
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
    expect(canonicalJson({ b: { z: 1, y: [{ d: 1, c: 2 }] }, a: 0 })).toBe('{"a":0,"b":{"y":[{"c":2,"d":1}],"z":1}}');
  });
});

describe('RFC 8785 Appendix B: number serialisation samples', () => {
  // IEEE 754 bit pattern → the canonical text, as listed in the appendix.
  const samples: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  test.each(samples)('%s → %s', (hex, text) => {
    const n = Buffer.from(hex, 'hex').readDoubleBE(0);
    expect(canonicalJson(n)).toBe(text);
    expect(canonicalJson({ n })).toBe(`{"n":${text}}`);
  });

  test.each([
    ['7fffffffffffffff', 'NaN'],
    ['7ff0000000000000', 'Infinity'],
    ['fff0000000000000', '-Infinity'],
  ])('%s (%s) has no canonical form: an error, never "null"', (hex) => {
    const n = Buffer.from(hex, 'hex').readDoubleBE(0);
    expect(() => canonicalJson(n)).toThrow(CanonicalizationError);
    expect(() => canonicalJson({ payload: [n] })).toThrow(CanonicalizationError);
  });
});

describe('outside I-JSON', () => {
  test('a lone surrogate is an error; a pair is text', () => {
    expect(() => canonicalJson('\ud83d')).toThrow(CanonicalizationError);
    expect(() => canonicalJson({ ['\ude00']: 1 })).toThrow(CanonicalizationError);
    expect(() => canonicalJson('a\ude00\ud83d')).toThrow(CanonicalizationError);
    expect(canonicalJson('\ud83d\ude00')).toBe('"😀"');
  });
  test('BigInt is an error', () => {
    expect(() => canonicalJson(1n)).toThrow(CanonicalizationError);
  });
});

describe('an audit row', () => {
  test('action, created_at with milliseconds in UTC, id as a number, payload', () => {
    const row = { id: 7, createdAt: new Date('2026-11-22T11:00:00+01:00'), action: 'key_rotated', payload: { key: 'receipt', b: [1, 2.50], 'é': 'ü' } };
    const canonical = '{"action":"key_rotated","created_at":"2026-11-22T10:00:00.000Z","id":7,"payload":{"b":[1,2.5],"key":"receipt","é":"ü"}}';
    expect(canonicalRow(row)).toBe(canonical);
    // The hash is over the UTF-8 bytes of prev_hash + canonical (é and ü are two bytes each).
    expect(chainHash(GENESIS_HASH, canonical)).toBe(createHash('sha256').update(Buffer.concat([Buffer.from(GENESIS_HASH), Buffer.from(canonical, 'utf8')])).digest('hex'));
  });
});
