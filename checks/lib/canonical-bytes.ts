/**
 * RFC 8785 canonical form of JSON text, byte to byte: the payload of an audit row as Postgres
 * sends it (UTF-8 JSON text; jsonb's output has spaces and its own member order) written out
 * canonically without building a string or an object per value. It handles what a payload
 * usually holds — objects with ASCII member names, arrays, strings, numbers, literals — and
 * answers -1 for anything else, for the caller to use canonicalJson(JSON.parse(text)) instead:
 * text that is not JSON, member names with escapes or non-ASCII characters, a name twice in
 * one object, string escapes that are not already canonical (`\/`, `\u0041`), invalid UTF-8,
 * numbers that are not finite, nesting deeper than MAX_DEPTH, an output buffer too small.
 * Whatever it writes is exactly the UTF-8 of canonicalJson(JSON.parse(text)) (a differential
 * test holds it to that). Kept free of imports: worker threads load it.
 */

/** Deeper than this, the caller's path (a recursion of its own) decides. */
const MAX_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Member names' places while an object is written: [nameStart, nameEnd, outStart, outEnd] per member, a stack over nested objects. */
let members = new Int32Array(4 * 256);
/** Where an object's members are moved while sorted. */
let sortScratch = Buffer.allocUnsafe(64 * 1024);
/** The members of the object being sorted, in name order (indexes into `members`). */
let order = new Int32Array(256);

/** The escapes JSON.stringify writes for control characters other than \b \t \n \f \r (as `\u00xx`, lowercase). */
function canonicalUEscape(src: Buffer, i: number): boolean {
  // `\u00` then [01] then a lowercase hex digit; the five with short forms are not canonical as \u.
  if (src[i] !== 0x30 || src[i + 1] !== 0x30) return false;
  const hi = src[i + 2];
  const lo = src[i + 3];
  if (hi !== 0x30 && hi !== 0x31) return false;
  const loVal = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x61 + 10 : -1;
  if (loVal < 0) return false;
  const v = (hi - 0x30) * 16 + loVal;
  return v !== 0x08 && v !== 0x09 && v !== 0x0a && v !== 0x0c && v !== 0x0d;
}

class Writer {
  src!: Buffer;
  end = 0;
  out!: Buffer;
  at = 0;
  p = 0;
  top = 0;

  ws(): void {
    const src = this.src;
    let p = this.p;
    while (p < this.end) {
      const c = src[p];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.p = p;
  }

  /** A string (at its opening quote), copied as it stands when that is canonical. False: not handled. */
  string(): boolean {
    const src = this.src;
    const out = this.out;
    const end = this.end;
    let p = this.p + 1;
    let at = this.at;
    if (at >= out.length) return false;
    out[at++] = QUOTE;
    for (;;) {
      if (p >= end || at + 4 > out.length) return false;
      const c = src[p];
      if (c === QUOTE) {
        out[at++] = QUOTE;
        this.p = p + 1;
        this.at = at;
        return true;
      }
      if (c < 0x20) return false;
      if (c === BACKSLASH) {
        if (p + 1 >= end) return false;
        const e = src[p + 1];
        if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
          out[at++] = c;
          out[at++] = e;
          p += 2;
          continue;
        }
        if (e === 0x75 && p + 6 <= end && canonicalUEscape(src, p + 2)) {
          if (at + 6 > out.length) return false;
          for (let k = 0; k < 6; k++) out[at++] = src[p + k];
          p += 6;
          continue;
        }
        return false;
      }
      if (c < 0x80) {
        out[at++] = c;
        p++;
        continue;
      }
      // Well-formed UTF-8 (Unicode Table 3-7; no surrogates, nothing above U+10FFFF) is copied.
      let n: number;
      if (c >= 0xc2 && c <= 0xdf) n = 1;
      else if (c >= 0xe0 && c <= 0xef) n = 2;
      else if (c >= 0xf0 && c <= 0xf4) n = 3;
      else return false;
      if (p + n >= end) return false;
      const c1 = src[p + 1];
      if (c === 0xe0 ? c1 < 0xa0 || c1 > 0xbf : c === 0xed ? c1 < 0x80 || c1 > 0x9f : c === 0xf0 ? c1 < 0x90 || c1 > 0xbf : c === 0xf4 ? c1 < 0x80 || c1 > 0x8f : c1 < 0x80 || c1 > 0xbf) return false;
      for (let k = 2; k <= n; k++) {
        const ck = src[p + k];
        if (ck < 0x80 || ck > 0xbf) return false;
      }
      for (let k = 0; k <= n; k++) out[at++] = src[p + k];
      p += n + 1;
    }
  }

