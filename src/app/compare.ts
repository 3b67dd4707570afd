/** Comparing what an audit found with what a sandbox declared it seeded. */
import type { Report } from '../core/types';

export interface ManifestEntry {
  check: string;
  resource: string;
}

export interface ManifestComparison {
  expected: number;
  found: number;
  missed: ManifestEntry[];
  extra: ManifestEntry[];
}

const key = (e: ManifestEntry) => `${e.check}\u0000${e.resource}`;

/** Failing findings (not info notes, waived or not) of the report, as manifest entries. */
export function failingFindings(report: Report): ManifestEntry[] {
  return report.results.flatMap((r) => r.findings.filter((f) => f.severity !== 'info').map((f) => ({ check: f.check, resource: f.resource })));
}

export function compareWithManifest(report: Report, manifest: { violations: ManifestEntry[] }): ManifestComparison {
  const found = failingFindings(report);
  const foundKeys = new Set(found.map(key));
  const expectedKeys = new Set(manifest.violations.map(key));
  return {
    expected: expectedKeys.size,
    found: foundKeys.size,
    missed: manifest.violations.filter((v) => !foundKeys.has(key(v))),
    extra: found.filter((f) => !expectedKeys.has(key(f))),
  };
}
