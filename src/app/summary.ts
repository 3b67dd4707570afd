/** The plain-text summary table `run` and `demo` print to stdout. */
import type { Report, Status } from '../core/types';

const MARK: Record<Status, string> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', skipped: 'SKIP' };

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function formatSummary(report: Report): string {
  const rows = report.results.map((r) => {
    const open = r.findings.filter((f) => !f.waived && f.severity !== 'info').length;
    const waived = r.findings.filter((f) => f.waived).length;
    const notes = r.findings.filter((f) => f.severity === 'info' && !f.waived).length;
    const counts = [open ? `${open} finding${open > 1 ? 's' : ''}` : '', waived ? `${waived} waived` : '', notes ? `${notes} note${notes > 1 ? 's' : ''}` : '']
      .filter(Boolean)
      .join(', ');
    const detail = r.error ? r.error : counts || r.title;
    return [MARK[r.status], r.check, r.severity, `${r.durationMs} ms`, detail];
  });
  const widths = [5, 0, 0, 0].map((w, i) => Math.max(w, ...rows.map((row) => row[i].length)));
  const lines = rows.map((row) => row.map((c, i) => (i < 4 ? pad(c, widths[i]) : c)).join('  '));
  const s = report.summary;
  lines.push('');
  lines.push(`${report.deployment}: ${s.pass} passed, ${s.fail} failed, ${s.error} error, ${s.skipped} skipped`);
  for (const r of report.results) {
    for (const f of r.findings) {
      if (f.severity === 'info' && !f.waived) continue;
      lines.push(`  ${f.waived ? 'waived ' : ''}[${f.severity}] ${r.check} ${f.resource}: ${f.message}`);
    }
  }
  return lines.join('\n') + '\n';
}
