import { diffReports } from '../../src/outputs/diff';
import { buildReport, finding, result } from './fixtures';

const prev = buildReport(
  [
    result('historical-keys', 'H', 'critical', 'fail', [
      finding('historical-keys', 'critical', 'fingerprint=sha256:a', 'still there'),
      finding('historical-keys', 'critical', 'fingerprint=sha256:b', 'fixed'),
    ]),
    result('receipt-chain', 'R', 'critical', 'fail', [finding('receipt-chain', 'critical', 'row=1', 'broken')]),
    result('credential-age', 'C', 'medium', 'fail', [finding('credential-age', 'medium', 'api_key=k1', 'old')]),
  ],
  { runId: 'run-1' },
);

describe('diffReports', () => {
  it('splits findings into new, resolved, still open and not re-checked, by stable id', () => {
    const cur = buildReport([
      result('historical-keys', 'H', 'critical', 'fail', [
        finding('historical-keys', 'critical', 'fingerprint=sha256:a', 'message wording changed'),
        finding('historical-keys', 'critical', 'fingerprint=sha256:c', 'new one'),
      ]),
      result('receipt-chain', 'R', 'critical', 'error', [], 'postgres: down'),
      // credential-age not run at all this time
    ]);
    const d = diffReports(prev, cur);
    expect(d.hasPrevious).toBe(true);
    expect(d.previousRunId).toBe('run-1');
    expect(d.new.map((f) => f.resource)).toEqual(['fingerprint=sha256:c']);
    expect(d.open.map((f) => [f.resource, f.message])).toEqual([['fingerprint=sha256:a', 'message wording changed']]);
    expect(d.resolved.map((f) => f.resource)).toEqual(['fingerprint=sha256:b']);
    expect(d.unverified.map((f) => f.resource).sort()).toEqual(['api_key=k1', 'row=1']);
  });

  it('counts a finding of a now-passing check as resolved', () => {
    const cur = buildReport([result('credential-age', 'C', 'medium', 'pass')]);
    expect(diffReports(prev, cur).resolved.map((f) => f.resource)).toEqual(['api_key=k1']);
  });

  it('without a previous run has no baseline: everything is new, nothing resolved', () => {
    const d = diffReports(undefined, prev);
    expect(d).toMatchObject({ hasPrevious: false, resolved: [], open: [], unverified: [] });
    expect(d.new).toHaveLength(4);
  });
});
