/**
 * What user-facing text must not name — an internal runbook number ("seed 004"), an Aegis
 * runbook by file name, an internal design or reference file, a path outside the repository —
 * and the one detector the citation test (sources, docs, templates) and the docs test (what the
 * commands print and write) share. A hit says what to write instead.
 */
import { AEGIS_RUNBOOKS } from '../../src/core/checklist';

export const TITLES = Object.values(AEGIS_RUNBOOKS);
export const HOW =
  'cite the Aegis runbook by its title and section instead, e.g. *Secret Management*, "What to audit when reviewing a deployment" 1 ' +
  `(titles: ${TITLES.map((t) => `"${t}"`).join(', ')}; the constants are AEGIS_RUNBOOKS in src/core/checklist.ts)`;

export interface Rule {
  re: RegExp;
  what: string;
}

/** Forbidden everywhere, code comments included. */
export const EVERYWHERE: Rule[] = [
  { re: /\b(?:seeds?|runbooks?)\s+0\d\d\b/i, what: 'an internal runbook number' },
  { re: /\.\.\/shared\b/, what: 'a path outside the repository' },
  { re: /\/work\//, what: 'a path outside the repository' },
];
/** Forbidden in what a user reads (docs, templates, alerts, check text, checklist). */
export const USER_FACING: Rule[] = [
  ...EVERYWHERE,
  { re: /\bDESIGN\.md\b|\bSTYLE\.md\b/, what: 'an internal design document (describe the expectation in docs/aegis-formats.md and link that)' },
  { re: /\bshared\/(?:reference|runbooks)\b|\bwire-protocols\.md\b|\baegis-runtime-facts\.md\b/, what: 'an internal reference file' },
  {
    re: /\b(?:secret-management|secrets-and-identity|enforce-vault-oidc-mtls|secrets-and-supply-chain|vault-transit-signing)\.md\b/,
    what: 'an Aegis runbook by file name',
  },
];

export function violations(text: string, where: string, rules: Rule[]): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const r of rules) {
      const m = r.re.exec(line);
      if (m) out.push(`${where}:${i + 1}: "${m[0]}" is ${r.what}: ${HOW}`);
    }
  });
  return out;
}
