import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWaiver } from '../../src/core/waivers';
import { checkWaivers, lintWaivers, loadWaivers, waiversLintExitCode } from '../../src/outputs/waivers-file';

const NOW = new Date('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const KNOWN = ['credential-age', 'historical-keys', 'internal-secret-drift'];

const entry = (over: Record<string, string> = {}) => {
  const w = { check: 'credential-age', resource: '"api_key=legacy-*"', justification: 'Partner migration', approver: 'jane', ticket: 'SEC-1', expires: '2027-01-15', ...over };
  return `  - check: ${w.check}\n    resource: ${w.resource}\n    justification: ${w.justification}\n    approver: ${w.approver}\n    ticket: ${w.ticket}\n    expires: ${w.expires}\n`;
};

describe('waivers file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-waivers-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('a good file lints clean (exit 0) and loads as active waivers that the core applies', async () => {
    const f = file('w.yaml', `waivers:\n${entry()}`);
    const problems = await lintWaivers(f, { knownChecks: KNOWN, now: NOW });
    expect(problems).toEqual([]);
    expect(waiversLintExitCode(problems)).toBe(0);
    const { active, expired } = await loadWaivers(f, { knownChecks: KNOWN, now: NOW });
    expect(expired).toEqual([]);
    expect(active).toEqual([
      { check: 'credential-age', resource: 'api_key=legacy-*', justification: 'Partner migration', approver: 'jane', ticket: 'SEC-1', expires: '2027-01-15T23:59:59.999Z' },
    ]);
    // A bare date covers the whole day, for the core's matcher too.
    expect(findWaiver({ check: 'credential-age', resource: 'api_key=legacy-partner' }, active, new Date('2027-01-15T20:00:00Z'))).toBe(active[0]);
    expect(findWaiver({ check: 'credential-age', resource: 'api_key=other' }, active, NOW)).toBeUndefined();
    expect(findWaiver({ check: 'credential-age', resource: 'api_key=legacy-partner' }, active, new Date('2027-01-16T00:00:00Z'))).toBeUndefined();
  });

  it('reports every problem as file:line:col: path: message, and lint exits 1', async () => {
    const f = file(
      'w.yaml',
      `waivers:\n${entry({ check: 'no-such-check' })}${entry({ expires: '2030-01-01' })}${entry({ approver: '""' })}${entry({ expires: 'next week' })}`,
    );
    const problems = await lintWaivers(f, { knownChecks: KNOWN, now: NOW });
    // All four entries' problems at once: one bad entry does not hide the others.
    expect(problems).toEqual([
      `${f}:2:12: waivers[0].check: unknown check id "no-such-check" (known: credential-age, historical-keys, internal-secret-drift)`,
      `${f}:13:14: waivers[1].expires: 2030-01-01T23:59:59.999Z is more than waiver_max_lifetime (90d) from now; waivers must be renewed, not open-ended`,
      `${f}:17:15: waivers[2].approver: must not be empty`,
      `${f}:25:14: waivers[3].expires: an ISO 8601 date or date-time, e.g. 2026-03-31`,
    ]);
    expect(waiversLintExitCode(problems)).toBe(1);
  });

  it('checks ids against the registry and expiry against waiver_max_lifetime', () => {
    const r = checkWaivers(`waivers:\n${entry({ check: 'no-such-check' })}${entry({ expires: '2027-03-01' })}`, 'w.yaml', { knownChecks: KNOWN, now: NOW });
    expect(r.errors).toEqual([
      'w.yaml:2:12: waivers[0].check: unknown check id "no-such-check" (known: credential-age, historical-keys, internal-secret-drift)',
      'w.yaml:13:14: waivers[1].expires: 2027-03-01T23:59:59.999Z is more than waiver_max_lifetime (90d) from now; waivers must be renewed, not open-ended',
    ]);
    // A shorter configured maximum.
    const short = checkWaivers(`waivers:\n${entry({ expires: '2026-12-31' })}`, 'w.yaml', { maxLifetimeMs: 30 * DAY, now: NOW });
    expect(short.errors).toEqual([expect.stringContaining('more than waiver_max_lifetime (30d) from now')]);
    expect(checkWaivers(`waivers:\n${entry({ expires: '2026-12-15' })}`, 'w.yaml', { maxLifetimeMs: 30 * DAY, now: NOW }).errors).toEqual([]);
  });

  it('expired waivers: a lint problem (exit 1), but loadWaivers returns them apart and keeps the run going', async () => {
    const f = file('w.yaml', `waivers:\n${entry()}${entry({ check: 'historical-keys', resource: 'fingerprint=*', expires: '2026-11-01' })}`);
    const problems = await lintWaivers(f, { knownChecks: KNOWN, now: NOW });
    expect(problems).toEqual([`${f}:13:14: waivers[1].expires: expired on 2026-11-01T23:59:59.999Z; it covers nothing: renew it (new expiry, approver, ticket) or remove it`]);
    expect(waiversLintExitCode(problems)).toBe(1);
    const { active, expired } = await loadWaivers(f, { knownChecks: KNOWN, now: NOW });
    expect(active.map((w) => w.check)).toEqual(['credential-age']);
    expect(expired.map((w) => w.check)).toEqual(['historical-keys']);
    expect(findWaiver({ check: 'historical-keys', resource: 'fingerprint=sha256:x' }, [...active, ...expired], NOW)).toBeUndefined();
  });

  it('loadWaivers stops the run on an invalid file (config error); lint reports unreadable and non-YAML files', async () => {
    const bad = file('bad.yaml', `waivers:\n${entry({ ticket: '""' })}`);
    await expect(loadWaivers(bad, { now: NOW })).rejects.toMatchObject({ code: 'AUDIT_ERR_CONFIG', message: expect.stringContaining(`${bad}:6:13: waivers[0].ticket: must not be empty`) });
    const missing = join(dir, 'missing.yaml');
    expect(await lintWaivers(missing)).toEqual([`${missing}: cannot read the waivers file (ENOENT)`]);
    expect(await lintWaivers(file('x.yaml', 'waivers: [\n'))).toEqual([expect.stringMatching(/x\.yaml:\d+:\d+: invalid YAML/)]);
    expect(await lintWaivers(file('y.yaml', 'waiver:\n  - check: a\n'))).toEqual([expect.stringContaining('y.yaml:1:1: (top level): unknown key "waiver"')]);
    // An empty list is a valid file.
    expect(await lintWaivers(file('e.yaml', 'waivers: []\n'), { now: NOW })).toEqual([]);
  });
});
