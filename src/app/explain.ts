/**
 * `aegis-audit explain <check>`: everything a reader needs about one check, from its own
 * metadata — what a pass proves, the most severe a finding can be, the sources it reads, its
 * options with types and defaults, the findings it can report, the remediation, and its runbook
 * (with the runbook's "Why it matters", which names the Aegis runbook the check comes from).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { AnyCheck } from '../core/define-check';
import { AuditError, ErrorCodes } from '../core/errors';
import type { Registry } from '../core/registry';
import { CHECKLIST } from '../core/checklist';
import { checkOptionKeys } from '../config/reference';
import { PACKAGE_ROOT } from '../outputs/render';

function wrap(text: string, width = 92, indent = '  '): string {
  const out: string[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    let line = '';
    for (const word of para.replace(/\s+/g, ' ').trim().split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        out.push(indent + line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) out.push(indent + line);
    out.push('');
  }
  return out.join('\n').replace(/\n+$/, '\n');
}

/** Where the runbook is on this machine: plugin runbooks are absolute, built-in ones ship in the package. */
export function runbookFile(runbook: string): string | undefined {
  if (/^https?:\/\//.test(runbook)) return undefined;
  return isAbsolute(runbook) ? runbook : join(PACKAGE_ROOT, runbook);
}

/** A `## heading` section of a Markdown file, without the heading. */
function section(markdown: string, heading: RegExp): string | undefined {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^##\s/.test(l) && heading.test(l));
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^##?\s/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n').trim() || undefined;
}

export function findCheck(registry: Registry, id: string): AnyCheck {
  const check = registry.get(id);
  if (!check) throw new AuditError(ErrorCodes.USAGE, `unknown check ${id} (known: ${[...registry.keys()].join(', ')})`);
  return check;
}

export function explainCheck(registry: Registry, id: string): string {
  const { meta, messages } = findCheck(registry, id);
  const options = checkOptionKeys(new Map([[id, registry.get(id) as AnyCheck]]))[0].options;
  const items = meta.checklist.map((i) => CHECKLIST.find((c) => c.id === i)?.title ?? i);
  const sources = meta.sources.map((s) => (typeof s === 'string' ? s : `${s.join(' or ')}`)).join(' + ') || '(none)';
  const out: string[] = [
    `${meta.id} — ${meta.title}`,
    '',
    `severity   ${meta.severity} (the most severe a finding of this check can be; each finding carries its own)`,
    `sources    ${sources} (a source that is not configured makes the check skipped, with the reason)`,
    `schedule   ${meta.schedule} (the daemon's default; checks.${meta.id}.schedule overrides)`,
    `checklist  ${items.length ? items.join('; ') : '(none)'}`,
    '',
    'What a pass proves',
    wrap(meta.description),
  ];
  const file = runbookFile(meta.runbook);
  const why = file && existsSync(file) ? section(readFileSync(file, 'utf8'), /why it matters/i) : undefined;
  if (why) out.push('Why it matters', wrap(why));
  out.push(`Options (checks.${meta.id}.options in audit.yaml)`);
  if (options.length === 0) out.push('  none', '');
  else {
    const w = Math.max(...options.map((o) => o.key.length));
    const t = Math.max(...options.map((o) => o.type.length));
    for (const o of options) out.push(`  ${o.key.padEnd(w)}  ${o.type.replace(/`/g, '').padEnd(t)}  default ${o.required ? '(required)' : o.default.replace(/`/g, '')}`);
    out.push('');
  }
  out.push('Findings it can report (messageId: message)');
  const mw = Math.max(...Object.keys(messages).map((k) => k.length));
  for (const [k, text] of Object.entries(messages)) out.push(`  ${k.padEnd(mw)}  ${text}`);
  out.push('', 'Remediation', wrap(meta.remediation));
  out.push(`Runbook    ${meta.runbook}${file && file !== meta.runbook ? ` (${existsSync(file) ? file : 'not installed here'})` : ''}`);
  return out.join('\n') + '\n';
}
