/**
 * A worker thread of the sandbox's chain writer: signs a batch of row hashes (ed25519 over the
 * 32 raw bytes of each hex hash, base64), so a large chain is signed on every core while the
 * main thread hashes the next batch. Keys arrive as their 32-byte seeds and are derived once.
 */
import type { SignTask } from './chain';
import { keyPairFromSeed, type Ed25519KeyPair } from './keys';

const derived = new Map<string, Ed25519KeyPair>();

function sign(task: SignTask): string[] {
  const pairs = task.seeds.map((s) => {
    let k = derived.get(s);
    if (!k) {
      k = keyPairFromSeed(Buffer.from(s, 'hex'));
      derived.set(s, k);
    }
    return k;
  });
  return task.hashes.map((h, i) => pairs[task.keys[i]].sign(Buffer.from(h, 'hex')).toString('base64'));
}

export = sign;
