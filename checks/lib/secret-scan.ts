/**
 * Finding secrets in raw log bytes, without keeping them: a multi-pattern matcher built in
 * memory from the known values (and wiped after the run), and detectors of secret shapes
 * after detect-secrets' plugins (private keys, JWTs, AWS keys, Slack) plus the tokens the
 * Aegis runbooks name (`acp_` API keys, bearer tokens, Splunk HEC, Datadog, PagerDuty keys).
 * Hits are reported as (what, byte position): never the bytes matched.
 *
 * Speed: log files run to gigabytes, so both work on Buffers. Known values go through a
 * Wu–Manber scan (a shift table over 3-byte blocks skips most of the text); shapes are found
 * by one native regex pass for a few literal anchors, and only the line around an anchor is
 * tried against the detector's expression. (Measured against npm Aho–Corasick packages:
 * bench/secrets-in-logs.ts.)
 */
import { z } from 'zod';

/** Known values shorter than this would match ordinary text; they are not looked for. */
export const MIN_KNOWN_LENGTH = 8;

export interface KnownValue {
  /** What a hit is reported as (e.g. the secret's name); never the value. */
  label: string;
  value: string;
}

/**
 * The forms of a secret value a log line can carry: the value, its JSON-escaped form (a value
 * with quotes or backslashes inside a JSON log line), and each line of a multi-line value (a
 * PEM body logged line by line). Too-short values and plain words are left out.
 */
export function patternsOf(value: string, minLength = MIN_KNOWN_LENGTH): string[] {
  const out = new Set<string>();
  const keep = (s: string) => {
    if (s.length < minLength) return;
    // A plain word ("password", "changeme") is in log text for other reasons.
    if (/^[A-Za-z]+$/.test(s) && s.length < 16) return;
    out.add(s);
  };
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n/)) {
      const t = line.trim();
      if (t.length >= Math.max(16, minLength) && !/^-----(BEGIN|END) /.test(t)) keep(t);
    }
  } else {
    keep(value);
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value) keep(escaped);
  }
  return [...out];
}

const BLOCK = 3;
const TABLE_BITS = 16;
const TABLE_MASK = (1 << TABLE_BITS) - 1;

function blockHash(a: number, b: number, c: number): number {
  return ((a << 10) ^ (b << 5) ^ c ^ (a >>> 3)) & TABLE_MASK;
}

/**
 * Wu–Manber over bytes: every pattern's first `m` bytes (m = the shortest pattern) index a
 * shift table of 3-byte blocks; where the block ending a window could end a prefix, the
 * patterns of that block are compared in full. Holds the values only as long as it lives:
 * {@link dispose} overwrites them.
 */
export class KnownValueMatcher {
  readonly #patterns: Buffer[] = [];
  readonly #labels: string[][] = [];
  readonly #m: number;
  readonly #shift: Uint8Array;
  readonly #bucket: (Int32Array | undefined)[];

