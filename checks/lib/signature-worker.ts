/**
 * A worker thread of the signature pool (piscina): verifies packed signatures
 * (signature-work.ts) under the keys of the ring they were packed against. The keys come
 * with each task (public material, a few bytes each) and are kept while the ring is the same.
 */
import { SlotVerifier, type PortableKey } from './ed25519';
import { verifyWork } from './signature-work';

interface SignatureTask {
  /** Identifies the key ring; keys are sent with every task and parsed once per ring. */
  ring: string;
  keys: PortableKey[];
  count: number;
  data: Uint8Array;
}

let current: { ring: string; verifier: SlotVerifier } | undefined;

function verifySignatures(task: SignatureTask): Uint8Array {
  if (current?.ring !== task.ring) current = { ring: task.ring, verifier: new SlotVerifier(task.keys) };
  const v = current.verifier;
  return verifyWork(task, (slot, message, signature) => v.verify(slot, message, signature));
}

export = verifySignatures;
