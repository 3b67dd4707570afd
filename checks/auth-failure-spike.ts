/**
 * Authentication failures at the gateway and identity service, in the current window,
 * against an absolute limit and a robust baseline of the windows before it (median +
 * k·MAD, which one noisy window cannot drag up the way a mean and standard deviation
 * would). Counts come from the services' `auth_failure` log events, which also name the
 * top client sources, or from Prometheus' `aegis_auth_failures_total` when no logs are
 * configured. Client addresses are evidence only, never metric labels.
 */
import { z } from 'zod';
import { defineCheck, type CheckContext } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import { duration, formatDuration } from '../src/core/duration';
import { AuditError, ErrorCodes } from '../src/core/errors';
import { untrusted } from '../src/core/untrusted';

const options = z.object({
  /** Length of the current window, and of each baseline window. */
  window: duration().default(15 * 60_000),
  /** Absolute limit of failures in the current window. */
  max_failures: z.number().int().min(0).default(50),
  /** How many earlier windows make the baseline. */
  baseline_windows: z.number().int().min(3).max(96).default(12),
  /** Multiplier of the median absolute deviation. */
  k: z.number().min(0).default(5),
  /** The baseline threshold is never below this, so a quiet history does not turn 3 failures into a spike. */
  baseline_floor: z.number().min(0).default(10),
  /** Services whose auth failures count. */
  services: z.array(z.string().min(1)).min(1).default(['gateway', 'identity']),
  top_clients: z.number().int().min(1).max(50).default(5),
  /** `auto` reads logs when a configured service has them (they name the clients), else Prometheus. */
  from: z.enum(['auto', 'logs', 'prometheus']).default('auto'),
  metric: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/).default('aegis_auth_failures_total'),
});
type Options = z.output<typeof options>;
type Ctx = CheckContext<'overLimit' | 'overBaseline', Options>;