  number(): boolean {
    const src = this.src;
    const end = this.end;
    const start = this.p;
    let p = start;
    if ((p < end ? src[p] : -1) === 0x2d) p++;
    const intStart = p;
    if ((p < end ? src[p] : -1) === 0x30) p++;
    else if ((p < end ? src[p] : -1) >= 0x31 && (p < end ? src[p] : -1) <= 0x39) while ((p < end ? src[p] : -1) >= 0x30 && (p < end ? src[p] : -1) <= 0x39) p++;
    else return false;
    const intEnd = p;
    let plain = true;
    if ((p < end ? src[p] : -1) === 0x2e) {
      plain = false;
      p++;
      const f = p;
      while ((p < end ? src[p] : -1) >= 0x30 && (p < end ? src[p] : -1) <= 0x39) p++;
      if (p === f) return false;
    }
    if ((p < end ? src[p] : -1) === 0x65 || (p < end ? src[p] : -1) === 0x45) {
      plain = false;
      p++;
      if ((p < end ? src[p] : -1) === 0x2b || (p < end ? src[p] : -1) === 0x2d) p++;
      const f = p;
      while ((p < end ? src[p] : -1) >= 0x30 && (p < end ? src[p] : -1) <= 0x39) p++;
      if (p === f) return false;
    }
    this.p = p;
    // An integer below 10^15 is written as itself by ECMAScript (exact below 2^53); -0 is 0.
    if (plain && intEnd - intStart <= 15 && !(src[intStart] === 0x30 && start !== intStart)) {
      if (this.at + (p - start) > this.out.length) return false;
      for (let k = start; k < p; k++) this.out[this.at++] = src[k];
      return true;
    }
    const v = Number(src.toString('latin1', start, p));
    if (!Number.isFinite(v)) return false;
    const s = String(v);
    if (this.at + s.length > this.out.length) return false;
    this.at += this.out.write(s, this.at, 'latin1');
    return true;
  }

  literal(word: string): boolean {
    const n = word.length;
    if (this.p + n > this.end || this.at + n > this.out.length) return false;
    for (let k = 0; k < n; k++) if (this.src[this.p + k] !== word.charCodeAt(k)) return false;
    for (let k = 0; k < n; k++) this.out[this.at++] = word.charCodeAt(k);
    this.p += n;
    return true;
  }

  value(depth: number): boolean {
    if (this.p >= this.end) return false;
    const c = this.src[this.p];
    if (c === QUOTE) return this.string();
    if (c === 0x7b) return depth < MAX_DEPTH && this.object(depth + 1);
    if (c === 0x5b) return depth < MAX_DEPTH && this.array(depth + 1);
    if (c === 0x74) return this.literal('true');
    if (c === 0x66) return this.literal('false');
    if (c === 0x6e) return this.literal('null');
    return this.number();
  }

  array(depth: number): boolean {
    const out = this.out;
    if (this.at + 2 > out.length) return false;
    out[this.at++] = 0x5b;
    this.p++;
    this.ws();
    if (this.src[this.p] === 0x5d && this.p < this.end) {
      this.p++;
      out[this.at++] = 0x5d;
      return true;
    }
    for (;;) {
      this.ws();
      if (!this.value(depth)) return false;
      this.ws();
      if (this.p >= this.end || this.at >= out.length) return false;
      const c = this.src[this.p++];
      if (c === 0x5d) {
        out[this.at++] = 0x5d;
        return true;
      }
      if (c !== 0x2c) return false;
      out[this.at++] = 0x2c;
    }
  }

  /** A member name: ASCII without escapes (so byte order is RFC 8785's UTF-16 order). */
  name(): boolean {
    const src = this.src;
    let p = this.p + 1;
    while (p < this.end) {
      const c = src[p];
      if (c === QUOTE) break;
      if (c < 0x20 || c >= 0x80 || c === BACKSLASH) return false;
      p++;
    }
    if (p >= this.end) return false;
    return this.string();
  }

