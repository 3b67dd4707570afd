/** A StateStore in memory. Values round-trip through JSON, as the file and table stores do. */
import type { StateStore } from '../../src/core/sources';
import { Failures } from './failures';

export class MemoryStateStore implements StateStore {
  readonly #data = new Map<string, string>();
  readonly failures = new Failures<'get' | 'set'>('state');

  async get<T>(key: string): Promise<T | undefined> {
    this.failures.check('get');
    const v = this.#data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  async set<T>(key: string, value: T): Promise<void> {
    this.failures.check('set');
    this.#data.set(key, JSON.stringify(value));
  }

  keys(): string[] {
    return [...this.#data.keys()];
  }

  /** Everything stored, as text (the canary checks no secret reached it). */
  dump(): string {
    return [...this.#data.entries()].map(([k, v]) => `${k}=${v}`).join('\n');
  }
}
