import { generateKeyPairSync, createHash, createPublicKey } from 'node:crypto';
import { appendFileSync, linkSync, mkdtempSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDotenv } from '../../src/sources/dotenv';
import { publicKeyOfPrivatePem } from '../../src/sources/pem';
import { FileLogSource, rawLogFiles } from '../../src/sources/log-files';
import type { RawLogChunk, RawLogPosition } from '../../src/core/sources';
import { CompositeSecretStore, envAndPemBackends } from '../../src/sources/secrets';
import { KnownSecrets } from '../../src/core/secret';
import { AuditError } from '../../src/core/errors';
import { fakePrivatePem } from '../helpers/pem';

const dir = mkdtempSync(join(tmpdir(), 'src-files-'));

function ed25519() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const fp = 'sha256:' + createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
  return { pem, fp };
}

describe('dotenv', () => {
  test('parses plain, exported, quoted and escaped values', () => {
    const env = parseDotenv(
      '# comment\nA=1\nexport B=two words # trailing comment\nC="line1\\nline2 \\"q\\""\nD=\'lit $x\\n\'\n\nE=\n',
      'x.env',
    );
    expect(env.get('A')).toBe('1');
    expect(env.get('B')).toBe('two words');
    expect(env.get('C')).toBe('line1\nline2 "q"');
    expect(env.get('D')).toBe('lit $x\\n');
    expect(env.get('E')).toBe('');
  });
  test('errors name the file and line but never echo the line', () => {
    let err: unknown;
    try {
      parseDotenv('A=1\nthis-line-holds-a-secret-value\n', '/run/aegis/gw.env');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuditError);
    expect((err as Error).message).toBe('secrets: /run/aegis/gw.env:2: expected NAME=value');
    expect(() => parseDotenv('A="unterminated\n', 'y.env')).toThrow('y.env:1: unterminated double-quoted value');
  });
});

describe('PEM signing keys', () => {
  test('fingerprint is sha256 of the SPKI DER of the public key', () => {
    const k = ed25519();
    const info = publicKeyOfPrivatePem(k.pem, 'secrets', 'file.pem');
    expect(info.fingerprint).toBe(k.fp);
    expect(createPublicKey(info.publicKeyPem).asymmetricKeyType).toBe('ed25519');
  });
  test.each([
    ['not a PEM at all', /not a PKCS#8 PEM private key/],
    [fakePrivatePem('AAAA!!!!'), /malformed PEM private key/],
    [generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), /expected an ed25519 key, found ec/],
  ])('a bad key is a clear error naming where: %#', (pem, re) => {
    expect(() => publicKeyOfPrivatePem(pem, 'secrets', '/data/keys/receipt-signing.pem')).toThrow(re);
    try {
      publicKeyOfPrivatePem(pem, 'secrets', '/data/keys/receipt-signing.pem');
    } catch (e) {
      expect((e as Error).message).toContain('/data/keys/receipt-signing.pem');
      expect((e as Error).message).not.toContain(pem.split('\n')[1] || '@@');
    }
  });
});

describe('secret store over env and PEM files', () => {
  test('holders per service, signing keys from env and PEM, values registered for scrubbing', async () => {
    const recv = ed25519();
    const pemOnly = ed25519();
    writeFileSync(join(dir, 'audit.env'), `INTERNAL_SECRET=shared-internal-0001\nRECEIPT_SIGNING_PRIVATE_KEY="${recv.pem.replace(/\n/g, '\\n')}"\n`);
    writeFileSync(join(dir, 'gateway.env'), 'INTERNAL_SECRET=shared-internal-0001\nJWT_SECRET_KEY=jwt-signing-secret-42\n');
    writeFileSync(join(dir, 'receipt.pem'), pemOnly.pem);
    const known = new KnownSecrets();
    const store = new CompositeSecretStore(
      envAndPemBackends(
        { env_files: { audit: join(dir, 'audit.env'), gateway: join(dir, 'gateway.env') }, pem_files: { receipt: join(dir, 'receipt.pem') }, signing_key_service: 'audit' },
        known,
      ),
      ['audit', 'gateway', 'api'],
    );
    const holders = await store.holders('INTERNAL_SECRET');
    expect(holders.map((h) => h.service)).toEqual(['audit', 'gateway']);
    expect(holders[0].value.equals(holders[1].value)).toBe(true);
    expect(JSON.stringify(holders)).not.toContain('shared-internal-0001');
    const keys = await store.signingKeys('receipt');
    expect(keys.map((k) => [k.provider, k.fingerprint])).toEqual([
      ['env_file', recv.fp],
      ['pem_file', pemOnly.fp],
    ]);
    expect(await store.signingKeys('root')).toEqual([]);
    expect(known.scrub('x jwt-signing-secret-42 y')).toBe('x [redacted] y');
  });
  test('a missing env file is a source error naming the file', async () => {
    const store = new CompositeSecretStore(envAndPemBackends({ env_files: { api: join(dir, 'missing.env') }, signing_key_service: 'audit' }, new KnownSecrets()), ['api']);
    await expect(store.holders('INTERNAL_SECRET')).rejects.toThrow(/^secrets: reading env file .*missing\.env: not found/);
  });
});

