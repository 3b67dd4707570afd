/**
 * Turning a client's failure into a coded, scrubbed AuditError that names the source and
 * the fault, so a check's `error` says what is wrong and never carries a credential.
 */
import { AuditError, ErrorCodes, isAuditError, sourceUnavailable } from '../core/errors';
import { describeError } from '../core/redact';

const NET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  ETIMEDOUT: 'timeout',
  ESOCKETTIMEDOUT: 'timeout',
  ECONNABORTED: 'timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ENOENT: 'not_found',
  EACCES: 'permission_denied',
  EPERM: 'permission_denied',
};

/** A short machine reason for `source_errors_total{reason}`. */
export function classify(e: unknown): string {
  const err = e as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number }; response?: { statusCode?: number } };
  if (typeof err?.code === 'string' && NET_REASONS[err.code]) return NET_REASONS[err.code];
  // Some wrappers keep only the text of a network error (the AWS SDK's retry middleware wraps a
  // non-Error value as "AWS SDK error wrapper for Error: connect ECONNREFUSED …", which happens
  // when the error comes from another realm, as under jest): read the code from the message.
  const inText = /\b(E[A-Z_]{4,})\b/.exec(String((e as Error)?.message ?? ''))?.[1];
  if (inText && NET_REASONS[inText]) return NET_REASONS[inText];
  const name = typeof err?.name === 'string' ? err.name : '';
  if (/Throttl|TooManyRequests|LimitExceeded|RequestLimitExceeded/i.test(name)) return 'throttled';
  if (/AccessDenied|Unauthorized|Forbidden/i.test(name)) return 'forbidden';
  if (/Timeout|TimeoutError|AbortError/i.test(name)) return 'timeout';
  const status = err?.$metadata?.httpStatusCode ?? err?.response?.statusCode;
  if (status === 403 || status === 401) return 'forbidden';
  if (status === 429) return 'throttled';
  if (status === 503) return 'unavailable';
  if (typeof status === 'number' && status >= 500) return 'server_error';
  if (e instanceof SyntaxError || /Deserializ|Unexpected token|JSON/i.test(name + ' ' + String((e as Error)?.message ?? ''))) return 'malformed_response';
  return 'error';
}

const REASON_TEXT: Record<string, string> = {
  connection_refused: 'connection refused',
  connection_reset: 'connection reset',
  timeout: 'timed out',
  dns: 'host not found',
  unreachable: 'host unreachable',
  forbidden: 'access denied',
  throttled: 'throttled (gave up after retries)',
  unavailable: 'service unavailable',
  server_error: 'server error',
  malformed_response: 'malformed response',
  not_found: 'not found',
  permission_denied: 'permission denied',
};

/**
 * Phrases the AWS SDK adds for its own developers ("inspect the hidden field
 * {error}.$response", its logger's prefix, the cross-realm wrapper) say nothing to an
 * operator reading why a check could not be evaluated.
 */
const CLIENT_BOILERPLATE: readonly RegExp[] = [
  /\s*Deserialization error: to see the raw response, inspect the hidden field \{error\}\.\$response on this object\.?/g,
  /@smithy\/node-http-handler - \[ERROR\]\s*/g,
  /AWS SDK error wrapper for (Error: )?/g,
];

/**
 * AWS validation errors quote the value they refused ("Value 'K-1f…' at 'instanceId' failed
 * to satisfy constraint"), and that value came from the deployment (an instance id a
 * command listed, a parameter name): the field and the constraint say enough.
 */
const ECHOED_VALUES: readonly [RegExp, string][] = [
  [/\bValue '[\s\S]*?' at '/g, "A value at '"],
  [/\bValue \[[\s\S]*?\] at '/g, "A value at '"],
];

export function withoutClientBoilerplate(text: string): string {
  const plain = CLIENT_BOILERPLATE.reduce((t, re) => t.replace(re, ''), text);
  return ECHOED_VALUES.reduce((t, [re, by]) => t.replace(re, by), plain).trim();
}

/** Wraps any failure of a source call as SOURCE_UNAVAILABLE (AuditErrors pass through). */
export function wrapSourceError(source: string, what: string, e: unknown): AuditError {
  if (isAuditError(e)) return e;
  const reason = classify(e);
  const detail = withoutClientBoilerplate(describeError(e));
  const text = REASON_TEXT[reason];
  return sourceUnavailable(source, reason, `${what}: ${text ? `${text}: ` : ''}${detail}`);
}

/**
 * Ends a long read whose check ran out of time. It throws rather than returning, so the
 * rows, pages or lines read so far are never taken for the whole answer.
 */
export function stopIfAborted(signal: AbortSignal | undefined, source: string, what: string): void {
  if (signal?.aborted) {
    throw new AuditError(ErrorCodes.TIMEOUT, `${source}: ${what}: stopped, the check ran out of time`, { source, reason: 'timeout' });
  }
}

/** Runs a source call, wrapping its failures. */
export async function guard<T>(source: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw wrapSourceError(source, what, e);
  }
}

export { AuditError, ErrorCodes };
