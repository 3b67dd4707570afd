/**
 * At start, the audit service logs how it loaded each signing key (env, the PEM-file
 * fallback, or generated in memory). The latest start of every instance must have loaded
 * both keys from env (seed 004, "What to audit" 1; "Loading precedence").
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { AuditError, ErrorCodes, badData } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { LogEvent, SigningKeyName } from '../src/core/sources';
import { quoteUntrusted, stringField } from './lib/payload';

const EVENT = 'signing_key_loaded';
const KEY_NAMES = ['receipt', 'root'] as const;
/** Instance names come from log lines: messages quote at most this much (resources keep them whole). */
const MAX_INSTANCE_IN_MESSAGE = 64;

interface Load {
  source: string;
  ts: Date;
  origin: string;
}

/** One start of one instance: the key loads it logged, by key. */
interface Start {
  at: Date;
  last: Date;
  loads: Map<SigningKeyName, Load>;
}

function isKeyName(v: string | undefined): v is SigningKeyName {
  return v === 'receipt' || v === 'root';
}

/**
 * The latest start of an instance, from its events in time order. A start logs each key
 * once; so a new start begins when a key already logged in the current one appears again,
 * or when more than `gapMs` passed since the current start began.
 */
function latestStart(events: readonly LogEvent[], gapMs: number): Start | undefined {
  let cur: Start | undefined;
  for (const ev of events) {
    const key = stringField(ev.fields, 'key');
    if (!isKeyName(key)) continue;
    if (!cur || cur.loads.has(key) || ev.ts.getTime() - cur.at.getTime() > gapMs) {
      cur = { at: ev.ts, last: ev.ts, loads: new Map() };
    }
    cur.loads.set(key, { source: stringField(ev.fields, 'source') ?? '(missing)', ts: ev.ts, origin: ev.origin });
    cur.last = ev.ts;
  }
  return cur;
}

export default defineCheck({
  meta: {
    id: 'signing-key-source',
    title: 'Every audit instance loaded both signing keys from env at its latest start',
    description:
      'Reads the signing_key_loaded events the audit service logs at start. A pass proves the latest start of every instance loaded the receipt and root keys from env — not from the PEM file on disk, and not generated in memory, which would sign receipts with a key nobody can verify later.',
    // A key generated in memory is critical; the PEM fallback and gaps in the record are high.
    severity: 'critical',
    sources: ['logs'],
    schedule: '*/10 * * * *',
    checklist: ['class1-secrets-from-env'],
    runbook: 'docs/runbooks/signing-key-source.md',
    remediation:
      'Set RECEIPT_SIGNING_PRIVATE_KEY and ROOT_SIGNING_PRIVATE_KEY in the audit service environment (the SSM deploy parameters) and restart it; then remove the PEM files from the volume.',
  },
  messages: {
    fileFallback: 'Instance {{instance}} loaded the {{key}} signing key from the PEM file fallback at its latest start ({{at}}), not from env.',
    generated:
      'Instance {{instance}} generated the {{key}} signing key in memory at its latest start ({{at}}): what it signs is not signed with the long-lived key.',
    unknownSource: 'Instance {{instance}} loaded the {{key}} signing key from an unrecognised source "{{source}}" at its latest start ({{at}}).',
    notLogged: 'Instance {{instance}} logged no load of the {{key}} signing key at its latest start ({{at}}).',
  },
  options: z.object({
    /** The service whose logs carry the signing_key_loaded events. */
    service: z.string().min(1).default('audit'),
    /** How far back to look; null = the log source's window (sources.logs.window). */
    window: duration().nullable().default(null),
    /** Events of one start further apart than this belong to different starts. */
    startGap: duration().default(5 * 60_000),
    /** The keys every start must log. */
    keys: z.array(z.enum(KEY_NAMES)).min(1).default([...KEY_NAMES]),
  }),
  async run(ctx) {
    const logs = ctx.source('logs');
    const { service, startGap, keys } = ctx.options;
    if (!logs.services().includes(service)) {
      throw new AuditError(
        ErrorCodes.CONFIG,
        `no log location is configured for service '${service}' (sources.logs.files.${service} or sources.logs.cloudwatch.groups.${service})`,
      );
    }
    const windowMs = ctx.options.window ?? logs.windowMs;
    const since = new Date(ctx.now().getTime() - windowMs);

    const byInstance = new Map<string, LogEvent[]>();
    let total = 0;
    for await (const ev of logs.events(service, { since, event: EVENT, signal: ctx.signal })) {
      if (ctx.signal.aborted) return;
      if (ev.fields.event !== EVENT) continue;
      total++;
      const instance = stringField(ev.fields, 'instance') ?? '(unnamed)';
      let list = byInstance.get(instance);
      if (!list) byInstance.set(instance, (list = []));
      list.push(ev);
    }
    if (total === 0) {
      throw badData(
        'logs',
        `service ${service}`,
        `no ${EVENT} events in the last ${formatDuration(windowMs)}, so no start of the audit service can be judged; ` +
          `widen the window (checks.signing-key-source.options.window, or sources.logs.window) to cover its last restart`,
      );
    }

    for (const [instance, events] of [...byInstance].sort(([a], [b]) => a.localeCompare(b))) {
      events.sort((a, b) => a.ts.getTime() - b.ts.getTime());
      const start = latestStart(events, startGap);
      const at = (start?.at ?? events[events.length - 1].ts).toISOString();
      const shown = quoteUntrusted(instance, MAX_INSTANCE_IN_MESSAGE);
      for (const key of keys) {
        const res = resource({ instance, key });
        const load = start?.loads.get(key);
        if (!load) {
          ctx.report({
            messageId: 'notLogged',
            data: { instance: shown, key, at },
            resource: res,
            evidence: { instance, key, latestStart: at, loggedKeys: [...(start?.loads.keys() ?? [])], events: events.length },
            severity: 'high',
          });
          continue;
        }
        const evidence = { instance, key, source: quoteUntrusted(load.source, 24), loggedAt: load.ts.toISOString(), origin: load.origin };
        if (load.source === 'env') continue;
        if (load.source === 'file') ctx.report({ messageId: 'fileFallback', data: { instance: shown, key, at }, resource: res, evidence, severity: 'high' });
        else if (load.source === 'generated')
          ctx.report({ messageId: 'generated', data: { instance: shown, key, at }, resource: res, evidence, severity: 'critical' });
        else ctx.report({ messageId: 'unknownSource', data: { instance: shown, key, at, source: quoteUntrusted(load.source, 24) }, resource: res, evidence, severity: 'high' });
      }
    }
    ctx.measure('signing_key_instances', byInstance.size, 'Audit service instances whose latest start was judged');
  },
});
