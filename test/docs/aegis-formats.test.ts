/**
 * docs/aegis-formats.md is what a user checks their deployment against, so it must agree
 * with what the auditor does: its worked row-hash example is recomputed with the auditor's
 * own hashing, and every column of the tables the sandbox creates (exactly as the auditor
 * expects them) is listed in it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalRow, expectedRowHash, GENESIS_HASH } from '../../checks/lib/canonical';
import { DEFAULT_TABLES, schemaDdl } from '../../src/sandbox/schema';

const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'aegis-formats.md'), 'utf8');

test('the worked example hashes as the auditor hashes the same row', () => {
  const block = /```text\n(0{64}\{.*\})\n```/.exec(doc);
  expect(block).not.toBeNull();
  const line = block![1];
  const stated = /its `row_hash` is `([0-9a-f]{64})`/.exec(doc)?.[1];
  const row = { id: 1, createdAt: new Date('2026-11-22T10:00:00.000Z'), action: 'login', payload: { user: 'ana', ok: true }, prevHash: GENESIS_HASH };
  expect(GENESIS_HASH + canonicalRow(row)).toBe(line);
  expect(createHash('sha256').update(line, 'utf8').digest('hex')).toBe(stated);
  expect(expectedRowHash(row)).toBe(stated);
});

test('every column of every audited table is documented under its default table name', () => {
  const missing: string[] = [];
  for (const ddl of schemaDdl('public', DEFAULT_TABLES)) {
    const m = /CREATE TABLE "public"\."(\w+)" \(([\s\S]*)\)$/.exec(ddl);
    if (!m) continue;
    const [, table, body] = m;
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${table}\``));
    if (!row) {
      missing.push(`table ${table}`);
      continue;
    }
    for (const col of body.split(',').map((c) => c.trim().split(/\s+/)[0])) {
      if (!row.includes(`\`${col}`)) missing.push(`${table}.${col}`);
    }
  }
  expect(missing).toEqual([]);
});
