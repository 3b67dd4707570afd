/**
 * A worker thread of the signature pool (piscina): packed signatures (signature-work.ts),
 * verified under the keys of the ring they were packed against. The rows themselves — raw
 * batches decoded, hashed and linked, or parsed rows — are checked on the check's thread, which
 * sends only the signatures' work here (about 100 bytes a row): this thread loads and compiles
 * nothing but the verifier, and is ready sooner.
 * The keys (public material, a few bytes each) come with each task and are kept while the
 * ring is the same.
 */
import { SlotVerifier, type PortableKey } from './ed25519-verify';
import { verifyWork } from './signature-work';
import { nameThisThread } from '../../src/core/threads';

nameThisThread('aegis-verify');

interface SignatureTask {
  /** Identifies the key ring; keys are sent with every task and parsed once per ring. */
  ring: string;
  keys: PortableKey[];
  count: number;
  data: Uint8Array;
}

let current: { ring: string; verifier: SlotVerifier } | undefined;

function work(task: SignatureTask): Uint8Array {
  if (current?.ring !== task.ring) current = { ring: task.ring, verifier: new SlotVerifier(task.keys) };
  const verifier = current.verifier;
  return verifyWork(task, (slot, message, signature) => verifier.verify(slot, message, signature));
}

export = work;
