/**
 * At start, the audit service logs how it loaded each signing key (env, the PEM-file
 * fallback, or generated in memory). The latest start of every instance must have loaded
 * both keys from env (Aegis *Secret Management*, "What to audit when reviewing a
 * deployment" 1; "Loading precedence"). The latest start counts however long ago it was, up
 * to the lookback: the first run reads the whole lookback, later runs only what was logged
 * since (checks/lib/latest-per-key.ts keeps each instance's latest start in state).
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { duration, formatDuration } from '../src/core/duration';
import { AuditError, ErrorCodes, badData } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { SigningKeyName } from '../src/core/sources';
import { latestPerKey, type KeptEvent } from './lib/latest-per-key';
import { untrusted } from '../src/core/untrusted';
import { stringField } from './lib/payload';

const EVENT = 'signing_key_loaded';
const KEY_NAMES = ['receipt', 'root'] as const;
/** The values `source` may show: anything else is hostile text, never quoted. */
const SOURCES = ['env', 'file', 'generated'] as const;
/** Instance names come from log lines: messages quote at most this much (resources up to untrusted.id's bound). */
const MAX_INSTANCE_IN_MESSAGE = 64;

/** A signing_key_loaded event as kept between runs: which key, how, when, from where. */
interface Load extends KeptEvent {
  key: SigningKeyName;
  /** `env`, `file`, `generated`, or "unrecognised value, N characters" (untrusted.oneOf): never the line's text. */
  source: string;
  origin: string;
}

/** One start of one instance: the key loads it logged, by key. */
interface Start {
  at: Date;
  loads: Map<SigningKeyName, Load>;
}

function isKeyName(v: string | undefined): v is SigningKeyName {
  return v === 'receipt' || v === 'root';
}

function isLoad(v: unknown): v is Load {
  const l = v as Partial<Load> | undefined;
  return !!l && Number.isFinite(l.ts) && isKeyName(l.key) && typeof l.source === 'string' && typeof l.origin === 'string';
}

/**
 * The index where the latest start begins in an instance's loads (time order). A start logs
 * each key once; so a new start begins when a key already logged in the current one appears
 * again, or when more than `gapMs` passed since the current start began.
 */
function latestStartFrom(loads: readonly Load[], gapMs: number): number {
  let from = -1;
  let seen = new Set<SigningKeyName>();
  for (let i = 0; i < loads.length; i++) {
    const l = loads[i];
    if (from < 0 || seen.has(l.key) || l.ts - loads[from].ts > gapMs) {
      from = i;
      seen = new Set();
    }
    seen.add(l.key);
  }
  return Math.max(0, from);
}

function startOf(loads: readonly Load[]): Start {
  const loadMap = new Map<SigningKeyName, Load>();
  for (const l of loads) loadMap.set(l.key, l);
  return { at: new Date(loads[0].ts), loads: loadMap };
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
    // A generated or fallback signing key signs receipts from its first request: page at once.
    pagesOnFirstFailure: true,
    checklist: ['class1-secrets-from-env'],
    runbook: 'docs/runbooks/signing-key-source.md',
    remediation:
      'Set RECEIPT_SIGNING_PRIVATE_KEY and ROOT_SIGNING_PRIVATE_KEY in the audit service environment (the SSM deploy parameters) and restart it; then remove the PEM files from the volume.',
  },
  messages: {
    fileFallback: 'Instance {{instance}} loaded the {{key}} signing key from the PEM file fallback at its latest start ({{at}}), not from env.',
    generated:
      'Instance {{instance}} generated the {{key}} signing key in memory at its latest start ({{at}}): what it signs is not signed with the long-lived key.',
    unknownSource: 'Instance {{instance}} loaded the {{key}} signing key from an unrecognised source ({{source}}) at its latest start ({{at}}).',
    notLogged: 'Instance {{instance}} logged no load of the {{key}} signing key at its latest start ({{at}}).',
  },
  options: z.object({
    /** The service whose logs carry the signing_key_loaded events. */
    service: z.string().min(1).default('audit'),
    /** How far back the latest start may be; null = the log source's lookback (sources.logs.lookback). */
    lookback: duration().nullable().default(null),
    /** Renamed: the latest start is found however long ago, up to `lookback`. */
    window: z.never({ error: 'renamed to "lookback" (the latest start is looked for however long ago, up to it)' }).optional(),
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
    const lookbackMs = ctx.options.lookback ?? logs.lookbackMs;
    const latest = await latestPerKey<Load>(ctx, logs, {
      name: 'signing-key-source:starts',
      service,
      event: EVENT,
      lookbackMs,
      // `kept: 'gated'`: what is kept went through the gate for deployment text (older state held raw text).
      params: { startGap, kept: 'gated' },
      keyOf: (ev) => (ev.fields.event === EVENT ? untrusted.id(stringField(ev.fields, 'instance') ?? '(unnamed)') : undefined),
      keep: (ev) => {
        const key = stringField(ev.fields, 'key');
        if (!isKeyName(key)) return undefined;
        return { ts: ev.ts.getTime(), key, source: untrusted.oneOf(stringField(ev.fields, 'source'), SOURCES), origin: untrusted.text(ev.origin, 256) };
      },
      isKept: isLoad,
      latestFrom: (loads) => latestStartFrom(loads, startGap),
    });
    if (latest.byKey.size === 0) {
      const setting = ctx.options.lookback === null ? 'sources.logs.lookback' : 'checks.signing-key-source.options.lookback';
      throw badData(
        'logs',
        `service ${service}`,
        `no ${EVENT} event in the last ${formatDuration(lookbackMs)} (${setting}), so no start of the ${service} service can be judged; ` +
          `if it has run longer than that without a restart, widen ${setting} to cover its last start`,
      );
    }

    for (const [instance, loads] of latest.byKey) {
      const start = startOf(loads);
      const at = start.at.toISOString();
      // `instance` is already through the gate (untrusted.id); the message shows less of it.
      const shown = untrusted.text(instance, MAX_INSTANCE_IN_MESSAGE);
      for (const key of keys) {
        const res = resource({ instance, key });
        const load = start.loads.get(key);
        if (!load) {
          ctx.report({
            messageId: 'notLogged',
            data: { instance: shown, key, at },
            resource: res,
            evidence: { instance, key, latestStart: at, loggedKeys: [...start.loads.keys()] },
            severity: 'high',
          });
          continue;
        }
        const evidence = { instance, key, source: load.source, loggedAt: new Date(load.ts).toISOString(), origin: load.origin };
        if (load.source === 'env') continue;
        if (load.source === 'file') ctx.report({ messageId: 'fileFallback', data: { instance: shown, key, at }, resource: res, evidence, severity: 'high' });
        else if (load.source === 'generated')
          ctx.report({ messageId: 'generated', data: { instance: shown, key, at }, resource: res, evidence, severity: 'critical' });
        else ctx.report({ messageId: 'unknownSource', data: { instance: shown, key, at, source: load.source }, resource: res, evidence, severity: 'high' });
      }
    }
    ctx.logger.debug({ location: latest.location, resumed: latest.resumed, eventsRead: latest.eventsRead }, 'Latest starts read');
    ctx.measure('signing_key_instances', latest.byKey.size, 'Audit service instances whose latest start was judged');
    ctx.measure('signing_key_events_read', latest.eventsRead, 'signing_key_loaded events read this run: the whole lookback on a first run, then only those logged since');
  },
});
