/**
 * Coded errors, created in one place. Each carries a message a user can act on; none
 * carries a secret (sources scrub client errors before wrapping them, see redact.ts).
 */

export const ErrorCodes = {
  CONFIG: 'AUDIT_ERR_CONFIG',
  PLUGIN: 'AUDIT_ERR_PLUGIN',
  SOURCE_NOT_CONFIGURED: 'AUDIT_ERR_SOURCE_NOT_CONFIGURED',
  SOURCE_UNAVAILABLE: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
  BAD_DATA: 'AUDIT_ERR_BAD_DATA',
  TIMEOUT: 'AUDIT_ERR_TIMEOUT',
  CHECK_FAILED: 'AUDIT_ERR_CHECK_CRASHED',
  USAGE: 'AUDIT_ERR_USAGE',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class AuditError extends Error {
  readonly code: ErrorCode;
  /** The source involved (postgres, logs, ssm, ...), when there is one. */
  readonly source?: string;
  /** A short machine-friendly reason for `source_errors_total{reason}` (e.g. `connection_refused`). */
  readonly reason?: string;

  constructor(code: ErrorCode, message: string, opts: { source?: string; reason?: string } = {}) {
    super(message);
    this.name = 'AuditError';
    this.code = code;
    this.source = opts.source;
    this.reason = opts.reason;
  }
}

export function configError(message: string): AuditError {
  return new AuditError(ErrorCodes.CONFIG, message);
}

export function sourceUnavailable(source: string, reason: string, message: string): AuditError {
  return new AuditError(ErrorCodes.SOURCE_UNAVAILABLE, `${source}: ${message}`, { source, reason });
}

/** Bad input from a source (a malformed PEM, a row that cannot be parsed): names what and where. */
export function badData(source: string, where: string, message: string): AuditError {
  return new AuditError(ErrorCodes.BAD_DATA, `${source}: ${where}: ${message}`, { source, reason: 'bad_data' });
}

export function isAuditError(e: unknown): e is AuditError {
  return e instanceof AuditError;
}