describe('JSON-lines log files', () => {
  test('non-JSON, foreign and 1 MB lines are ignored and counted; the window and event filter apply', async () => {
    const d = join(dir, 'logs', 'audit');
    mkdirSync(d, { recursive: true });
    const ev = (ts: string, extra: object) => JSON.stringify({ ts, service: 'audit', ...extra });
    const big = '{"ts":"2026-11-22T10:00:00.000Z","event":"signing_key_loaded","junk":"' + 'x'.repeat(1024 * 1024 + 10) + '"}';
    writeFileSync(
      join(d, 'a.jsonl'),
      [
        'plain text startup banner',
        ev('2026-11-22T09:00:00.000Z', { event: 'signing_key_loaded', instance: 'audit-1', key: 'receipt', source: 'env' }),
        big,
        '{"broken json',
        ev('2026-11-22T09:30:00.000Z', { event: 'request', path: '/x' }),
        ev('2026-11-20T09:00:00.000Z', { event: 'signing_key_loaded', instance: 'old', key: 'receipt', source: 'file' }),
      ].join('\n') + '\n' + ev('2026-11-22T09:45:00.000Z', { event: 'signing_key_loaded', instance: 'audit-2', key: 'root', source: 'env' }),
    );
    writeFileSync(join(d, 'b.jsonl'), ev('2026-11-22T08:00:00.000Z', { event: 'signing_key_loaded', instance: 'audit-0', key: 'root', source: 'generated' }) + '\n');
    const src = new FileLogSource({ audit: join(d, '*.jsonl') }, 86_400_000);
    const got = [];
    for await (const e of src.events('audit', { since: new Date('2026-11-22T00:00:00Z'), event: 'signing_key_loaded' })) got.push(e);
    expect(got.map((e) => e.fields.instance)).toEqual(['audit-0', 'audit-1', 'audit-2']);
    expect(got[1].origin).toMatch(/a\.jsonl:2$/);
    const st = src.stats();
    expect(st.linesIgnored).toBe(4); // banner, the 1 MB line, broken JSON, a foreign event
    expect(st.linesRead).toBe(7);
    expect(src.services()).toEqual(['audit']);
  });
});

test('a log glob that matches no file is an error naming it, not an empty (passing) window', async () => {
  const src = new FileLogSource({ gateway: join(dir, 'nowhere', '*.jsonl') }, 86_400_000);
  const read = async () => {
    for await (const e of src.events('gateway', { since: new Date(0) })) void e;
  };
  await expect(read()).rejects.toThrow(/^logs: no files match .*nowhere\/\*\.jsonl \(sources\.logs\.files\.gateway\)$/);
});

test('a read cut short by the check timeout (aborted signal) is an error, not a short window', async () => {
  const d = join(dir, 'logs', 'gw');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'a.jsonl'), JSON.stringify({ ts: new Date().toISOString(), service: 'gateway', event: 'auth_failure' }) + '\n');
  const src = new FileLogSource({ gateway: join(d, '*.jsonl') }, 86_400_000);
  const read = async () => {
    const got = [];
    for await (const e of src.events('gateway', { since: new Date(0), signal: AbortSignal.abort() })) got.push(e);
    return got;
  };
  await expect(read()).rejects.toMatchObject({ code: 'AUDIT_ERR_TIMEOUT', source: 'logs', message: expect.stringMatching(/^logs: reading .*a\.jsonl: stopped/) });
});

