/**
 * Issue 9, case 7: in `daemon` mode the log scrubber was not the one the checks' sources
 * registered secrets with, so a secret that reached a log line went out whole. There is one
 * scrubber per process now; a daemon started as the CLI starts it (a default logger) scrubs
 * what its sources read from its log lines, its /report.json and its merged report.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { createLogger } from '../../src/core/logger';
import { buildRegistry } from '../../src/core/registry';
import { startDaemon } from '../../src/daemon';
import { get } from '../daemon/helpers';
import { canaryToken, findLeaks } from './helpers';

const SECRET = canaryToken('one-scrubber', 28).replace(/[-_]/g, 'q');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'adv-one-scrubber-'));
  mkdirSync(join(dir, 'env'));
  writeFileSync(join(dir, 'env', 'gateway.env'), `INTERNAL_SECRET=${SECRET}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A careless check: it reads a secret and then logs and reports it (a bug the scrubber must catch). */
const careless = defineCheck({
  meta: {
    id: 'careless-check',
    title: 'A careless check leaks nothing',
    description: 'Test-only: logs and reports a secret it read.',
    severity: 'high',
    sources: ['secrets'],
    schedule: '0 0 1 1 *',
    checklist: [],
    runbook: 'docs/runbooks/careless-check.md',
    remediation: 'None: test only.',
  },
  messages: { leaked: 'Saw {{value}}.' },
  options: z.object({}),
  async run(ctx) {
    const [h] = await ctx.source('secrets').holders('INTERNAL_SECRET');
    const value = h.value.reveal();
    ctx.logger.warn({ detail: `value is ${value}` }, `about to report ${value}`);
    ctx.report({ messageId: 'leaked', data: { value }, resource: 'thing=1', evidence: { raw: value } });
  },
}) as unknown as AnyCheck;

test('the daemon, its logger and its sources share one scrubber', async () => {
  let logs = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs += chunk.toString();
      cb();
    },
  });
  const registry = buildRegistry([careless], 'test');
  const loaded = parseConfig(
    `deployment: one-scrubber\nservices: [gateway]\nsources:\n  secrets: { env_files: { gateway: ${JSON.stringify(join(dir, 'env', 'gateway.env'))} } }\n`,
    join(dir, 'audit.yaml'),
    { registry, env: {} },
  );
  const d = await startDaemon({ loaded, registry, listen: '127.0.0.1:0', logger: createLogger({ destination, level: 'debug' }), maxRandomDelayMs: 0 });
  try {
    await d.ready;
    const json = await get(d.address, '/report.json');
    expect(json.status).toBe(200);
    const seen = new Map([
      ['log lines', logs],
      ['/report.json', json.body],
      ['merged report', JSON.stringify(d.report())],
    ]);
    expect(logs).toContain('about to report');
    expect(findLeaks({ SECRET }, seen)).toEqual([]);
  } finally {
    await d.close();
  }
});
