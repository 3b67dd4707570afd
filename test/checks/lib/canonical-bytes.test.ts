/**
 * The byte canonicaliser against the object one: for any bytes, either it declines (-1) or it
 * writes exactly the UTF-8 of canonicalJson(JSON.parse(text)) — and it never accepts text the
 * object path rejects. Hostile and random payloads, valid and broken, and the shapes Postgres
 * sends (jsonb's spacing and member order), which it must handle itself.
 */
import { canonicalPayloadInto } from '../../../checks/lib/canonical-bytes';
import { canonicalJson } from '../../../checks/lib/canonical';
import { mulberry32 as rng } from '../../helpers/rng';

/** What the object path makes of the bytes: the canonical UTF-8, or null when it throws. */
function reference(bytes: Buffer): Buffer | null {
  try {
    return Buffer.from(canonicalJson(JSON.parse(bytes.toString('utf8'))), 'utf8');
  } catch {
    return null;
  }
}

/**
 * The byte path over `bytes` placed inside a larger buffer (other bytes before and after it, as
 * the payload sits among a row's other fields), with an output buffer of `room` bytes.
 */
function fast(bytes: Buffer, trailer = '.5e3"}]', room = 1 << 16): Buffer | null {
  const src = Buffer.concat([Buffer.from('xx{'), bytes, Buffer.from(trailer)]);
  const out = Buffer.alloc(room + 8, 0xee);
  const end = canonicalPayloadInto(src, 3, 3 + bytes.length, out, 8);
  return end < 0 ? null : out.subarray(8, end);
}

/** Asserts the two agree wherever the byte path answers; returns whether it answered. */
function agree(bytes: Buffer, trailer?: string, room?: number): boolean {
  const got = fast(bytes, trailer, room);
  if (got === null) return false;
  const want = reference(bytes);
  if (want === null || !got.equals(want)) {
    throw new Error(`byte canonicaliser diverges on ${JSON.stringify(bytes.toString('latin1'))} (hex ${bytes.toString('hex')}):\n  got  ${got.toString('latin1')}\n  want ${want === null ? '(the object path throws)' : want.toString('latin1')}`);
  }
  return true;
}

const PIECES = ['a', 'Z', ' ', '"', '\\', '/', '\u0000', '\u0001', '\b', '\t', '\n', '\f', '\r', '\u001f', '\u007f', 'é', '\u2028', '€', '\uFFFD', '\uFEFF', '😀', '\uD83D', '\uDE00', '\uD800\uDC00', '\uDBFF\uDFFF', 'sha256:', '{', '}', '[', ']', ',', ':'];
const NUMBERS = ['0', '-0', '1', '-1', '7.0', '1.5', '-0.0', '1e2', '1E2', '1e+2', '1e-2', '0.1', '1e21', '1e-7', '123456789012345', '1234567890123456', '9007199254740993', '-999999999999999', '1e400', '-1e400', '5e-324', '2e-324', '0.30000000000000004', '100e-2', '1.7976931348623157e308', '12345678901234567890'];

function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) s += r() < 0.6 ? String.fromCharCode(97 + Math.floor(r() * 26)) : PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

/** JSON text for a random value, written as a server or an attacker might: any spacing, any escapes. */
function randomText(r: () => number, depth = 0): string {
  const ws = () => (r() < 0.3 ? [' ', '\n', '\t', '\r', '  '][Math.floor(r() * 5)] : '');
  const str = (s: string) => {
    const std = JSON.stringify(s);
    if (r() < 0.7) return std;
    // Other legal spellings: \u escapes of anything, upper-case hex, \/ for /.
    return '"' + [...s].map((ch) => (r() < 0.5 ? ch.split('').map((u) => '\\u' + u.charCodeAt(0).toString(16).padStart(4, '0')[r() < 0.5 ? 'toUpperCase' : 'toLowerCase']()).join('') : ch === '/' ? '\\/' : JSON.stringify(ch).slice(1, -1))).join('') + '"';
  };
  const k = r();
  if (depth > 3 || k < 0.25) return str(randomString(r));
  if (k < 0.45) return NUMBERS[Math.floor(r() * NUMBERS.length)];
  if (k < 0.5) return ['true', 'false', 'null'][Math.floor(r() * 3)];
  if (k < 0.7) {
    const n = Math.floor(r() * 4);
    return '[' + ws() + Array.from({ length: n }, () => ws() + randomText(r, depth + 1) + ws()).join(',') + ws() + ']';
  }
  const n = Math.floor(r() * 6);
  const names = ['id', 'a', 'b', 'aa', 'B', '_', 'actor', 'scope', 'x-y', 'é', '😀', '\uFB33', '', 'a\\u0062', '__proto__', 'z z'];
  return '{' + ws() + Array.from({ length: n }, () => ws() + str(names[Math.floor(r() * names.length)].replace('\\u0062', 'b')) + ws() + ':' + ws() + randomText(r, depth + 1) + ws()).join(',') + ws() + '}';
}