describe('resumed reads of log files (cursors)', () => {
  const ev = (ts: string, n: number) => JSON.stringify({ ts, service: 'audit', event: 'signing_key_loaded', instance: `i-${n}`, key: 'receipt', source: 'env' });
  const T = (m: number) => new Date(Date.UTC(2026, 10, 22, 10, m)).toISOString();
  const since = new Date('2026-11-01T00:00:00Z');

  async function read(src: FileLogSource, after?: import('../../src/core/sources').LogCursor) {
    const r = src.events('audit', { since, event: 'signing_key_loaded', ...(after ? { after } : {}) });
    const got: string[] = [];
    const origins: string[] = [];
    for await (const e of r) {
      got.push(String(e.fields.instance));
      origins.push(e.origin);
    }
    return { got, origins, cursor: r.cursor() };
  }

  function fresh(name: string) {
    const d = join(dir, 'resume', name);
    mkdirSync(d, { recursive: true });
    return { d, src: new FileLogSource({ audit: join(d, '*.jsonl') }, 86_400_000) };
  }

  test('a resumed read yields only lines appended since, numbered on; a line still being written is read once complete', async () => {
    const { d, src } = fresh('append');
    const f = join(d, 'a.jsonl');
    writeFileSync(f, [ev(T(1), 1), 'noise', ev(T(2), 2)].join('\n') + '\n');
    const r1 = await read(src);
    expect(r1.got).toEqual(['i-1', 'i-2']);
    appendFileSync(f, ev(T(3), 3) + '\n' + ev(T(4), 4).slice(0, 30)); // the last line half written
    const r2 = await read(src, r1.cursor);
    expect(r2.got).toEqual(['i-3']);
    expect(r2.origins).toEqual([`file:${f}:4`]);
    appendFileSync(f, ev(T(4), 4).slice(30) + '\n');
    const r3 = await read(src, r2.cursor);
    expect(r3.got).toEqual(['i-4']);
    expect(r3.origins).toEqual([`file:${f}:5`]);
    expect((await read(src, r3.cursor)).got).toEqual([]);
  });

  test('a rotated (renamed) file is not read again; the new file at the old name is read from its start', async () => {
    const { d, src } = fresh('rotate');
    writeFileSync(join(d, 'a.jsonl'), ev(T(1), 1) + '\n');
    const r1 = await read(src);
    renameSync(join(d, 'a.jsonl'), join(d, 'a-20261122.jsonl'));
    appendFileSync(join(d, 'a-20261122.jsonl'), ev(T(2), 2) + '\n'); // written just before the rename took effect
    writeFileSync(join(d, 'a.jsonl'), ev(T(3), 3) + '\n');
    const r2 = await read(src, r1.cursor);
    expect(r2.got).toEqual(['i-2', 'i-3']);
  });

  test('a truncated file, or one rewritten in place, is read from its start again', async () => {
    const { d, src } = fresh('truncate');
    const f = join(d, 'a.jsonl');
    writeFileSync(f, [ev(T(1), 1), ev(T(2), 2)].join('\n') + '\n');
    const r1 = await read(src);
    writeFileSync(f, ev(T(3), 3) + '\n'); // copytruncate: same inode, shorter
    const r2 = await read(src, r1.cursor);
    expect(r2.got).toEqual(['i-3']);
    writeFileSync(f, [ev(T(5), 5), ev(T(6), 6), ev(T(7), 7)].join('\n') + '\n'); // same inode, longer, other content
    expect((await read(src, r2.cursor)).got).toEqual(['i-5', 'i-6', 'i-7']);
  });

  test('a cursor of another location is ignored: the read starts from `since`', async () => {
    const a = fresh('loc-a');
    const b = fresh('loc-b');
    writeFileSync(join(a.d, 'x.jsonl'), ev(T(1), 1) + '\n');
    writeFileSync(join(b.d, 'x.jsonl'), ev(T(2), 2) + '\n');
    const ra = await read(a.src);
    expect(ra.cursor.location).toBe(`files:${join(a.d, '*.jsonl')}`);
    expect((await read(b.src, ra.cursor)).got).toEqual(['i-2']);
  });

  test('files are merged by time, one event pending per file', async () => {
    const { d, src } = fresh('merge');
    writeFileSync(join(d, 'a.jsonl'), [ev(T(1), 1), ev(T(4), 4), ev(T(5), 5)].join('\n') + '\n');
    writeFileSync(join(d, 'b.jsonl'), [ev(T(2), 2), ev(T(3), 3), ev(T(6), 6)].join('\n') + '\n');
    expect((await read(src)).got).toEqual(['i-1', 'i-2', 'i-3', 'i-4', 'i-5', 'i-6']);
  });

  test('no cursor before the read ran to its end, and none for a read bounded by until', async () => {
    const { d, src } = fresh('nocursor');
    writeFileSync(join(d, 'a.jsonl'), ev(T(1), 1) + '\n');
    const r = src.events('audit', { since });
    expect(() => r.cursor()).toThrow(/has not run to its end/);
    const bounded = src.events('audit', { since, until: new Date(T(30)) });
    for await (const e of bounded) void e;
    expect(() => bounded.cursor()).toThrow(/bounded by 'until' cannot be resumed/);
  });
});

