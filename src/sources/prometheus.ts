/**
 * Prometheus HTTP API: instant queries (`GET /api/v1/query`). Plain node:http with our own
 * agent, so the request is bounded by the configured timeout and close() releases sockets.
 * Throttling (429) and gateway errors (502, 503, 504) are retried up to max_attempts.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { PrometheusSample, PrometheusSource } from '../core/sources';
import { sourceUnavailable } from '../core/errors';
import type { PrometheusConfig } from '../config/schema';
import { wrapSourceError } from './errors';

const SOURCE = 'prometheus';
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

class HttpStatusError extends Error {
  readonly response: { statusCode: number };
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpStatusError';
    this.response = { statusCode: status };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Prometheus renders sample values as strings ("1", "NaN", "+Inf"). */
function sampleValue(v: unknown): number | undefined {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[1] !== 'string') return undefined;
  const s = v[1];
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  const n = Number(s);
  return s === 'NaN' || !Number.isNaN(n) ? n : undefined;
}

/** Parses the API's JSON answer into samples; throws a `malformed_response` error on anything else. */
export function parseQueryResponse(body: unknown, what: string): PrometheusSample[] {
  const bad = (detail: string) => sourceUnavailable(SOURCE, 'malformed_response', `${what}: malformed response: ${detail}`);
  if (!isObject(body) || body.status !== 'success' || !isObject(body.data)) throw bad('expected {"status":"success","data":…}');
  const { resultType, result } = body.data;
  if (resultType === 'scalar') {
    const v = sampleValue(result);
    if (v === undefined) throw bad('scalar result is not [time, "value"]');
    return [{ labels: {}, value: v }];
  }
  if (resultType !== 'vector' || !Array.isArray(result)) throw bad(`expected a vector result, got ${String(resultType)}`);
  return result.map((r: unknown) => {
    if (!isObject(r) || !isObject(r.metric)) throw bad('vector sample without metric labels');
    const v = sampleValue(r.value);
    if (v === undefined) throw bad('vector sample value is not [time, "value"]');
    const labels: Record<string, string> = {};
    for (const [k, lv] of Object.entries(r.metric)) if (typeof lv === 'string') labels[k] = lv;
    return { labels, value: v };
  });
}

export class HttpPrometheusSource implements PrometheusSource {
  readonly #base: URL;
  readonly #timeout: number;
  readonly #attempts: number;
  readonly #agent: HttpAgent | HttpsAgent;

  constructor(cfg: PrometheusConfig) {
    this.#base = new URL(cfg.url.endsWith('/') ? cfg.url : cfg.url + '/');
    this.#timeout = cfg.timeout;
    this.#attempts = cfg.max_attempts;
    this.#agent = this.#base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  async query(promql: string, opts: { time?: Date; signal?: AbortSignal } = {}): Promise<PrometheusSample[]> {
    const what = 'instant query';
    const url = new URL('api/v1/query', this.#base);
    url.searchParams.set('query', promql);
    if (opts.time) url.searchParams.set('time', (opts.time.getTime() / 1000).toFixed(3));
    for (let attempt = 1; ; attempt++) {
      try {
        const { status, text } = await this.#get(url, opts.signal);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          if (status >= 400) throw new HttpStatusError(status, `HTTP ${status}`);
          throw sourceUnavailable(SOURCE, 'malformed_response', `${what}: malformed response: not JSON`);
        }
        if (status >= 400) {
          const msg = isObject(body) && typeof body.error === 'string' ? body.error : `HTTP ${status}`;
          if (status === 400 || status === 422) throw sourceUnavailable(SOURCE, 'bad_query', `${what}: rejected: ${msg}`);
          throw new HttpStatusError(status, msg);
        }
        return parseQueryResponse(body, what);
      } catch (e) {
        const status = e instanceof HttpStatusError ? e.response.statusCode : undefined;
        if (status !== undefined && RETRYABLE_STATUS.has(status) && attempt < this.#attempts && !opts.signal?.aborted) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100 * 2 ** attempt, 2_000)));
          continue;
        }
        if (status === 429) throw sourceUnavailable(SOURCE, 'throttled', `${what}: throttled (gave up after ${attempt} attempts): ${e instanceof Error ? e.message : ''}`);
        throw wrapSourceError(SOURCE, what, e);
      }
    }
  }

  #get(url: URL, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', agent: this.#agent, headers: { accept: 'application/json' }, signal });
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no answer within ${this.#timeout} ms`), { code: 'ETIMEDOUT' }));
      }, this.#timeout);
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // Re-created here: connection errors can be AggregateErrors with an empty message.
        reject(Object.assign(new Error(e.message || (e.code ? `connect ${e.code}` : 'request failed')), { code: e.code }));
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(sourceUnavailable(SOURCE, 'malformed_response', `response larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
