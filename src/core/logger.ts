import pino, { type Logger } from 'pino';
import { processSecrets, type KnownSecrets } from './secret';

export type { Logger } from 'pino';

/** Field paths whose values pino replaces before serialising, wherever they appear. */
export const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'secret', '*.secret', 'value', '*.value',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'headers["x-vault-token"]', '*.headers["x-vault-token"]', 'privateKey', '*.privateKey',
  'apiKey', '*.apiKey', 'api_key', '*.api_key', 'url', '*.url',
];

/**
 * Structured logs to stderr (stdout carries the command's own output). Besides pino's
 * path redaction, every serialised line goes through the known-secret scrubber: the
 * process's one ({@link processSecrets}) unless a test gives its own.
 */
export function createLogger(opts: { level?: string; knownSecrets?: KnownSecrets; destination?: NodeJS.WritableStream } = {}): Logger {
  const known = opts.knownSecrets ?? processSecrets;
  return pino(
    {
      name: 'aegis-audit',
      level: opts.level ?? process.env.AEGIS_AUDIT_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
      hooks: { streamWrite: (s: string) => known.scrub(s) },
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 2, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