  constructor(values: Iterable<KnownValue>, opts: { minLength?: number } = {}) {
    const index = new Map<string, number>();
    for (const { label, value } of values) {
      for (const p of patternsOf(value, opts.minLength)) {
        let i = index.get(p);
        if (i === undefined) {
          i = this.#patterns.length;
          index.set(p, i);
          this.#patterns.push(Buffer.from(p, 'utf8'));
          this.#labels.push([]);
        }
        if (!this.#labels[i].includes(label)) this.#labels[i].push(label);
      }
    }
    index.clear();
    let m = Infinity;
    for (const p of this.#patterns) m = Math.min(m, p.length);
    this.#m = Number.isFinite(m) ? m : 0;
    const maxShift = Math.max(1, Math.min(255, this.#m - BLOCK + 1));
    this.#shift = new Uint8Array(TABLE_MASK + 1).fill(maxShift);
    const buckets = new Map<number, number[]>();
    this.#patterns.forEach((p, idx) => {
      for (let q = BLOCK; q <= this.#m; q++) {
        const h = blockHash(p[q - 3], p[q - 2], p[q - 1]);
        const s = this.#m - q;
        if (s < this.#shift[h]) this.#shift[h] = s;
      }
      const h = blockHash(p[this.#m - 3], p[this.#m - 2], p[this.#m - 1]);
      let list = buckets.get(h);
      if (!list) buckets.set(h, (list = []));
      list.push(idx);
    });
    this.#bucket = new Array<Int32Array | undefined>(TABLE_MASK + 1);
    for (const [h, list] of buckets) this.#bucket[h] = Int32Array.from(list);
  }

  /** How many distinct patterns it looks for. */
  get size(): number {
    return this.#patterns.length;
  }

  /** Length in bytes of a pattern (so a caller can hash what matched, never keep it). */
  patternLength(pattern: number): number {
    return this.#patterns[pattern]?.length ?? 0;
  }

  /** The labels (secret names) of a pattern. */
  labels(pattern: number): readonly string[] {
    return this.#labels[pattern] ?? [];
  }

  /** Calls `onHit(pattern, start)` for every occurrence of every pattern in `buf`. */
  scan(buf: Buffer, onHit: (pattern: number, start: number) => void): void {
    const m = this.#m;
    if (m === 0) return;
    const shift = this.#shift;
    const bucket = this.#bucket;
    const patterns = this.#patterns;
    const n = buf.length;
    let i = m - 1;
    while (i < n) {
      const h = ((buf[i - 2] << 10) ^ (buf[i - 1] << 5) ^ buf[i] ^ (buf[i - 2] >>> 3)) & TABLE_MASK;
      const s = shift[h];
      if (s !== 0) {
        i += s;
        continue;
      }
      const cand = bucket[h];
      if (cand !== undefined) {
        const start = i - m + 1;
        for (let k = 0; k < cand.length; k++) {
          const p = patterns[cand[k]];
          const len = p.length;
          if (start + len > n) continue;
          let j = 0;
          while (j < len && buf[start + j] === p[j]) j++;
          if (j === len) onHit(cand[k], start);
        }
      }
      i++;
    }
  }

  /** Overwrites the values it holds; the matcher finds nothing afterwards. */
  dispose(): void {
    for (const p of this.#patterns) p.fill(0);
    this.#patterns.length = 0;
    this.#labels.length = 0;
    this.#bucket.fill(undefined);
  }
}

// ------------------------------------------------------------------------------- shapes

export interface ShapeDetector {
  id: string;
  /** What findings call it. */
  title: string;
  /** Literal text (latin1) that every match contains; chosen to start with a rare character. */
  anchors: readonly string[];
  /** Global expression tried on the line around an anchor. */
  re: RegExp;
  /** Matches may run on into the next line (a PEM body under its armor line); `re` says how. */
  nextLine?: boolean;
  /** Further proof on the matched text (e.g. a JWT's parts decode to JSON). */
  accept?: (text: string) => boolean;
}

function decodesToJsonObject(part: string): boolean {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

const hasDigitAndLetter = (s: string) => /[0-9]/.test(s) && /[A-Za-z]/.test(s);
const SEP = `[\\\\"']*\\s*[:=]\\s*[\\\\"']*`;

/** The detectors, after detect-secrets' plugins where it has one. */
export const SHAPE_DETECTORS: readonly ShapeDetector[] = Object.freeze([
  {
    id: 'private-key',
    title: 'a private-key PEM block',
    anchors: ['BEGIN ', 'PuTTY-User-Key-File-'],
    // The armor alone is sometimes quoted in messages; a key has a base64 body after it: on the
    // same line (a JSON-escaped PEM), or — a PEM printed raw, or line by line through a log
    // collector — on the next line, as a body line: 60 or more base64 characters with upper
    // and lower case (a hex digest has no upper case).
    re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[^\n]{0,200}?[A-Za-z0-9+/]{32}|[^\n]{0,40}\n[^\n]{0,200}?(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]{0,59}[a-z])(?=[A-Za-z0-9+/]{0,59}[A-Z])[A-Za-z0-9+/]{60})|PuTTY-User-Key-File-\d+:/g,
    nextLine: true,
  },
  {
    id: 'jwt',
    title: 'a JSON Web Token',
    anchors: ['yJ'],
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]*={0,2}/g,
    accept: (t) => {
      const [h, p] = t.split('.');
      return decodesToJsonObject(h.replace(/=+$/, '')) && decodesToJsonObject(p.replace(/=+$/, ''));
    },
  },
  {
    id: 'acp-api-key',
    title: 'an Aegis API key (acp_…)',
    anchors: ['acp_'],
    re: /(?<![A-Za-z0-9_])acp_[A-Za-z0-9_-]{20,}/g,
    accept: (t) => hasDigitAndLetter(t.slice(4)),
  },
  {
    id: 'aws-access-key-id',
    title: 'an AWS access key id',
    anchors: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'],
    re: /(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])/g,
  },
  {
    id: 'aws-secret-access-key',
    title: 'an AWS secret access key',
    anchors: ['_key', '_KEY', 'AccessKey'],
    re: new RegExp(`(?:secret_access_key|SECRET_ACCESS_KEY|[sS]ecretAccessKey)${SEP}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])`, 'g'),
  },
  {
    id: 'slack-token',
    title: 'a Slack token',
    anchors: ['xox'],
    re: /(?<![A-Za-z0-9])xox[aboprs]-(?:[0-9]+-)+[A-Za-z0-9]+/g,
  },
  {
    id: 'slack-webhook',
    title: 'a Slack webhook URL',
    anchors: ['hooks.slack'],
    re: /hooks\.slack\.com\/services\/T[A-Za-z0-9_]+\/B[A-Za-z0-9_]+\/[A-Za-z0-9_]+/g,
  },
  {
    id: 'bearer-token',
    title: 'a bearer token',
    anchors: ['Bearer', 'bearer', 'BEARER'],
    re: /(?<![A-Za-z])(?:[Bb]earer|BEARER)[ \t]+[A-Za-z0-9._~+/-]{16,}=*(?![A-Za-z0-9._~+/=-])/g,
    // A JWT is reported as one; placeholders (YOUR_TOKEN_HERE) have no digits.
    accept: (t) => {
      const token = t.replace(/^\S+\s+/, '');
      return !token.startsWith('eyJ') && hasDigitAndLetter(token);
    },
  },
  {
    id: 'splunk-hec-token',
    title: 'a Splunk HEC token',
    anchors: ['plunk', 'PLUNK', '_token', '_TOKEN'],
    re: new RegExp(`(?:splunk |(?:splunk[_-]?hec|hec|splunk)[_-]?token${SEP})[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-z])`, 'gi'),
  },
  {
    id: 'datadog-api-key',
    title: 'a Datadog API or application key',
    anchors: ['_key', '_KEY', '-key', '-KEY'],
    re: new RegExp(`(?<![a-z0-9])(?:dd|datadog)[_-]?(?:api|app|application)[_-]?key${SEP}(?:[0-9a-f]{40}|[0-9a-f]{32})(?![0-9a-z])`, 'gi'),
  },
  {
    id: 'pagerduty-key',
    title: 'a PagerDuty integration key or API token',
    anchors: ['_key', '_KEY', 'Token token=', '_token', '_TOKEN'],
    re: new RegExp(
      `(?:(?:routing|integration|service)_key|pagerduty[_-]?(?:api|integration|routing)?[_-]?(?:key|token))${SEP}[A-Za-z0-9+_-]{20,40}(?![A-Za-z0-9+_-])|Token token=[A-Za-z0-9+_-]{20}(?![A-Za-z0-9+_-])`,
      'gi',
    ),
    accept: (t) => hasDigitAndLetter(t.replace(/^.*[:= "']/, '')),
  },
]);

export const SHAPE_IDS: readonly string[] = SHAPE_DETECTORS.map((d) => d.id);

/** The options of every check that scans with these detectors (spread into its options' schema). */
export const scanOptions = {
  /** Shape detectors to run (all by default); names from the catalog in docs/findings.md. */
  detectors: z.array(z.enum(SHAPE_IDS as [string, ...string[]])).default([...SHAPE_IDS]),
  /** Known values shorter than this are not looked for: they would match ordinary text. */
  min_secret_length: z.number().int().min(MIN_KNOWN_LENGTH).default(MIN_KNOWN_LENGTH),
};

/** Anchor → the detectors whose matches contain it. */
const BY_ANCHOR: ReadonlyMap<string, readonly ShapeDetector[]> = (() => {
  const by = new Map<string, ShapeDetector[]>();
  for (const d of SHAPE_DETECTORS) {
    for (const a of d.anchors) {
      let list = by.get(a);
      if (!list) by.set(a, (list = []));
      list.push(d);
    }
  }
  return by;
})();

/**
 * Every anchor in one alternation, longest first: one native regex pass over the chunk finds
 * them all (measured faster than one indexOf pass per anchor, and than a byte loop in JS).
 */
const ANCHOR_RE = new RegExp(
  [...BY_ANCHOR.keys()]
    .sort((a, b) => b.length - a.length)
    .map((a) => a.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))
    .join('|'),
  'g',
);

/** How much of a line around an anchor is tried: secrets are short, lines may not be. */
const BEFORE = 256;
const AFTER = 4096;

/**
 * Calls `onHit(detector, start, end)` for each secret shape in `buf` (each match once, `end`
 * exclusive). The chunk is decoded as latin1, so string indexes are byte indexes.
 */
export function scanShapes(buf: Buffer, onHit: (detector: string, start: number, end: number) => void): void {
  const text = buf.toString('latin1');
  const seen = new Set<string>();
  const re = new RegExp(ANCHOR_RE.source, 'g');
  for (let a = re.exec(text); a; a = re.exec(text)) {
    const p = a.index;
    const anchorEnd = p + a[0].length;
    const ws = Math.max(text.lastIndexOf('\n', p) + 1, p - BEFORE);
    const detectors = BY_ANCHOR.get(a[0]) ?? [];
    const nl = text.indexOf('\n', p);
    // A detector whose matches may run on into the next line sees it too.
    const nl2 = nl >= 0 && detectors.some((d) => d.nextLine) ? text.indexOf('\n', nl + 1) : nl;
    const we = Math.min(nl2 < 0 ? text.length : nl2, anchorEnd + AFTER);
    const window = text.slice(ws, we);
    for (const d of detectors) {
      d.re.lastIndex = 0;
      for (let m = d.re.exec(window); m; m = d.re.exec(window)) {
        if (m[0].length === 0) {
          d.re.lastIndex++;
          continue;
        }
        const start = ws + m.index;
        // Reported from an anchor inside the match, and once, however many anchors it holds.
        if (start > p || start + m[0].length < anchorEnd) continue;
        const key = `${d.id}:${start}`;
        if (seen.has(key)) continue;
        if (d.accept && !d.accept(m[0])) continue;
        seen.add(key);
        onHit(d.id, start, start + m[0].length);
      }
    }
    // The next anchor may lie inside this one (e.g. `_key` within `_keys`); go on from the next byte.
    re.lastIndex = p + 1;
  }
}
