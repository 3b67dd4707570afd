/**
 * Staying up: 100 daemon cycles against a real Postgres whose address alternately refuses
 * connections. The daemon never dies, no rejection goes unhandled, and every cycle's
 * metrics tell the truth (source_up and check_status follow the fault). Prints RSS at
 * cycle 1 and 100.
 */
import { Client } from 'pg';
import { z } from 'zod';
import { startDaemon, type Daemon } from '../../src/daemon';
import { silentLogger } from '../../src/core/logger';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { buildRegistry } from '../../src/core/registry';
import { createTestDatabase } from '../helpers/pg';
import { config, get, sample } from './helpers';
import { findLeaks } from '../helpers/canary';

const CYCLES = 100;
let db: { url: string; drop: () => Promise<void> };
let daemon: Daemon | undefined;

beforeAll(async () => {
  db = await createTestDatabase('soak');
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query(`CREATE TABLE audit_log (id bigint PRIMARY KEY, created_at timestamptz, action text, payload jsonb,
    prev_hash text, row_hash text, signature text, key_fingerprint text)`);
  await c.query(`INSERT INTO audit_log VALUES (1, now(), 'boot', '{}', repeat('0', 64), repeat('a', 64), 'sig', 'sha256:00')`);
  await c.end();
});
afterAll(async () => {
  await daemon?.close();
  await db.drop();
});

const readsPostgres = defineCheck({
  meta: {
    id: 'reads-postgres',
    title: 'The audit log has a first row',
    description: 'Soak-test check: reads the audit database through the real Postgres source.',
    severity: 'critical',
    sources: ['postgres'],
    schedule: '0 0 1 1 *',
    checklist: [],
    runbook: 'docs/runbooks/reads-postgres.md',
    remediation: 'Nothing: test check.',
  },
  messages: { empty: 'The audit log is empty.' },
  options: z.object({}),
  async run(ctx) {
    const row = await ctx.source('postgres').firstRow();
    if (!row) ctx.report({ messageId: 'empty', resource: 'table=audit_log' });
  },
}) as unknown as AnyCheck;

test(`${CYCLES} cycles with Postgres failing on and off: the daemon stays up and its metrics follow the fault`, async () => {
  const rejections: unknown[] = [];
  const onRejection = (r: unknown) => rejections.push(r);
  process.on('unhandledRejection', onRejection);
  try {
    const refused = new URL(db.url);
    refused.port = '1'; // nothing listens on port 1: connection refused at once
    // Its own credentials: what must stay out of the messages is the URL in use during the
    // down cycles, not the one configured at the start.
    refused.password = 'soak-down-url-password-7f3a9c';
    const registry = buildRegistry([readsPostgres], 'soak');
    const loaded = config(`deployment: soak\nsources:\n  postgres: { url: "${db.url}", connect_timeout: 10s }\n`, registry);
    const pg = loaded.config.sources.postgres as { url: string };
    daemon = await startDaemon({ loaded, registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
    await daemon.ready;

    const rss: number[] = [];
    let errorsSeen = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // Down for two cycles out of every five.
      const down = cycle % 5 === 2 || cycle % 5 === 3;
      pg.url = down ? refused.toString() : db.url;
      const report = await daemon.runNow();
      expect(report?.results[0].status).toBe(down ? 'error' : 'pass');
      const m = (await get(daemon.address, '/metrics')).body;
      expect({ cycle, up: sample(m, 'aegis_compliance_source_up{source="postgres"}') }).toEqual({ cycle, up: down ? 0 : 1 });
      const st = (s: string) => sample(m, `aegis_compliance_check_status{check="reads-postgres",check_severity="critical",status="${s}"}`);
      expect({ cycle, error: st('error'), pass: st('pass') }).toEqual({ cycle, error: down ? 1 : 0, pass: down ? 0 : 1 });
      if (down) {
        errorsSeen++;
        const error = report?.results[0].error ?? '';
        expect(error).toMatch(/postgres/i);
        // No credentials in messages or metrics: the URL actually used this cycle, its password, nor a piece of it.
        expect(pg.url).toBe(refused.toString());
        expect(error).not.toContain(pg.url);
        expect(findLeaks([refused.password, new URL(db.url).password], [['error', error], ['metrics', m]])).toEqual([]);
      }
      expect(sample(m, 'aegis_compliance_source_errors_total{source="postgres",reason="connection_refused"}')).toBe(errorsSeen || undefined);
      if (cycle === 1 || cycle === CYCLES) {
        if (global.gc) global.gc();
        rss.push(process.memoryUsage().rss);
      }
    }
    expect((await get(daemon.address, '/healthz')).status).toBe(200);
    expect(rejections).toEqual([]);
    // eslint-disable-next-line no-console
    console.log(`daemon soak: ${CYCLES} cycles, ${errorsSeen} with Postgres refusing; RSS cycle 1: ${(rss[0] / 2 ** 20).toFixed(1)} MiB, cycle ${CYCLES}: ${(rss[1] / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    process.off('unhandledRejection', onRejection);
  }
}, 120_000);
