/**
 * Scrubbing of text that comes from outside (client errors, URLs) before anyone sees it:
 * URL credentials and query strings, bearer tokens, Vault tokens, AWS keys, PEM blocks
 * and `key=value` pairs whose key names a secret.
 */

const URL_RE = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@'"]+@)?([^\s?#'"]*)(\?[^\s#'"]*)?(#[^\s'"]*)?/gi;
const PEM_RE = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const BEARER_RE = /\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const VAULT_TOKEN_RE = /\b(hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{16,}\b/g;
const AWS_KEY_RE = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/g;
const API_KEY_RE = /\bacp_[A-Za-z0-9_-]{4,}/g;
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
    .replace(BEARER_RE, (_m, kind: string) => `${kind} [redacted]`)
    .replace(VAULT_TOKEN_RE, '[token redacted]')
    .replace(AWS_KEY_RE, '[aws key redacted]')
    .replace(API_KEY_RE, 'acp_[redacted]')
    .replace(SECRET_PAIR_RE, (_m, key: string, sep: string) => `${key}${sep}[redacted]`);
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