describe('byte canonicaliser', () => {
  test('handles the shapes Postgres sends: jsonb spacing and member order, nested objects and arrays', () => {
    const payloads = [
      { actor: 'svc-deploy', scope: ['read', 'write'], request: { id: 'r-1', bytes: 1234, ok: true, ratio: null }, note: 'a "quoted" \\ back\nslash' },
      { b: 1, a: [{ d: 2, c: 3 }, []], '': {}, text: 'ünïcödé €', emoji: '😀', n: -17, big: 123456789012345 },
      [1, 'two', { three: 3 }],
      'plain',
      42,
      null,
      true,
    ];
    for (const p of payloads) {
      const text = JSON.stringify(p);
      // jsonb's own text: a space after ':' and ',', members shorter name first.
      const spaced = text.replace(/([:,])(?=(?:[^"\\]|\\.|"(?:[^"\\]|\\.)*")*$)/g, '$1 ');
      for (const t of [text, spaced, JSON.stringify(p, null, 2)]) expect(agree(Buffer.from(t))).toBe(true);
    }
  });

  test('agrees with the object path on the canonical-form cases of RFC 8785', () => {
    const cases = ['{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}', '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}'];
    for (const c of cases) agree(Buffer.from(c));
  });

  test('random valid and broken payloads: never a different answer', () => {
    const r = rng(8785);
    let handled = 0;
    let total = 0;
    for (let i = 0; i < 10_000; i++) {
      const text = randomText(r);
      let bytes = Buffer.from(text, 'utf8');
      const mutate = r();
      if (mutate < 0.15) {
        // Broken: a byte changed, dropped or cut off.
        bytes = Buffer.from(bytes);
        const at = Math.floor(r() * bytes.length);
        if (bytes.length > 0) {
          const m = Math.floor(r() * 3);
          if (m === 0) bytes[at] = Math.floor(r() * 256);
          else if (m === 1) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
          else bytes = bytes.subarray(0, at);
        }
      } else if (mutate < 0.2) {
        // Not UTF-8: a stray continuation byte, an overlong form, an encoded surrogate, a cut sequence.
        const bad = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xf0, 0x9f, 0x98]][Math.floor(r() * 7)];
        bytes = Buffer.from(JSON.stringify('ab' + 'X' + 'cd'));
        const x = bytes.indexOf('X');
        bytes = Buffer.concat([bytes.subarray(0, x), Buffer.from(bad), bytes.subarray(x + 1)]);
      }
      total++;
      if (agree(bytes, ['', '.5', 'e3', '"', '}', ']', '0'][Math.floor(r() * 7)])) handled++;
    }
    // It must take most of them itself, or the test says nothing about it.
    expect(handled).toBeGreaterThan(total * 0.3);
  });

  test('declines what it cannot decide exactly: duplicate names, non-canonical escapes, invalid UTF-8, deep nesting, a small buffer', () => {
    for (const t of ['{"a":1,"a":2}', '{"b":1,"a":2,"b":3}', '"\\/"', '"\\u0041"', '"\\u00E9"', '"\\ud800"', '{"\\u0061":1}', '{"é":1}', '1e400', '[1,]', '{"a" 1}', '01', '-', '"\u0001"', ' ', '', 'nul', '[' .repeat(100) + ']'.repeat(100)]) {
      expect(fast(Buffer.from(t))).toBeNull();
    }
    expect(fast(Buffer.from([0x22, 0xc3, 0x22]))).toBeNull();
    // Room for the output is checked, never overrun.
    expect(fast(Buffer.from('{"abcdef":"ghijkl"}'), '', 10)).toBeNull();
    expect(fast(Buffer.from('1e20'), '', 5)).toBeNull();
    expect(fast(Buffer.from('{"abcdef":"ghijkl"}'), '', 32)?.toString()).toBe('{"abcdef":"ghijkl"}');
  });

  test('the bytes after the payload are never read as part of it', () => {
    for (const [t, trailer] of [['"ab', '"'], ['[1', ']'], ['{"a":1', '}'], ['tru', 'e'], ['-', '1']]) {
      expect(fast(Buffer.from(t), trailer)).toBeNull();
    }
    expect(fast(Buffer.from('12'), '.5')?.toString()).toBe('12');
    expect(fast(Buffer.from('1'), 'e3')?.toString()).toBe('1');
    expect(fast(Buffer.from('-0'), '.5')?.toString()).toBe('0');
  });
});
