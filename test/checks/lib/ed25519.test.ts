/**
 * The signature verifier: libsodium through sodium-native's binding, loaded as itself (not the
 * package's 3 200-line wrapper), agreeing with node:crypto wherever the bytes sit in memory.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { join } from 'node:path';
import { SlotVerifier, verifierBackend } from '../../../checks/lib/ed25519';
import { REPO_ROOT, expectFreshBuild } from '../../helpers/build';
import { TestKey } from '../../fakes';
import { SIG } from '../../../checks/lib/signature-work';

const key = TestKey.generate();
const spki = createPublicKey(key.publicKeyPem).export({ type: 'spki', format: 'der' });
/** The raw 32-byte key: the SPKI's last 32 bytes for ed25519. */
const raw = new Uint8Array(spki.subarray(spki.length - 32));

describe('SlotVerifier', () => {
  test('libsodium and node:crypto agree on signatures anywhere in a larger buffer (as the packed work holds them)', () => {
    expect(verifierBackend()).toBe('sodium-native');
    const message = Buffer.from('9f'.repeat(32), 'hex');
    const signature = Buffer.from(key.signHash(message.toString('hex')), 'base64');
    // Message and signature at odd offsets of one shared buffer, as a batch's work carries them.
    const packed = new Uint8Array(7 + 32 + 64 + 5);
    packed.set(message, 7);
    packed.set(signature, 39);
    const m = packed.subarray(7, 39);
    const s = packed.subarray(39, 103);
    const keyCopy = new Uint8Array(40);
    keyCopy.set(raw, 3);
    for (const useSodium of [true, false]) {
      const v = new SlotVerifier([{ raw: keyCopy.subarray(3, 35), spki: new Uint8Array(spki) }], { useSodium });
      expect(v.verify(0, m, s)).toBe(true);
      const bent = new Uint8Array(s);
      bent[10] ^= 0x40;
      expect(v.verify(0, m, bent)).toBe(false);
      const other = Buffer.from(m);
      other[0] ^= 1;
      expect(v.verify(0, other, s)).toBe(false);
      // A signature of the wrong length is refused by both, never taken as valid.
      expect(v.verify(0, m, s.subarray(0, 63))).toBe(false);
    }
    // The same signature made by node:crypto verifies with the sodium backend too.
    const direct = sign(null, m, createPrivateKey(key.privateKeyPem));
    expect(new SlotVerifier([{ raw, spki: new Uint8Array(spki) }]).verify(0, m, direct)).toBe(true);
  });

  test('a signature worker thread verifies with libsodium without loading node:crypto (about 9 ms of its start)', () => {
    expectFreshBuild();
    const message = Buffer.from('5e'.repeat(32), 'hex');
    const signature = Buffer.from(key.signHash(message.toString('hex')), 'base64');
    const input = { worker: join(REPO_ROOT, 'dist/checks/lib/signature-worker.js'), raw: Buffer.from(raw).toString('hex'), message: message.toString('hex'), signature: signature.toString('hex') };
    // Two rows of work (slot, message, signature: 98 bytes each): the signature, then the same one bent.
    const code = `
      const { parentPort, workerData: d } = require('node:worker_threads');
      const work = require(d.worker);
      const row = Buffer.concat([Buffer.from([0, 0]), Buffer.from(d.message, 'hex'), Buffer.from(d.signature, 'hex')]);
      const data = new Uint8Array(Buffer.concat([row, row]));
      data[98 + 34] ^= 1;
      const out = work({ ring: 'r', keys: [{ raw: Buffer.from(d.raw, 'hex'), spki: new Uint8Array(44) }], count: 2, data });
      parentPort.postMessage({ out: [...out], crypto: process.moduleLoadList.includes('NativeModule crypto') });`;
    const script = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(${JSON.stringify(code)}, { eval: true, workerData: ${JSON.stringify(input)} });
      w.on('message', (m) => { process.stdout.write(JSON.stringify(m)); w.terminate(); });
      w.on('error', (e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const m = JSON.parse(r.stdout) as { out: number[]; crypto: boolean };
    expect(m.out).toEqual([SIG.valid, SIG.invalid]);
    expect(m.crypto).toBe(false);
  });

  test("a verifying thread loads sodium-native's binary, not the package's entry point", () => {
    expectFreshBuild();
    const script = `
      const { SlotVerifier, verifierBackend } = require(${JSON.stringify(join(REPO_ROOT, 'dist/checks/lib/ed25519.js'))});
      const backend = verifierBackend();
      const loaded = Object.keys(require.cache).filter((f) => f.includes('node_modules/sodium-native') || f.includes('node_modules/require-addon'));
      process.stdout.write(JSON.stringify({ backend, loaded }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { backend: string; loaded: string[] };
    expect(out.backend).toBe('sodium-native');
    expect(out.loaded).toHaveLength(1);
    expect(out.loaded[0]).toMatch(/sodium-native\.node$/);
  });
});
