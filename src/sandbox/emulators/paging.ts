/**
 * Pagination with the real services' "best effort" behaviour, made configurable so that tests
 * exercise it: pages smaller than the client asked for, empty pages that still carry a token
 * (FilterLogEvents, DescribeParameters with filters), and an empty last page.
 *
 * Tokens are opaque base64url JSON bound to the operation, so a token from another operation
 * or a made-up one is rejected with the service's own error.
 */

export interface PagingPolicy {
  /** Cap on items per page, below the client's limit. */
  maxPageSize?: number;
  /** Every n-th page (n >= 2) of a pagination comes back empty with a token. 0/undefined = never. */
  emptyPageEvery?: number;
  /** After the last items, answer with a token once more and end on an empty page. */
  trailingEmptyPage?: boolean;
}

export interface Cursor {
  /** Index of the next item. */
  offset: number;
  /** Number of pages already served in this pagination. */
  page: number;
  /** Set on the token that leads to the trailing empty page. */
  trailing?: boolean;
  /** Sort key of the last item served, for listings resumed by position rather than offset. */
  after?: number[];
}

export function checkPolicy(policy: PagingPolicy): PagingPolicy {
  const { maxPageSize, emptyPageEvery } = policy;
  if (maxPageSize !== undefined && (!Number.isInteger(maxPageSize) || maxPageSize < 1)) {
    throw new Error(`maxPageSize must be a positive integer, got ${maxPageSize}`);
  }
  // n = 1 would make every page empty and pagination endless.
  if (emptyPageEvery !== undefined && emptyPageEvery !== 0 && (!Number.isInteger(emptyPageEvery) || emptyPageEvery < 2)) {
    throw new Error(`emptyPageEvery must be 0 or an integer >= 2, got ${emptyPageEvery}`);
  }
  return { ...policy };
}

export function encodeToken(operation: string, cursor: Cursor): string {
  const payload = { op: operation, o: cursor.offset, p: cursor.page, t: cursor.trailing ? 1 : 0, ...(cursor.after ? { a: cursor.after } : {}) };
  return Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
}

/** The cursor in a token, or undefined if the token was not made by {@link encodeToken} for `operation`. */
export function decodeToken(operation: string, token: string): Cursor | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { op, o, p, t, a } = parsed as Record<string, unknown>;
  if (op !== operation || typeof o !== 'number' || typeof p !== 'number' || !Number.isInteger(o) || o < 0) {
    return undefined;
  }
  if (a !== undefined && !(Array.isArray(a) && a.every((x) => Number.isSafeInteger(x)))) return undefined;
  return { offset: o, page: p, trailing: t === 1, ...(a !== undefined ? { after: a as number[] } : {}) };
}

export interface Page<T> {
  items: T[];
  next?: Cursor;
}

/** One page of `items` starting at `cursor` (undefined = first page), at most `limit` long. */
export function pageOf<T>(items: readonly T[], limit: number, cursor: Cursor | undefined, policy: PagingPolicy): Page<T> {
  const at: Cursor = cursor ?? { offset: 0, page: 0 };
  if (at.trailing || at.offset >= items.length) return { items: [] };
  const every = policy.emptyPageEvery ?? 0;
  if (every >= 2 && (at.page + 1) % every === 0) {
    return { items: [], next: { offset: at.offset, page: at.page + 1 } };
  }
  const size = Math.min(limit, policy.maxPageSize ?? limit);
  const end = Math.min(items.length, at.offset + size);
  const slice = items.slice(at.offset, end);
  if (end < items.length) return { items: slice, next: { offset: end, page: at.page + 1 } };
  if (policy.trailingEmptyPage) return { items: slice, next: { offset: end, page: at.page + 1, trailing: true } };
  return { items: slice };
}
