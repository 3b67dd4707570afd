import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatJsonReport, readJsonReport, writeJsonReport } from '../../src/outputs/json';
import type { Report } from '../../src/core/types';
import { sampleReport } from './fixtures';

/** The same report with every object's keys in reverse order. */
function reversed<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reversed) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)])) as T;
  return v;
}

describe('JSON report', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-json-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes report.json with a stable key order and 2-space indent', async () => {
    const report = sampleReport();
    const file = await writeJsonReport(report, dir);
    expect(file).toBe(join(dir, 'report.json'));
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(formatJsonReport(reversed(report)));
    expect(text.startsWith('{\n  "schemaVersion": 1,\n  "tool": {\n    "name": "aegis-audit",')).toBe(true);
    expect(Object.keys(JSON.parse(text))).toEqual(['schemaVersion', 'tool', 'deployment', 'runId', 'configDigest', 'startedAt', 'finishedAt', 'summary', 'results', 'expiredWaivers']);
    // Evidence is sorted at every level.
    const ev = JSON.parse(text).results[0].findings[0].evidence;
    expect(Object.keys(ev)).toEqual(['instance', 'nested', 'source', 'ts']);
    expect(Object.keys(ev.nested)).toEqual(['fields', 'line']);
  });

  it('reads back what it wrote', async () => {
    const report = sampleReport();
    const file = await writeJsonReport(report, dir);
    expect(await readJsonReport(file)).toEqual(report);
  });

  it('rejects another schema version, and things that are not reports, naming the file', async () => {
    const file = join(dir, 'r.json');
    writeFileSync(file, JSON.stringify({ ...sampleReport(), schemaVersion: 2 }));
    await expect(readJsonReport(file)).rejects.toThrow(`${file}: report schemaVersion 2 is not supported (this aegis-audit reads schemaVersion 1)`);
    writeFileSync(file, JSON.stringify({ hello: 'world' }));
    await expect(readJsonReport(file)).rejects.toThrow(`${file}: not an aegis-audit report`);
    const broken = { ...sampleReport() } as Partial<Report>;
    delete broken.results;
    writeFileSync(file, JSON.stringify(broken));
    await expect(readJsonReport(file)).rejects.toThrow('results');
    writeFileSync(file, '{ nope');
    await expect(readJsonReport(file)).rejects.toThrow(`${file}: not JSON`);
    await expect(readJsonReport(join(dir, 'missing.json'))).rejects.toThrow('cannot read the report (ENOENT)');
  });
});
