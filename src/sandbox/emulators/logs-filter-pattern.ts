/**
 * CloudWatch Logs filter patterns (wire-protocols.md §C.2), compiled to a predicate on the
 * event message. Supported:
 * - empty pattern: everything;
 * - terms: `ERROR ARGUMENTS` (all), `"exact phrase"`, `?ERROR ?WARN` (any), `-term` (none),
 *   `%regex%` terms;
 * - JSON: `{ $.a.b = "x" }`, `!=`, `*` wildcards in string values, numbers with
 *   `= != < > <= >=`, `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`, `&&`, `||`, parentheses,
 *   array indexes (`$.users[0].email`).
 * Space-delimited patterns (`[a, b, ...]`) are not supported and are rejected, so a test never
 * passes by accident on a pattern the emulator does not understand.
 */

export class FilterPatternError extends Error {}

export type MessagePredicate = (message: string) => boolean;

export function compileFilterPattern(pattern: string | undefined): MessagePredicate {
  const text = (pattern ?? '').trim();
  if (text === '') return () => true;
  if (text.startsWith('{')) return compileJsonPattern(text);
  if (text.startsWith('[')) throw new FilterPatternError('space-delimited filter patterns are not supported by the emulator');
  return compileTermPattern(text);
}

// ---- unstructured terms ---------------------------------------------------------------

interface Term {
  mode: 'all' | 'any' | 'none';
  test: (message: string) => boolean;
}

function compileTermPattern(text: string): MessagePredicate {
  const terms: Term[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text.charAt(i);
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    let mode: Term['mode'] = 'all';
    if (ch === '?' || ch === '-') {
      mode = ch === '?' ? 'any' : 'none';
      i += 1;
    }
    const quote = text.charAt(i);
    if (quote === '"') {
      const { value, end } = readQuoted(text, i);
      terms.push({ mode, test: (m) => m.includes(value) });
      i = end;
    } else if (quote === '%') {
      const end = text.indexOf('%', i + 1);
      if (end < 0) throw new FilterPatternError('unterminated regular expression');
      const re = compileRegex(text.slice(i + 1, end));
      terms.push({ mode, test: (m) => re.test(m) });
      i = end + 1;
    } else {
      let end = i;
      while (end < text.length && !/\s/.test(text.charAt(end))) end += 1;
      const value = text.slice(i, end);
      if (value === '') throw new FilterPatternError('empty term');
      terms.push({ mode, test: (m) => m.includes(value) });
      i = end;
    }
  }
  const all = terms.filter((t) => t.mode === 'all');
  const any = terms.filter((t) => t.mode === 'any');
  const none = terms.filter((t) => t.mode === 'none');
  return (m) =>
    all.every((t) => t.test(m)) && (any.length === 0 || any.some((t) => t.test(m))) && !none.some((t) => t.test(m));
}

function compileRegex(source: string): RegExp {
  if (source.includes('(') || source.includes(')')) {
    throw new FilterPatternError('parentheses are not supported in regular expressions');
  }
  try {
    return new RegExp(source);
  } catch {
    throw new FilterPatternError(`invalid regular expression: ${source}`);
  }
}

/** A double-quoted string starting at `start`; backslash escapes the next character. */
function readQuoted(text: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  while (i < text.length) {
    const c = text.charAt(i);
    if (c === '\\' && i + 1 < text.length) {
      value += text.charAt(i + 1);
      i += 2;
    } else if (c === '"') {
      return { value, end: i + 1 };
    } else {
      value += c;
      i += 1;
    }
  }
  throw new FilterPatternError('unterminated quoted string');
}

// ---- JSON patterns --------------------------------------------------------------------

type Token =
  | { kind: 'punct'; value: '(' | ')' | '&&' | '||' | '{' | '}' }
  | { kind: 'op'; value: '=' | '!=' | '<' | '>' | '<=' | '>=' }
  | { kind: 'selector'; path: Array<string | number> }
  | { kind: 'string'; value: string }
  | { kind: 'word'; value: string };

function tokenizeJson(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    const two = text.slice(i, i + 2);
    if (/\s/.test(c)) {
      i += 1;
    } else if (two === '&&' || two === '||') {
      tokens.push({ kind: 'punct', value: two });
      i += 2;
    } else if (two === '!=' || two === '<=' || two === '>=') {
      tokens.push({ kind: 'op', value: two });
      i += 2;
    } else if (c === '=' || c === '<' || c === '>') {
      tokens.push({ kind: 'op', value: c });
      i += 1;
    } else if (c === '(' || c === ')' || c === '{' || c === '}') {
      tokens.push({ kind: 'punct', value: c });
      i += 1;
    } else if (c === '"') {
      const { value, end } = readQuoted(text, i);
      tokens.push({ kind: 'string', value });
      i = end;
    } else if (c === '$') {
      let end = i + 1;
      while (end < text.length && !/[\s=!<>()&|{}]/.test(text.charAt(end))) end += 1;
      tokens.push({ kind: 'selector', path: parseSelector(text.slice(i, end)) });
      i = end;
    } else {
      let end = i;
      while (end < text.length && !/[\s=!<>()&|{}"]/.test(text.charAt(end))) end += 1;
      if (end === i) throw new FilterPatternError(`unexpected character '${c}'`);
      tokens.push({ kind: 'word', value: text.slice(i, end) });
      i = end;
    }
  }
  return tokens;
}

function parseSelector(raw: string): Array<string | number> {
  const path: Array<string | number> = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]/g;
  let consumed = 1; // the leading `$`
  for (let m = re.exec(raw); m !== null; m = re.exec(raw)) {
    if (m.index !== consumed) break;
    path.push(m[1] !== undefined ? m[1] : Number(m[2]));
    consumed = m.index + m[0].length;
  }
  if (consumed !== raw.length || path.length === 0) throw new FilterPatternError(`invalid selector ${raw}`);
  return path;
}

