/** An in-memory PrometheusSource: answers each instant query from a function of (query, time). */
import type { PrometheusSample, PrometheusSource } from '../../src/core/sources';
import { Failures } from './failures';

export class FakePrometheusSource implements PrometheusSource {
  readonly failures = new Failures<'query'>('prometheus');
  readonly queries: { promql: string; time?: Date }[] = [];

  constructor(private readonly answer: (promql: string, time: Date | undefined) => PrometheusSample[]) {}

  fail(error?: Error): this {
    this.failures.set('query', error);
    return this;
  }

  async query(promql: string, opts: { time?: Date } = {}): Promise<PrometheusSample[]> {
    this.queries.push({ promql, time: opts.time });
    this.failures.check('query');
    return this.answer(promql, opts.time);
  }
}
