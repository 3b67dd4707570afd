/**
 * Making a fake's method fail the way a real source fails: with a coded AuditError
 * (SOURCE_UNAVAILABLE by default), so tests exercise the same path as an outage.
 */
import { AuditError, sourceUnavailable } from '../../src/core/errors';

export class Failures<M extends string> {
  readonly #failing = new Map<M, () => Error>();

  constructor(private readonly source: string) {}

  /** From now on, `method` throws `error` (default: the source is unavailable). */
  set(method: M, error?: Error): void {
    this.#failing.set(method, () => error ?? sourceUnavailable(this.source, 'connection_refused', `${method}: connection refused`));
  }

  clear(method?: M): void {
    if (method) this.#failing.delete(method);
    else this.#failing.clear();
  }

  /** Throws when `method` is set to fail. */
  check(method: M): void {
    const f = this.#failing.get(method);
    if (f) throw f();
  }
}

export { AuditError };