type JsonTest = (doc: unknown) => boolean;

class JsonParser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): JsonTest {
    this.expectPunct('{');
    const test = this.or();
    this.expectPunct('}');
    if (this.pos !== this.tokens.length) throw new FilterPatternError('unexpected text after the closing brace');
    return test;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private next(): Token {
    const t = this.tokens[this.pos];
    if (!t) throw new FilterPatternError('unexpected end of filter pattern');
    this.pos += 1;
    return t;
  }

  private isPunct(value: string): boolean {
    const t = this.peek();
    return t?.kind === 'punct' && t.value === value;
  }

  private expectPunct(value: string): void {
    if (!this.isPunct(value)) throw new FilterPatternError(`expected '${value}'`);
    this.pos += 1;
  }

  private or(): JsonTest {
    const parts = [this.and()];
    while (this.isPunct('||')) {
      this.pos += 1;
      parts.push(this.and());
    }
    return parts.length === 1 ? (parts[0] as JsonTest) : (d) => parts.some((p) => p(d));
  }

  private and(): JsonTest {
    const parts = [this.unary()];
    while (this.isPunct('&&')) {
      this.pos += 1;
      parts.push(this.unary());
    }
    return parts.length === 1 ? (parts[0] as JsonTest) : (d) => parts.every((p) => p(d));
  }

  private unary(): JsonTest {
    if (this.isPunct('(')) {
      this.pos += 1;
      const inner = this.or();
      this.expectPunct(')');
      return inner;
    }
    return this.comparison();
  }

  private comparison(): JsonTest {
    const sel = this.next();
    if (sel.kind !== 'selector') throw new FilterPatternError('expected a selector such as $.field');
    const get = (d: unknown): unknown => select(d, sel.path);
    const t = this.next();
    if (t.kind === 'word' && t.value === 'IS') {
      const what = this.next();
      if (what.kind !== 'word') throw new FilterPatternError('expected NULL, TRUE or FALSE after IS');
      if (what.value === 'NULL') return (d) => get(d) === null;
      if (what.value === 'TRUE') return (d) => get(d) === true;
      if (what.value === 'FALSE') return (d) => get(d) === false;
      throw new FilterPatternError(`unexpected IS ${what.value}`);
    }
    if (t.kind === 'word' && t.value === 'NOT') {
      const what = this.next();
      if (what.kind !== 'word' || what.value !== 'EXISTS') throw new FilterPatternError('expected EXISTS after NOT');
      return (d) => get(d) === undefined;
    }
    if (t.kind !== 'op') throw new FilterPatternError('expected a comparison operator');
    const value = this.next();
    if (value.kind !== 'string' && value.kind !== 'word') throw new FilterPatternError('expected a value');
    const numeric = value.kind === 'word' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value.value);
    if (numeric) return numberTest(t.value, Number(value.value), value.value, get);
    if (t.value !== '=' && t.value !== '!=') throw new FilterPatternError(`operator ${t.value} needs a number`);
    const matches = globTest(value.value);
    const equals = (d: unknown): boolean => {
      const v = get(d);
      return (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && matches(String(v));
    };
    if (t.value === '=') return equals;
    return (d) => get(d) !== undefined && !equals(d);
  }
}

function numberTest(op: string, n: number, literal: string, get: (d: unknown) => unknown): JsonTest {
  const cmp = (v: number): boolean => {
    switch (op) {
      case '=':
        return v === n;
      case '!=':
        return v !== n;
      case '<':
        return v < n;
      case '>':
        return v > n;
      case '<=':
        return v <= n;
      default:
        return v >= n;
    }
  };
  return (d) => {
    const v = get(d);
    if (typeof v === 'number') return cmp(v);
    // A string field compared with a number literal matches on its text, e.g. "200" = 200.
    if (typeof v === 'string' && (op === '=' || op === '!=')) return (v === literal) === (op === '=');
    return false;
  };
}

function globTest(value: string): (s: string) => boolean {
  if (!value.includes('*')) return (s) => s === value;
  const re = new RegExp(`^${value.split('*').map(escapeRegex).join('.*')}$`, 's');
  return (s) => re.test(s);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function select(doc: unknown, path: ReadonlyArray<string | number>): unknown {
  let cur: unknown = doc;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[key];
    } else {
      if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
      cur = Object.prototype.hasOwnProperty.call(cur, key) ? (cur as Record<string, unknown>)[key] : undefined;
    }
  }
  return cur;
}

function compileJsonPattern(text: string): MessagePredicate {
  const test = new JsonParser(tokenizeJson(text)).parse();
  return (message) => {
    let doc: unknown;
    try {
      doc = JSON.parse(message);
    } catch {
      return false; // JSON patterns never match events that are not JSON
    }
    return typeof doc === 'object' && doc !== null && test(doc);
  };
}
