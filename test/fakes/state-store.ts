/** A StateStore in memory. Values round-trip through JSON, as the file and table stores do. */
import type { StateRead, StateStore } from '../../src/core/sources';
import { Failures } from './failures';

export class MemoryStateStore implements StateStore {
  readonly #data = new Map<string, string>();
  readonly failures = new Failures<'get' | 'set'>('state');

  async read<T>(key: string): Promise<StateRead<T>> {
    this.failures.check('get');
    const v = this.#data.get(key);
    if (v === undefined) return { status: 'absent' };
    try {
      return { status: 'ok', value: JSON.parse(v) as T };
    } catch {
      return { status: 'unreadable', reason: `${key} is not valid JSON` };
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    const r = await this.read<T>(key);
    return r.status === 'ok' ? r.value : undefined;
  }

  async set<T>(key: string, value: T): Promise<void> {
    this.failures.check('set');
    this.#data.set(key, JSON.stringify(value));
  }

  /** Stores raw text under a key, e.g. a cut-short file. */
  setRaw(key: string, text: string): void {
    this.#data.set(key, text);
  }

  delete(key: string): void {
    this.#data.delete(key);
  }

  keys(): string[] {
    return [...this.#data.keys()];
  }

  /** Everything stored, as text (the canary checks no secret reached it). */
  dump(): string {
    return [...this.#data.entries()].map(([k, v]) => `${k}=${v}`).join('\n');
  }
}
