/**
 * Signatures of audit rows packed for verification on another thread: one buffer, no
 * per-row objects, so handing a batch to a worker is a transfer, not a copy. Kept free of
 * other imports: worker threads load this and ed25519.ts only.
 */

/** What a row's signature check came to (KeyRing.verify's outcomes), a byte per row. */
export const SIG = { valid: 0, invalid: 1, malformed: 2, unknownKey: 3, /** not checked: the row_hash itself is malformed */ none: 4 } as const;

/**
 * Signatures to verify, packed: for signature i, `data` holds at i·WORK_STRIDE the key slot
 * (uint16, little-endian), then the 32-byte message (the raw row_hash), then the 64-byte
 * signature; `rows[i]` is the index of the row in its batch.
 */
export interface SignatureWork {
  count: number;
  data: Uint8Array;
  rows: Uint32Array;
}

export const WORK_STRIDE = 98;

/** Verifies packed signatures; one SIG value (valid or invalid) per signature. */
export function verifyWork(work: { count: number; data: Uint8Array }, verify: (slot: number, message: Uint8Array, signature: Uint8Array) => boolean): Uint8Array {
  const out = new Uint8Array(work.count);
  for (let i = 0; i < work.count; i++) {
    const at = i * WORK_STRIDE;
    const slot = work.data[at] | (work.data[at + 1] << 8);
    out[i] = verify(slot, work.data.subarray(at + 2, at + 34), work.data.subarray(at + 34, at + WORK_STRIDE)) ? SIG.valid : SIG.invalid;
  }
  return out;
}
