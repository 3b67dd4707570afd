/**
 * What a Vault secrets engine (KV, transit) sees of a request and how it answers, kept apart
 * from HTTP so that the engines stay small. The server turns a {@link VaultReply} into the
 * response envelope of wire-protocols.md §D.1.
 */
import type { JsonObject } from './aws-json';

export interface VaultRequest {
  /** GET, POST, PUT, PATCH, DELETE; LIST is folded into `list`. */
  method: string;
  /** Path below the mount, without leading or trailing slashes. */
  path: string;
  /** LIST, or GET with `?list=true`. */
  list: boolean;
  query: URLSearchParams;
  body: JsonObject;
  contentType: string;
}

export type VaultReply =
  /** A logical response: the full envelope, status 200 unless given (a soft-deleted read is a 404 with data). */
  | { kind: 'envelope'; status?: number; data: unknown; warnings?: string[]; leaseDuration?: number }
  /** `{"errors": [...]}`; an empty list is how Vault says "not found". */
  | { kind: 'errors'; status: number; errors: string[] }
  /** 204 without a body. */
  | { kind: 'empty' };

export const notFound = (): VaultReply => ({ kind: 'errors', status: 404, errors: [] });
export const badRequest = (message: string): VaultReply => ({ kind: 'errors', status: 400, errors: [message] });
export const ok = (data: unknown, status?: number): VaultReply => ({ kind: 'envelope', status, data });
export const empty = (): VaultReply => ({ kind: 'empty' });

/** Go's multierror text, which Vault 1.x puts in its error strings. */
export function multierror(...messages: string[]): string {
  const head = messages.length === 1 ? '1 error occurred:' : `${messages.length} errors occurred:`;
  return `${head}\n${messages.map((m) => `\t* ${m}`).join('\n')}\n\n`;
}

export const unsupported = (): VaultReply => ({ kind: 'errors', status: 405, errors: [multierror('unsupported operation')] });

export interface VaultEngine {
  /** `kv` or `transit`; reported as `mount_type`. */
  readonly type: string;
  handle(req: VaultRequest): VaultReply;
  /** Short operation name for fault injection and request counts, e.g. `kv-read`. */
  operation(req: Pick<VaultRequest, 'method' | 'path' | 'list'>): string;
}

export function isoTime(d: Date): string {
  return d.toISOString();
}
