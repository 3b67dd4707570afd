import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/**
 * A secret value read from a source. It cannot be printed, logged or serialised by
 * accident: toString, toJSON and util.inspect all yield a placeholder. Comparisons go
 * through keyed fingerprints ({@link Fingerprinter}) or {@link Secret.equals}.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The raw value. Only comparison code and the known-secret scrubber may call this. */
  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  equals(other: Secret): boolean {
    const a = Buffer.from(this.#value, 'utf8');
    const b = Buffer.from(other.#value, 'utf8');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  toString(): string {
    return '[secret]';
  }

  toJSON(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return 'Secret([secret])';
  }
}

/**
 * Keyed fingerprints: HMAC-SHA256 under a random per-process key, so a fingerprint shown
 * in a report can be compared with another from the same run but reveals nothing about
 * the value and cannot be matched against a dictionary or across runs.
 */
export class Fingerprinter {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  fingerprint(value: Secret | string): string {
    const raw = typeof value === 'string' ? value : value.reveal();
    return 'hmac:' + createHmac('sha256', this.#key).update(raw, 'utf8').digest('hex').slice(0, 16);
  }
}

/**
 * Every secret value the sources read during a run. Outputs pass text through
 * {@link KnownSecrets.scrub} as a last line of defence: if a value (or a long enough
 * piece of one) ever reached a message, it is replaced before anything is written.
 */
export class KnownSecrets {
  readonly #values = new Set<string>();
  /** Pieces shorter than this are too common to scrub without destroying ordinary text. */
  static readonly MIN_PIECE = 8;

  add(value: Secret | string): void {
    const raw = typeof value === 'string' ? value : value.reveal();
    if (raw.length >= 4) this.#values.add(raw);
    // Multi-line values (PEM bodies) leak line by line too.
    for (const line of raw.split(/\r?\n/)) {
      const t = line.trim();
      if (t.length >= KnownSecrets.MIN_PIECE && !/^-----(BEGIN|END) /.test(t)) this.#values.add(t);
    }
  }

  get size(): number {
    return this.#values.size;
  }

  /**
   * Replaces every known value, and every run of text containing an 8-character piece of
   * one, with `[redacted]`. One pass over the text with a set of pieces, so it stays linear
   * in the size of the report however many secrets a run read.
   */
  scrub(text: string): string {
    if (this.#values.size === 0 || text.length < KnownSecrets.MIN_PIECE) return text;
    const pieces = this.#pieces();
    const n = KnownSecrets.MIN_PIECE;
    let out = '';
    let last = 0; // end of text already copied
    let redactTo = -1; // end of the current redacted span
    let spanStart = -1;
    for (let i = 0; i + n <= text.length; i++) {
      if (!pieces.has(text.slice(i, i + n))) continue;
      if (i > redactTo) {
        if (spanStart >= 0) {
          out += text.slice(last, spanStart) + '[redacted]';
          last = redactTo;
        }
        spanStart = i;
      }
      redactTo = i + n;
    }
    if (spanStart < 0) return text;
    out += text.slice(last, spanStart) + '[redacted]' + text.slice(redactTo);
    return out;
  }

  /**
   * A copy of a JSON-like value (a finding's evidence) with every string scrubbed, keys
   * included. Scrubbing values rather than serialised JSON keeps escapes intact.
   */
  scrubDeep<T>(value: T): T {
    if (this.#values.size === 0) return value;
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return this.scrub(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v !== null && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[this.scrub(k)] = walk(x);
        return out;
      }
      return v;
    };
    return walk(value) as T;
  }

  #pieceCache: Set<string> | undefined;
  #pieceCacheSize = -1;

  #pieces(): Set<string> {
    if (this.#pieceCache && this.#pieceCacheSize === this.#values.size) return this.#pieceCache;
    const set = new Set<string>();
    const n = KnownSecrets.MIN_PIECE;
    for (const v of this.#values) {
      // Multi-line values are covered by their lines (added separately).
      if (v.length < n || v.includes('\n')) continue;
      // Pieces that lie wholly inside a public DER header (every ed25519 PKCS#8 key starts
      // the same) are not secret, and scrubbing them would mangle public keys in reports.
      const prefix = PUBLIC_KEY_PREFIXES.find((p) => v.startsWith(p));
      const from = prefix ? Math.max(0, prefix.length - n + 1) : 0;
      for (let i = from; i + n <= v.length; i++) set.add(v.slice(i, i + n));
    }
    this.#pieceCache = set;
    this.#pieceCacheSize = this.#values.size;
    return set;
  }
}

/**
 * The process's one set of known secrets. Every source registers what it reads here and
 * every output scrubs with it — checks, logs, report files, the daemon's HTTP answers — in
 * every mode, so a value read by one run (or one check) is scrubbed from everything the
 * process writes afterwards. Tests may build their own {@link KnownSecrets}.
 */
export const processSecrets: KnownSecrets = new KnownSecrets();

/** Base64 of DER headers that every key of a type shares (PKCS#8 ed25519). Public constants. */
const PUBLIC_KEY_PREFIXES = ['MC4CAQAwBQYDK2VwBCIEI'];