interface Counts {
  /** [current, previous, previous-but-one, ...] */
  windows: number[];
  topClients: { client: string; count: number }[];
  from: 'logs' | 'prometheus';
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** median + k·MAD of the baseline windows, floored. */
export function baselineThreshold(baseline: readonly number[], k: number, floor: number): { median: number; mad: number; threshold: number } {
  const m = median(baseline);
  const mad = median(baseline.map((x) => Math.abs(x - m)));
  return { median: m, mad, threshold: Math.max(m + k * mad, floor) };
}

async function fromLogs(ctx: Ctx, services: string[]): Promise<Counts> {
  const logs = ctx.source('logs');
  const w = ctx.options.window;
  const n = ctx.options.baseline_windows;
  const now = ctx.now().getTime();
  const windows = new Array<number>(n + 1).fill(0);
  const clients = new Map<string, number>();
  const since = new Date(now - (n + 1) * w);
  for (const service of services) {
    for await (const ev of logs.events(service, { since, until: new Date(now), event: 'auth_failure', signal: ctx.signal })) {
      const age = now - ev.ts.getTime();
      if (age < 0) continue;
      const i = Math.floor(age / w);
      if (i > n) continue;
      windows[i]++;
      if (i === 0) {
        const c = typeof ev.fields.client === 'string' && ev.fields.client ? untrusted.text(ev.fields.client, 64) : '(unknown)';
        clients.set(c, (clients.get(c) ?? 0) + 1);
      }
    }
  }
  const topClients = [...clients.entries()]
    .map(([client, count]) => ({ client, count }))
    .sort((a, b) => b.count - a.count || a.client.localeCompare(b.client))
    .slice(0, ctx.options.top_clients);
  return { windows, topClients, from: 'logs' };
}

async function fromPrometheus(ctx: Ctx): Promise<Counts> {
  const prom = ctx.source('prometheus');
  const w = ctx.options.window;
  const range = `${Math.max(1, Math.round(w / 1000))}s`;
  const promql = `sum(increase(${ctx.options.metric}[${range}]))`;
  const now = ctx.now().getTime();
  const windows: number[] = [];
  for (let i = 0; i <= ctx.options.baseline_windows; i++) {
    const samples = await prom.query(promql, { time: new Date(now - i * w), signal: ctx.signal });
    // No series yet (nothing failed since the counter appeared) is zero, not an error.
    const v = samples.reduce((sum, s) => sum + (Number.isFinite(s.value) ? s.value : 0), 0);
    windows.push(Math.round(v));
  }
  return { windows, topClients: [], from: 'prometheus' };
}

export default defineCheck({
  meta: {
    id: 'auth-failure-spike',
    title: 'Authentication failures stay under the limit and the recent baseline',
    description:
      'Counts auth_failure events of the gateway and identity service in the current window and compares them with an absolute limit and with median + k·MAD of the windows before. A spike means credential stuffing, a leaked or rotated secret, or a broken client.',
    severity: 'high',
    sources: [['logs', 'prometheus']],
    schedule: '*/5 * * * *',
    checklist: ['auth-failure-alerting'],
    runbook: 'docs/runbooks/auth-failure-spike.md',
    remediation:
      'Look at the top client sources: block or rate-limit an abusive source, or find the client or service whose credential stopped working (a rotation that missed it, INTERNAL_SECRET drift).',
  },
  messages: {
    overLimit: '{{count}} auth failures in the last {{window}} exceed the limit of {{limit}}{{also}}; top sources: {{top}}.',
    overBaseline: '{{count}} auth failures in the last {{window}} exceed the baseline threshold of {{threshold}} (median {{median}} + {{k}}·MAD {{mad}} over {{windows}} earlier windows); top sources: {{top}}.',
  },
  options,
  async run(ctx) {
    const o = ctx.options;
    let counts: Counts;
    const logs = ctx.sources.logs;
    const logServices = logs ? o.services.filter((s) => logs.services().includes(s)) : [];
    const useLogs = o.from === 'logs' || (o.from === 'auto' && (logServices.length > 0 || !ctx.sources.prometheus));
    if (useLogs) {
      if (logServices.length === 0) {
        const alt = o.from === 'auto' ? ' and sources.prometheus is not configured' : '';
        throw new AuditError(ErrorCodes.SOURCE_NOT_CONFIGURED, `no log location is configured for ${o.services.join(', ')} (sources.logs)${alt}`, { source: 'logs' });
      }
      counts = await fromLogs(ctx, logServices);
    } else {
      counts = await fromPrometheus(ctx);
    }
    const [current, ...baseline] = counts.windows;
    const b = baselineThreshold(baseline, o.k, o.baseline_floor);
    ctx.measure('auth_failures', current, `Auth failures (${o.services.join(', ')}) in the current ${formatDuration(o.window)} window`);
    ctx.measure('auth_failures_baseline', b.threshold, `Baseline threshold of auth failures per ${formatDuration(o.window)} window: max(median + k*MAD of earlier windows, floor)`);

    const overLimit = current > o.max_failures;
    const overBaseline = current > b.threshold;
    if (!overLimit && !overBaseline) return;
    const top =
      counts.from === 'prometheus'
        ? 'not available from Prometheus'
        : counts.topClients.map((c) => `${c.client} (${c.count})`).join(', ') || 'none';
    const round = (x: number) => Math.round(x * 10) / 10;
    // One finding per window: both verdicts share the resource, so the stronger one names it.
    ctx.report({
      messageId: overLimit ? 'overLimit' : 'overBaseline',
      data: {
        count: current,
        window: formatDuration(o.window),
        limit: o.max_failures,
        also: overBaseline ? ` and the baseline threshold of ${round(b.threshold)}` : '',
        threshold: round(b.threshold),
        median: round(b.median),
        mad: round(b.mad),
        k: o.k,
        windows: baseline.length,
        top,
      },
      resource: resource({ window: 'current' }),
      evidence: {
        from: counts.from,
        services: o.services,
        failures: current,
        limit: o.max_failures,
        overLimit,
        overBaseline,
        baseline: { windows: baseline, median: b.median, mad: b.mad, k: o.k, floor: o.baseline_floor, threshold: b.threshold },
        topClients: counts.topClients,
      },
    });
  },
});
