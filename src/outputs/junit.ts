/**
 * JUnit XML for CI systems: one testsuite, one testcase per check (classname = check id,
 * name = title). `fail` → <failure> (message = how many findings fail it, body = the
 * findings), `error` → <error> (the check could not be evaluated — distinct from a
 * failure), `skipped` → <skipped>. Waived findings are listed in <system-out>.
 */
import type { CheckResult, Finding, Report } from '../core/types';
import { writeOutputFile } from './fs';

export const JUNIT_FILE = 'report.junit.xml';

// Characters XML 1.0 cannot carry at all (even escaped); they become U+FFFD.
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlEscape(s: string): string {
  return s
    .replace(INVALID_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Attribute values also keep their line breaks (a raw newline in an attribute is normalised to a space). */
function attr(s: string): string {
  return xmlEscape(s).replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

/** Findings that make a check fail: not waived, not an info note. */
export function failingFindings(r: CheckResult): Finding[] {
  return r.findings.filter((f) => !f.waived && f.severity !== 'info');
}

function findingLine(f: Finding): string {
  return `[${f.severity}] ${f.resource}: ${f.message} (id ${f.id})`;
}

function testcase(r: CheckResult): string {
  const open = `    <testcase classname="${attr(r.check)}" name="${attr(r.title)}" time="${seconds(r.durationMs)}"`;
  const parts: string[] = [];
  if (r.status === 'fail') {
    const failing = failingFindings(r);
    const body = failing.map((f) => `${findingLine(f)}\n  remediation: ${f.remediation}`).join('\n');
    parts.push(`      <failure message="${attr(`${failing.length} ${failing.length === 1 ? 'finding' : 'findings'}`)}" type="${attr(r.severity)}">${xmlEscape(body)}</failure>`);
  } else if (r.status === 'error') {
    parts.push(`      <error message="${attr(r.error ?? 'the check could not be evaluated')}" type="${attr(r.errorCode ?? 'error')}">${xmlEscape(r.error ?? '')}</error>`);
  } else if (r.status === 'skipped') {
    parts.push(`      <skipped message="${attr(r.error ?? 'skipped')}"/>`);
  }
  const others = r.findings.filter((f) => f.waived || f.severity === 'info' || r.status === 'error');
  if (others.length > 0) {
    const lines = others.map((f) =>
      f.waived ? `${findingLine(f)} — waived by ${f.waived.approver} (${f.waived.ticket}) until ${f.waived.expires}` : findingLine(f),
    );
    parts.push(`      <system-out>${xmlEscape(lines.join('\n'))}</system-out>`);
  }
  return parts.length === 0 ? `${open}/>` : `${open}>\n${parts.join('\n')}\n    </testcase>`;
}

export function formatJunit(report: Report): string {
  const s = report.summary;
  const tests = report.results.length;
  const time = seconds(Date.parse(report.finishedAt) - Date.parse(report.startedAt) || 0);
  const name = `aegis-audit ${report.deployment}`;
  const counts = `tests="${tests}" failures="${s.fail}" errors="${s.error}" skipped="${s.skipped}" time="${time}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${attr(name)}" ${counts}>`,
    `  <testsuite name="${attr(name)}" ${counts} timestamp="${attr(report.startedAt)}">`,
    '    <properties>',
    `      <property name="deployment" value="${attr(report.deployment)}"/>`,
    `      <property name="runId" value="${attr(report.runId)}"/>`,
    `      <property name="configDigest" value="${attr(report.configDigest)}"/>`,
    `      <property name="toolVersion" value="${attr(report.tool.version)}"/>`,
    '    </properties>',
    ...report.results.map(testcase),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export async function writeJunit(report: Report, dir: string): Promise<string> {
  return writeOutputFile(dir, JUNIT_FILE, formatJunit(report));
}