  object(depth: number): boolean {
    const src = this.src;
    const out = this.out;
    const objStart = this.at;
    if (this.at + 2 > out.length) return false;
    out[this.at++] = 0x7b;
    this.p++;
    this.ws();
    if (this.src[this.p] === 0x7d && this.p < this.end) {
      this.p++;
      out[this.at++] = 0x7d;
      return true;
    }
    const base = this.top;
    let sorted = true;
    for (;;) {
      this.ws();
      if (this.p >= this.end || src[this.p] !== QUOTE) return false;
      const m = this.top;
      if (4 * (m + 1) > members.length) {
        const grown = new Int32Array(members.length * 2);
        grown.set(members);
        members = grown;
      }
      this.top++;
      members[4 * m] = this.p + 1;
      members[4 * m + 2] = this.at;
      if (!this.name()) return false;
      members[4 * m + 1] = this.p - 1;
      if (m > base) {
        const cmp = compareNames(src, members, m - 1, m);
        if (cmp === 0) return false; // a name twice: JSON.parse keeps the last; the caller's path decides
        if (cmp > 0) sorted = false;
      }
      this.ws();
      if (this.p >= this.end || src[this.p] !== 0x3a || this.at >= out.length) return false;
      this.p++;
      out[this.at++] = 0x3a;
      this.ws();
      if (!this.value(depth)) return false;
      members[4 * m + 3] = this.at;
      this.ws();
      if (this.p >= this.end || this.at >= out.length) return false;
      const c = src[this.p++];
      if (c === 0x7d) break;
      if (c !== 0x2c) return false;
      out[this.at++] = 0x2c;
    }
    const count = this.top - base;
    if (!sorted && !this.sortMembers(base, count, objStart + 1)) return false;
    this.top = base;
    out[this.at++] = 0x7d;
    return true;
  }

  /** Rewrites an object's members (written in the text's order from `from`) in name order. */
  sortMembers(base: number, count: number, from: number): boolean {
    if (order.length < count) order = new Int32Array(Math.max(count, order.length * 2));
    for (let i = 0; i < count; i++) order[i] = base + i;
    const src = this.src;
    // Insertion sort: objects are small, and names are unique (checked against neighbours only so far).
    for (let i = 1; i < count; i++) {
      const m = order[i];
      let j = i - 1;
      while (j >= 0 && compareNames(src, members, order[j], m) > 0) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = m;
    }
    for (let i = 1; i < count; i++) if (compareNames(src, members, order[i - 1], order[i]) === 0) return false;
    const len = this.at - from;
    if (sortScratch.length < len) sortScratch = Buffer.allocUnsafe(Math.max(len, sortScratch.length * 2));
    this.out.copy(sortScratch, 0, from, this.at);
    let at = from;
    for (let i = 0; i < count; i++) {
      const m = order[i];
      if (i > 0) this.out[at++] = 0x2c;
      const s = members[4 * m + 2] - from;
      const e = members[4 * m + 3] - from;
      if (e - s > 64) at += sortScratch.copy(this.out, at, s, e);
      else for (let k = s; k < e; k++) this.out[at++] = sortScratch[k];
    }
    this.at = at;
    return true;
  }
}

/** Orders two members' names (ASCII, unescaped) by their bytes. */
function compareNames(src: Buffer, ms: Int32Array, a: number, b: number): number {
  let i = ms[4 * a];
  const ie = ms[4 * a + 1];
  let j = ms[4 * b];
  const je = ms[4 * b + 1];
  while (i < ie && j < je) {
    const d = src[i++] - src[j++];
    if (d !== 0) return d;
  }
  return ie - i - (je - j);
}

const writer = new Writer();

/**
 * Writes the canonical form of the JSON text in `src[from, to)` into `out` at `at`; returns
 * where it ends in `out`, or -1 when this path does not handle the text (see above): the
 * caller then uses canonicalJson(JSON.parse(text)), which decides (an error, or a form).
 */
export function canonicalPayloadInto(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
  const w = writer;
  w.src = src;
  w.end = to;
  w.out = out;
  w.at = at;
  w.p = from;
  w.top = 0;
  w.ws();
  if (!w.value(0)) return -1;
  w.ws();
  return w.p === to ? w.at : -1;
}
