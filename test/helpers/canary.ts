/**
 * The leak canary's detector: a plain substring search for every planted secret value and
 * every 8-character piece of it, in every output. It uses no product code — not the
 * scrubber, not the redaction — so a scrubber that stops working cannot blind the tests that
 * guard it.
 */

/** A piece this long of a secret, found anywhere, is a leak (a prefix as much as a suffix). */
export const PIECE = 8;

/** Every ed25519 PKCS#8 key begins with these base64 characters: public DER header, not secret. */
const PKCS8_ED25519_PREFIX = 'MC4CAQAwBQYDK2VwBCIEI';

/**
 * What to search for of one secret: the whole value, and every 8-character piece of each of
 * its lines (PEM armour lines and the public PKCS#8 ed25519 header are not secret).
 */
export function secretPieces(secret: string): string[] {
  const out = new Set<string>();
  if (secret.length > 0 && !secret.includes('\n')) out.add(secret);
  for (const line of secret.split(/\r?\n/)) {
    const t = line.trim();
    if (t.length === 0 || t.startsWith('-----')) continue;
    if (t.length < PIECE) {
      out.add(t);
      continue;
    }
    const from = t.startsWith(PKCS8_ED25519_PREFIX) ? PKCS8_ED25519_PREFIX.length - PIECE + 1 : 0;
    for (let i = from; i + PIECE <= t.length; i++) out.add(t.slice(i, i + PIECE));
  }
  return [...out];
}

/** `where: piece` for each planted value or piece that appears in an output, by plain substring search. */
export function findLeaks(secrets: Iterable<string>, outputs: Iterable<readonly [string, string]>): string[] {
  const texts = [...outputs];
  const leaks: string[] = [];
  for (const s of secrets) {
    for (const p of secretPieces(s)) {
      for (const [where, text] of texts) if (text.includes(p)) leaks.push(`${where}: ${JSON.stringify(p)}`);
    }
  }
  return leaks;
}
