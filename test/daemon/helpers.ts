import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { z } from 'zod';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { parseConfig, type LoadedConfig } from '../../src/config/load';
import { buildRegistry, type Registry } from '../../src/core/registry';
import type { Severity } from '../../src/core/types';
import type { SourceName } from '../../src/core/sources';

/** A test-only check whose behaviour the test controls. */
export function stubCheck(
  id: string,
  run: (ctx: { report: (resource: string) => void; measure: (n: string, v: number) => void }) => Promise<void>,
  opts: { severity?: Severity; sources?: SourceName[]; schedule?: string } = {},
): AnyCheck {
  return defineCheck({
    meta: {
      id,
      title: `Stub check ${id} passes when told to`,
      description: 'A check used only by the daemon tests.',
      severity: opts.severity ?? 'critical',
      sources: opts.sources ?? [],
      schedule: opts.schedule ?? '0 0 1 1 *',
      checklist: [],
      runbook: `docs/runbooks/${id}.md`,
      remediation: 'Nothing to remediate: this is a test check.',
    },
    messages: { bad: 'Resource {{r}} is bad.' },
    options: z.object({}),
    async run(ctx) {
      await run({
        report: (r) => ctx.report({ messageId: 'bad', data: { r }, resource: `thing=${r}` }),
        measure: (n, v) => ctx.measure(n, v, `Figure ${n} measured by the stub.`),
      });
    },
  }) as unknown as AnyCheck;
}

export function testRegistry(checks: AnyCheck[]): Registry {
  return buildRegistry(checks, 'test');
}

export function config(yaml: string, registry: Registry, file = '/tmp/aegis-daemon-test/audit.yaml'): LoadedConfig {
  return parseConfig(yaml, file, { registry, env: {} });
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function get(address: string, path: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, headers: { ...headers, connection: 'close' }, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A series `name{a="x",b="y"}` as its name and labels. */
function parseSeries(series: string): { name: string; labels: Map<string, string> } {
  const brace = series.indexOf('{');
  if (brace < 0) return { name: series, labels: new Map() };
  const labels = new Map<string, string>();
  for (const m of series.slice(brace + 1, series.lastIndexOf('}')).matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels.set(m[1], m[2]);
  return { name: series.slice(0, brace), labels };
}

/**
 * A sample of a Prometheus text exposition, or undefined when the series is absent. Labels
 * match as a set, in any order. Every aegis_compliance_* series carries `deployment`: a query
 * that leaves it out matches the series of any deployment, and must then match only one.
 */
export function sample(exposition: string, series: string): number | undefined {
  const want = parseSeries(series);
  const found: number[] = [];
  for (const line of exposition.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    const got = parseSeries(line.slice(0, i));
    if (got.name !== want.name) continue;
    if (!want.labels.has('deployment')) got.labels.delete('deployment');
    if (got.labels.size !== want.labels.size || [...want.labels].some(([k, v]) => got.labels.get(k) !== v)) continue;
    found.push(Number(line.slice(i + 1)));
  }
  if (found.length > 1) throw new Error(`${series} matches ${found.length} series (name the deployment)`);
  return found[0];
}

/**
 * Polls until `fn` returns a truthy value; bounded. `what` may be a function: it is called on
 * timeout, so the error can say what was seen by then (counts, a child's exit status and output).
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string | (() => string), timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A forked process's state for a wait that timed out: running or its exit status, and the end
 * of its output (stdout and stderr apart, or one interleaved output when `stderr` is omitted).
 */
export function childStatus(name: string, child: ChildProcess, stdout: () => string, stderr?: () => string, tailChars = 2_000): string {
  const tail = (t: string) => (t.length > tailChars ? `…${t.slice(-tailChars)}` : t) || '(none)';
  const state = child.exitCode !== null || child.signalCode !== null ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `running (pid ${child.pid})`;
  return stderr ? `${name} ${state}\n  stdout: ${tail(stdout())}\n  stderr: ${tail(stderr())}` : `${name} ${state}; output:\n${tail(stdout())}`;
}