describe('raw log files (every line, for checks that search them all)', () => {
  const since = new Date(0);
  function folder(name: string) {
    const d = join(dir, 'raw', name);
    mkdirSync(d, { recursive: true });
    return d;
  }
  async function read(d: string, from?: RawLogPosition) {
    const [stream, ...more] = await rawLogFiles(join(d, '*.log'), 'sources.logs.files.x');
    expect(more).toEqual([]);
    const chunks: RawLogChunk[] = [];
    for await (const c of stream.read(from, { since })) chunks.push(c);
    const last = chunks[chunks.length - 1];
    return { stream, text: Buffer.concat(chunks.map((c) => c.data)).toString('utf8'), next: last?.next ?? from, restarted: chunks.some((c) => c.restarted), first: chunks[0] };
  }

  test('resumes after the last complete line; a line still being written comes again once complete', async () => {
    const d = folder('append');
    const f = join(d, 'a.log');
    writeFileSync(f, 'one\nplain two\n');
    const r1 = await read(d);
    expect([r1.text, r1.next?.offset, r1.next?.line]).toEqual(['one\nplain two\n', 14, 3]);
    appendFileSync(f, 'three\nfou');
    const r2 = await read(d, r1.next);
    expect([r2.text, r2.first.offset, r2.first.line, r2.next?.offset, r2.restarted]).toEqual(['three\nfou', 14, 3, 20, false]);
    appendFileSync(f, 'r\n');
    expect((await read(d, r2.next)).text).toBe('four\n');
  });

  test('a file truncated and written again past the old position is read from its start, and says so', async () => {
    const d = folder('regrown');
    const f = join(d, 'a.log');
    writeFileSync(f, 'first content\n');
    const r1 = await read(d);
    writeFileSync(f, 'other, longer content written after a copytruncate\n'); // same inode, longer than the position
    const r2 = await read(d, r1.next);
    expect([r2.text, r2.first.offset, r2.restarted]).toEqual(['other, longer content written after a copytruncate\n', 0, true]);
    expect(r2.stream.identity).toBe(r1.stream.identity);
  });

  test('a file truncated to nothing gives one empty chunk that starts over', async () => {
    const d = folder('emptied');
    const f = join(d, 'a.log');
    writeFileSync(f, 'held a leak\n');
    const r1 = await read(d);
    writeFileSync(f, '');
    const r2 = await read(d, r1.next);
    expect([r2.text, r2.restarted, r2.next?.offset]).toEqual(['', true, 0]);
    expect((await read(d, r2.next)).restarted).toBe(false);
  });

  test('a rotated (renamed) file keeps its identity; a file under two names is one stream', async () => {
    const d = folder('links');
    writeFileSync(join(d, 'a.log'), 'x\n');
    const { stream } = await read(d);
    renameSync(join(d, 'a.log'), join(d, 'b.log'));
    expect((await read(d)).stream.identity).toBe(stream.identity);
    linkSync(join(d, 'b.log'), join(d, 'c.log'));
    expect((await rawLogFiles(join(d, '*.log'), 'sources.logs.files.x')).map((s) => s.name.slice(d.length + 1))).toEqual(['b.log']);
  });
});
