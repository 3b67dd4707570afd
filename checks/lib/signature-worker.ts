/**
 * A worker thread of the signature pool (piscina). Two kinds of task:
 * - packed signatures (signature-work.ts), verified under the keys of the ring they were
 *   packed against;
 * - `rows`: a raw batch of audit rows (raw-rows-work.ts), decoded, hashed, linked and
 *   verified here, so the check's thread only reads.
 * The keys (public material, a few bytes each) come with each task and are kept while the
 * ring is the same.
 */
import { SlotVerifier, type PortableKey } from './ed25519';
import { verifyWork } from './signature-work';
import { verifyRawRows, type RawRowsResult, type RawRowsTask } from './raw-rows-work';
import { nameThisThread } from '../../src/core/threads';

nameThisThread('aegis-verify');

interface Ring {
  /** Identifies the key ring; keys are sent with every task and parsed once per ring. */
  ring: string;
  keys: PortableKey[];
}

interface SignatureTask extends Ring {
  kind?: undefined;
  count: number;
  data: Uint8Array;
}

interface RowsTask extends Ring, RawRowsTask {
  kind: 'rows';
  /** The keys' fingerprints, in slot order. */
  fingerprints: string[];
}

let current: { ring: string; verifier: SlotVerifier; slots: Map<string, number> } | undefined;

function ringOf(task: Ring, fingerprints: string[] = []) {
  if (current?.ring !== task.ring) current = { ring: task.ring, verifier: new SlotVerifier(task.keys), slots: new Map(fingerprints.map((f, i) => [f, i])) };
  return current;
}

function work(task: SignatureTask | RowsTask): Uint8Array | RawRowsResult {
  const r = ringOf(task, task.kind === 'rows' ? task.fingerprints : undefined);
  const verify = (slot: number, message: Uint8Array, signature: Uint8Array) => r.verifier.verify(slot, message, signature);
  if (task.kind === 'rows') {
    if (r.slots.size === 0 && task.fingerprints.length > 0) r.slots = new Map(task.fingerprints.map((f, i) => [f, i]));
    return verifyRawRows(task, { slot: (fp: string) => r.slots.get(fp) }, verify);
  }
  return verifyWork(task, verify);
}

export = work;
