/**
 * Ordinary audit activity: the rows between rotations. Payloads are nested, carry arrays,
 * non-ASCII text and integers, so a verifier that does not sort keys at every level or
 * hashes anything but UTF-8 fails on them; there are no floats, which jsonb would re-format.
 */
import type { Prng } from './prng';
import type { JsonValue } from './chain';

const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
const PLACES = ['Zürich', 'München', 'São Paulo', '東京', 'Kraków', 'Reykjavík', 'Dublin'];
const ROUTES = ['/v1/receipts', '/v1/policies/evaluate', '/v1/exports', '/v1/clients', '/v1/tokens'];

export interface Activity {
  action: string;
  payload: JsonValue;
}

export function nextActivity(prng: Prng): Activity {
  const r = prng.next();
  const tenant = prng.pick(TENANTS);
  if (r < 0.7) {
    return {
      action: 'receipt_issued',
      payload: {
        receipt_id: `rcpt_${prng.hex(8)}`,
        tenant,
        subject: { type: prng.chance(0.8) ? 'user' : 'client', id: `u_${prng.hex(4)}`, location: prng.pick(PLACES) },
        decision: prng.chance(0.93) ? 'allow' : 'deny',
        route: prng.pick(ROUTES),
        risk: prng.int(0, 100),
        tags: prng.chance(0.5) ? ['interactive'] : ['batch', `shard-${prng.int(1, 8)}`],
      },
    };
  }
  if (r < 0.9) {
    return {
      action: 'policy_evaluated',
      payload: { tenant, policy: `pol_${prng.hex(3)}`, version: prng.int(1, 40), result: { allowed: prng.chance(0.9), rules: prng.int(1, 12) } },
    };
  }
  if (r < 0.97) {
    return { action: 'export_requested', payload: { tenant, export_id: `exp_${prng.hex(6)}`, rows: prng.int(1, 50_000), format: prng.pick(['csv', 'jsonl']) } };
  }
  return { action: 'client_enrolled', payload: { tenant, client_id: `cl_${prng.hex(5)}`, note: `enrolled from ${prng.pick(PLACES)}` } };
}

/** The edited version of a payload (the `tampered-payload` violation): a denial turned into an allow. */
export function tamperPayload(payload: JsonValue): JsonValue {
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
    const p = { ...payload };
    p.decision = p.decision === 'allow' ? 'deny' : 'allow';
    p.edited = true;
    return p;
  }
  return { edited: true };
}
