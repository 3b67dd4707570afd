/**
 * Scrubbing of text that comes from outside (client errors, URLs) before anyone sees it:
 * URL credentials and query strings, bearer tokens, Vault tokens, AWS keys, PEM blocks,
 * JWTs, `acp_` API keys and `key=value` pairs whose key names a secret; and, for text read
 * from the audited deployment (see untrusted.ts), long random-looking tokens.
 */

const URL_RE = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@'"]+@)?([^\s?#'"]*)(\?[^\s#'"]*)?(#[^\s'"]*)?/gi;
const PEM_RE = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const BEARER_RE = /\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const VAULT_TOKEN_RE = /\b(hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{16,}\b/g;
const AWS_KEY_RE = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/g;
const API_KEY_RE = /\bacp_[A-Za-z0-9_-]{4,}/g;
/** header.payload.signature, both JSON parts base64url of an object (`eyJ` = `{"`). */
const JWT_RE = /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?/g;
const SECRET_PAIR_RE =
  /\b([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|credential|authorization)[A-Za-z0-9_.-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi;

export function scrubUrl(url: string): string {
  return url.replace(URL_RE, (_m, scheme: string, creds: string | undefined, rest: string, query?: string) => {
    return scheme + (creds ? '***@' : '') + rest + (query ? '?…' : '');
  });
}

/** Scrubs free text (an error message, a log line) of anything that looks like a credential. */
export function scrubText(text: string): string {
  return scrubUrl(text)
    .replace(PEM_RE, '[pem redacted]')
    .replace(JWT_RE, '[jwt redacted]')
    .replace(BEARER_RE, (_m, kind: string) => `${kind} [redacted]`)
    .replace(VAULT_TOKEN_RE, '[token redacted]')
    .replace(AWS_KEY_RE, '[aws key redacted]')
    .replace(API_KEY_RE, 'acp_[redacted]')
    .replace(SECRET_PAIR_RE, (_m, key: string, sep: string) => `${key}${sep}[redacted]`);
}

/** Runs of token characters long enough to be a generated secret. */
const TOKEN_RUN_RE = /[A-Za-z0-9+/=_-]{20,}/g;
/** Where names are cut into words: a pod name's segments are short, a secret's are not. */
const NAME_SEPARATORS = /[-_/.]/;
const MIN_RANDOM_SEGMENT = 12;
const MIN_RANDOM_HEX = 16;

function entropyBits(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function charClass(ch: string): 'l' | 'u' | 'd' | 'o' {
  if (ch >= 'a' && ch <= 'z') return 'l';
  if (ch >= 'A' && ch <= 'Z') return 'u';
  if (ch >= '0' && ch <= '9') return 'd';
  return 'o';
}

/**
 * Whether a separator-free segment looks generated rather than named. Generated text
 * switches between lower case, upper case and digits far more often than words do
 * (`SigningKeyLoaderV2` switches at word starts; `Tv/JyXKpG3kH9I6O` nearly every other
 * character), and hex of 16+ characters with both digits and letters is a digest or a key.
 */
function looksGenerated(seg: string): boolean {
  if (seg.length < MIN_RANDOM_SEGMENT) return false;
  if (/^[0-9a-f]+$/i.test(seg)) return seg.length >= MIN_RANDOM_HEX && /[0-9]/.test(seg) && /[a-f]/i.test(seg);
  if (entropyBits(seg) < 3.3) return false;
  const runs: { k: string; n: number }[] = [];
  for (const ch of seg) {
    const k = charClass(ch);
    const last = runs[runs.length - 1];
    if (last && last.k === k) last.n++;
    else runs.push({ k, n: 1 });
  }
  const of = (k: string) => runs.filter((r) => r.k === k);
  const lower = of('l');
  const upper = of('u');
  const digits = of('d');
  if (lower.length > 0 && upper.length > 0) {
    const meanLower = lower.reduce((a, r) => a + r.n, 0) / lower.length;
    return meanLower <= 3 && (runs.length - 1) / (seg.length - 1) >= 0.4;
  }
  if ((lower.length === 0 && upper.length === 0) || digits.length === 0) return false;
  return digits.reduce((a, r) => a + r.n, 0) / seg.length >= 0.15 && digits.length >= 3;
}

/** Whether a run of token characters is a generated secret (a key, a token, a password from a generator). */
export function isHighEntropyToken(token: string): boolean {
  const t = token.replace(/=+$/, '');
  return t.length >= 20 && t.split(NAME_SEPARATORS).some(looksGenerated);
}

/**
 * {@link scrubText} plus long random-looking tokens: what text read from the audited
 * deployment goes through before a finding may quote it. Not for our own text (run ids,
 * digests and fingerprints are random-looking on purpose).
 */
export function scrubSecretShapes(text: string): string {
  return scrubText(text).replace(TOKEN_RUN_RE, (m) => (isHighEntropyToken(m) ? '[redacted]' : m));
}

function oneLine(msg: string): string {
  const m = msg.replace(/\s+/g, ' ').trim();
  return m.length > 500 ? m.slice(0, 497) + '...' : m;
}

/** The message of any thrown value from outside our code, scrubbed, on one line and bounded in length. */
export function describeError(e: unknown): string {
  return oneLine(scrubText(errorText(e)));
}

/**
 * The words of a thrown value. Duck-typed, not `instanceof Error`: errors made by Node's core
 * modules in another realm (jest's sandbox) are not instances of this realm's Error. An
 * AggregateError (a refused connection tried on IPv4 and IPv6) has an empty message of its
 * own; its inner errors say what happened.
 */
function errorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (typeof e !== 'object' || e === null) return 'unknown error';
  const err = e as { message?: unknown; name?: unknown; code?: unknown; errors?: unknown };
  if (typeof err.message === 'string' && err.message !== '') return err.message;
  if (Array.isArray(err.errors)) {
    const inner = err.errors.map((x) => errorText(x)).filter((m) => m !== 'unknown error');
    if (inner.length > 0) return [...new Set(inner)].join('; ');
  }
  if (typeof err.code === 'string') return err.code;
  if (typeof err.name === 'string' && err.name !== '') return err.name;
  return 'unknown error';
}

/**
 * The message of one of our own coded errors: composed from already-scrubbed parts, so it
 * is not scrubbed again (which would mangle "secrets: reading env file …" into
 * "secrets: [redacted]"); only made one line and bounded.
 */
export function describeOwnError(e: Error): string {
  return oneLine(e.message || e.name);
}
