/**
 * The auditor's state store: checkpoints in files or in its own Postgres schema. A state
 * database that never answers must fail the check that needs it within a bound, and the
 * run must still be able to close the store.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStateStore, PostgresStateStore } from '../../src/sources/state';

let silent: Server;
const sockets = new Set<Socket>();

beforeAll(async () => {
  // Accepts the connection and never says a word: a hung or firewalled-after-accept Postgres.
  silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

test('a state database that never answers is a coded error within the connect timeout, and close() returns', async () => {
  const port = (silent.address() as AddressInfo).port;
  const store = new PostgresStateStore(`postgres://auditor:state-db-password-0123@127.0.0.1:${port}/audit`, 'aegis_audit', { connectTimeoutMs: 300 });
  const t0 = Date.now();
  const e = await store.get('receipt-chain').then(
    () => undefined,
    (x: unknown) => x,
  );
  // Below the 5 s default: the configured connect timeout fired (a bound for a loaded machine, not a figure).
  expect(Date.now() - t0).toBeLessThan(4_500);
  expect(e).toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', source: 'state' });
  expect((e as Error).message).toMatch(/^state: creating the state table: /);
  expect((e as Error).message).not.toContain('state-db-password-0123');
  await store.close();
});

test('an unreadable checkpoint file is a coded state error, not a crash of the check', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'state-'));
  // A directory where the checkpoint file should be: reading it fails with EISDIR.
  mkdirSync(join(dir, 'receipt-chain.json'));
  const store = new FileStateStore(dir);
  await expect(store.get('receipt-chain')).rejects.toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', source: 'state' });
  await expect(store.set('receipt-chain', { lastId: 1 })).rejects.toMatchObject({ code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', source: 'state' });
  // A corrupt checkpoint still reads as none (the next run verifies from the start).
  writeFileSync(join(dir, 'other.json'), '{not json');
  expect(await store.get('other')).toBeUndefined();
});
