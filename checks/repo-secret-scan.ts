/**
 * No production secret is committed to the repository, and its detect-secrets baseline is
 * reviewed. *Secrets and Supply-chain Guidance for Aegis* §4 "Pre-commit & local scanning" asks
 * for a detect-secrets baseline in the repository (`.secrets.baseline`), updated only after
 * manual review; §8 "Incident response" says a committed secret is rotated and purged from
 * history. *Runbook: Secrets & Identity for Aegis* §10 lists "No production secrets in repo"
 * before a pilot. This check evidences that item instead of a person attesting it.
 *
 * Each configured checkout is read file by file as a stream (binary files and files over the
 * size bound are not scanned) with the shared detectors of the log scan: the value of every
 * secret the auditor can read (env files, SSM, Vault), and secret shapes after detect-secrets'
 * plugins. A shape found in a file passes only when the baseline records it, for that file, as
 * a reviewed false positive (`is_secret: false`), matched the way detect-secrets matches:
 * by the SHA-1 of the secret as its plugin extracts it (`hashed_secret`) and the file name. A
 * live secret value is never a false positive. The baseline itself must be there, parse, and
 * hold an audit decision for every entry; an entry audited as a real secret (`is_secret: true`)
 * is a secret that was committed. Findings name the file (relative to the root), the line and
 * the detector — never the value, any piece of it, or its hash.
 */
import { createHash } from 'node:crypto';
import { parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { AuditError } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { RepoFile } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';
import { KnownValueMatcher, SHAPE_DETECTORS, scanOptions, scanShapes } from './lib/secret-scan';

const KNOWN = 'known-secret';
const TITLES: Record<string, string> = Object.fromEntries(SHAPE_DETECTORS.map((d) => [d.id, d.title]));
/** Paths are quoted in messages at most this long; resources keep them (gated) whole. */
const MAX_PATH_IN_MESSAGE = 160;
/** Line numbers kept per finding in evidence. */
const MAX_LINES = 20;
/** A line longer than this is scanned in pieces that overlap by OVERLAP bytes. */
const MAX_LINE = 1024 * 1024;
const OVERLAP = 4096;
/** Git's test for binary content: a NUL byte in the first 8000 bytes. */
const BINARY_PROBE = 8000;
const SHA1_HEX = /^[0-9a-f]{40}$/;

// ------------------------------------------------------------------------- the baseline

/** One entry of a detect-secrets baseline (`results[<file>][i]`), as detect-secrets loads it. */
export interface BaselineEntry {
  file: string;
  type: string;
  hashedSecret: string;
  lineNumber?: number;
  /** The audit decision: true a real secret, false a false positive, undefined not yet audited. */
  isSecret?: boolean;
}

export type ParsedBaseline = { ok: true; version: string; entries: BaselineEntry[] } | { ok: false; problem: string; line: number; column: number };

function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

function prop(obj: Node, key: string): Node | undefined {
  for (const p of obj.children ?? []) if (p.type === 'property' && p.children?.[0]?.value === key) return p.children[1];
  return undefined;
}

const KINDS: Record<string, string> = { object: 'an object', array: 'a list', string: 'a string', number: 'a number', boolean: 'true or false', null: 'null' };

/**
 * Reads a detect-secrets baseline: `{version, plugins_used, filters_used, results, generated_at}`
 * where `results` maps a file name to its entries `{type, filename, hashed_secret, is_verified,
 * line_number?, is_secret?}` (detect-secrets' `PotentialSecret.json()`; `line_number` is left out
 * by `--slim`, `is_secret` until `detect-secrets audit` records a decision). A problem is
 * located by line and column; the message names the field by its JSON path, never its value.
 */
export function parseBaseline(text: string): ParsedBaseline {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const fail = (problem: string, offset: number): ParsedBaseline => ({ ok: false, problem, ...position(text, offset) });
  if (errors.length > 0 || !root) {
    const e = errors[0];
    return fail(`not valid JSON (${e ? printParseErrorCode(e.error) : 'empty'})`, e?.offset ?? 0);
  }
  const expect = (n: Node | undefined, type: Node['type'], path: string, parent: Node): n is Node => {
    if (!n) throw fail(`${path} is missing`, parent.offset);
    if (n.type !== type) throw fail(`${path} is ${KINDS[n.type]}, not ${KINDS[type]}`, n.offset);
    return true;
  };
  try {
    if (root.type !== 'object') return fail(`the baseline is ${KINDS[root.type]}, not a JSON object`, root.offset);
    const version = prop(root, 'version');
    expect(version, 'string', 'version', root);
    for (const key of ['plugins_used', 'filters_used'] as const) {
      const n = prop(root, key);
      if (n) expect(n, 'array', key, root);
    }
    const generated = prop(root, 'generated_at');
    if (generated) expect(generated, 'string', 'generated_at', root);
    const results = prop(root, 'results');
    expect(results, 'object', 'results', root);
    const entries: BaselineEntry[] = [];
    for (const p of results!.children ?? []) {
      const key = String(p.children?.[0]?.value ?? '');
      const list = p.children?.[1];
      const path = `results[${JSON.stringify(key)}]`;
      expect(list, 'array', path, p);
      (list!.children ?? []).forEach((item, i) => {
        const at = `${path}[${i}]`;
        expect(item, 'object', at, list!);
        const type = prop(item, 'type');
        expect(type, 'string', `${at}.type`, item);
        const hashed = prop(item, 'hashed_secret');
        expect(hashed, 'string', `${at}.hashed_secret`, item);
        if (!SHA1_HEX.test(String(hashed!.value).toLowerCase())) throw fail(`${at}.hashed_secret is not a SHA-1 hex digest`, hashed!.offset);
        const filename = prop(item, 'filename');
        if (filename) expect(filename, 'string', `${at}.filename`, item);
        const verified = prop(item, 'is_verified');
        if (verified) expect(verified, 'boolean', `${at}.is_verified`, item);
        const line = prop(item, 'line_number');
        if (line) {
          expect(line, 'number', `${at}.line_number`, item);
          if (!Number.isInteger(line.value) || (line.value as number) < 0) throw fail(`${at}.line_number is not a line number`, line.offset);
        }
        const isSecret = prop(item, 'is_secret');
        // detect-secrets writes no is_secret until audited; null reads as not audited too.
        if (isSecret && isSecret.type !== 'null') expect(isSecret, 'boolean', `${at}.is_secret`, item);
        entries.push({
          // detect-secrets loads an entry as {filename: <key>, **entry}: the entry's own filename wins.
          file: normalisePath(filename ? String(filename.value) : key),
          type: String(type!.value),
          hashedSecret: String(hashed!.value).toLowerCase(),
          ...(line ? { lineNumber: line.value as number } : {}),
          ...(isSecret && isSecret.type === 'boolean' ? { isSecret: isSecret.value as boolean } : {}),
        });
      });
    }
    return { ok: true, version: String(version!.value), entries };
  } catch (e) {
    if (typeof e === 'object' && e !== null && 'ok' in e) return e as ParsedBaseline;
    throw e;
  }
}

/** Baseline file names are relative to the repository root, `/`-separated (detect-secrets converts OS paths). */
function normalisePath(p: string): string {
  return p.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
}

// ------------------------------------------------------------------------- what detect-secrets hashes

/**
 * The secret of a shape match as the corresponding detect-secrets plugin yields it, so its
 * SHA-1 is the baseline's `hashed_secret`: PrivateKeyDetector yields its denylist text
 * (`BEGIN RSA PRIVATE KEY`), JwtTokenDetector `header.payload.` (its signature part matches
 * lazily, i.e. empty), AWSKeyDetector the key id or the 40-character secret, SlackDetector the
 * token or the webhook URL with its `https://`. For the shapes detect-secrets has no plugin for
 * (its KeywordDetector yields the assigned value) it is the token without its key name.
 */
export function detectSecretsSecret(detector: string, text: string, before: string): string {
  switch (detector) {
    case 'private-key': {
      const m = /BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?|PuTTY-User-Key-File-\d+/.exec(text);
      return m ? m[0] : text;
    }
    case 'jwt':
      return /^eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.?/.exec(text)?.[0] ?? text;
    case 'aws-secret-access-key':
      return text.slice(-40);
    case 'slack-webhook':
      return before.toLowerCase().endsWith('https://') ? `${before.slice(-8)}${text}` : text;
    case 'bearer-token':
      return text.replace(/^\S+\s+/, '');
    case 'splunk-hec-token':
    case 'datadog-api-key':
    case 'pagerduty-key':
      return /[A-Za-z0-9+/_-]+$/.exec(text)?.[0] ?? text;
    default:
      return text;
  }
}

// ------------------------------------------------------------------------- the scan

interface Hit {
  detector: string;
  /** For known values: the secret's name (never its value). */
  secret?: string;
  line: number;
  /** SHA-1 hex of the secret as detect-secrets hashes it: compared with the baseline, never shown. */
  hash: string;
}

interface FileScan {
  bytes: number;
  binary: boolean;
  hits: Hit[];
}

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');

/**
 * Streams one file through the matcher and the shape detectors, a block of whole lines at a
 * time. The last line of each block is searched again with the next (a PEM armor line whose
 * body starts the next block; a value cut by a forced split of a very long line), and a hit
 * already reported from it is not reported twice.
 */
export async function scanFile(
  file: RepoFile,
  matcher: KnownValueMatcher,
  enabled: ReadonlySet<string>,
  signal?: AbortSignal,
): Promise<FileScan> {
  const hits: Hit[] = [];
  let bytes = 0;
  let pending: Buffer = Buffer.alloc(0);
  /** Absolute offset and line number of pending[0]; how much of pending was searched already. */
  let base = 0;
  let baseLine = 1;
  let searched = 0;
  let seen = new Set<string>();
  let first = true;

  const scanBlock = (block: Buffer, carryFrom: number) => {
    const found: { detector: string; secret?: string; start: number; end: number }[] = [];
    matcher.scan(block, (p, at) => {
      for (const name of matcher.labels(p)) found.push({ detector: KNOWN, secret: name, start: at, end: at + matcher.patternLength(p) });
    });
    scanShapes(block, (id, start, end) => {
      if (enabled.has(id)) found.push({ detector: id, start, end });
    });
    found.sort((a, b) => a.start - b.start);
    const next = new Set<string>();
    let line = baseLine;
    let counted = 0;
    for (const f of found) {
      for (let i = block.indexOf(10, counted); i >= 0 && i < f.start; i = block.indexOf(10, i + 1)) line++;
      counted = Math.max(counted, f.start);
      const key = `${f.detector}\n${f.secret ?? ''}\n${base + f.start}`;
      if (f.start >= carryFrom) next.add(key);
      if (f.start < searched && seen.has(key)) continue;
      const secret =
        f.detector === KNOWN
          ? block.subarray(f.start, f.end)
          : detectSecretsSecret(f.detector, block.toString('latin1', f.start, f.end), block.toString('latin1', Math.max(0, f.start - 8), f.start));
      hits.push({ detector: f.detector, ...(f.secret !== undefined ? { secret: f.secret } : {}), line, hash: sha1(secret) });
    }
    seen = next;
  };

  /** Searches pending[0, cut) and keeps its last line (bounded) as the start of the next block. */
  const advance = (cut: number) => {
    const block = pending.subarray(0, cut);
    const lastLine = cut >= 2 ? block.lastIndexOf(10, cut - 2) + 1 : 0;
    const carryFrom = Math.max(lastLine, cut - OVERLAP, 0);
    scanBlock(block, carryFrom);
    for (let i = pending.indexOf(10); i >= 0 && i < carryFrom; i = pending.indexOf(10, i + 1)) baseLine++;
    pending = pending.subarray(carryFrom);
    base += carryFrom;
    searched = cut - carryFrom;
  };

  for await (const chunk of file.chunks(signal)) {
    if (first) {
      first = false;
      if (chunk.subarray(0, BINARY_PROBE).includes(0)) return { bytes: 0, binary: true, hits: [] };
    }
    bytes += chunk.length;
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let cut = pending.lastIndexOf(10) + 1;
    if (cut <= searched) {
      if (pending.length - searched < MAX_LINE) continue;
      cut = pending.length;
    }
    advance(cut);
  }
  if (pending.length > searched) advance(pending.length);
  return { bytes, binary: false, hits };
}

// ------------------------------------------------------------------------- the check

interface Found {
  root: string;
  path: string;
  detector: string;
  secret?: string;
  lines: number[];
  count: number;
  /** A known value the baseline calls a false positive: it is the live value all the same. */
  markedFalsePositive: boolean;
}

export default defineCheck({
  meta: {
    id: 'repo-secret-scan',
    title: 'No secret is committed to the repository, and its detect-secrets baseline is reviewed',
    description:
      "Reads every file of the configured repository checkouts (binary and oversized files excepted) for the value of every secret the auditor can read (env files, SSM, Vault) and for secret shapes (private keys, JWTs, acp_ API keys, bearer tokens, AWS, Slack, Splunk HEC, Datadog and PagerDuty keys), and reads the repository's detect-secrets baseline. A pass proves no live secret value is in the tree, every secret-shaped token is recorded in the baseline as a reviewed false positive, and the baseline exists with an audit decision on every entry — the 'repository secret scan (detect-secrets baseline reviewed) is clean' the pre-pilot checklist otherwise needs a person to attest.",
    severity: 'critical',
    sources: ['repo'],
    schedule: '23 * * * *',
    // A secret committed to the repository is a leak from the first run that finds it.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets'],
    runbook: 'docs/runbooks/repo-secret-scan.md',
    // A large checkout is read whole each run.
    timeout: 10 * 60_000,
    remediation:
      'A live secret or a secret audited as real in the repository: rotate it now, remove it from the tree and from git history (git filter-repo), then rescan (Secrets and Supply-chain Guidance for Aegis, §8). A secret-shaped token or baseline entry not yet reviewed: run detect-secrets audit .secrets.baseline, mark each entry, and commit the reviewed baseline (§4).',
  },
  messages: {
    knownValue: 'File {{file}} holds the value of {{secret}} at line {{line}} ({{count}} occurrence(s)){{note}}.',
    shape: 'File {{file}} holds {{shape}} at line {{line}} ({{count}} occurrence(s)) that the baseline does not record as a reviewed false positive.',
    baselineMissing: 'Root {{root}} has no detect-secrets baseline at {{baseline}}: nothing records which secret-shaped tokens were reviewed.',
    baselineUnusable: 'The detect-secrets baseline {{baseline}} of root {{root}} cannot be used: {{problem}} (line {{line}}, column {{column}}).',
    baselineUnreadable: 'The detect-secrets baseline {{baseline}} of root {{root}} cannot be read: {{problem}}.',
    baselineUnreviewed: 'The baseline lists {{count}} potential secret(s) in {{file}} ({{types}}) with no audit decision (is_secret).',
    baselineSecret: 'The baseline records {{count}} real secret(s) in {{file}} ({{types}}), audited as is_secret: true.',
    noKnownValues: 'No secret values could be read (no secrets source configured), so the repository was searched for secret shapes only.',
    unscanned: '{{count}} file(s) of root {{root}} were not scanned (the first: {{first}}, {{reason}}).',
  },
  options: z.object({
    ...scanOptions,
  }),
  async run(ctx) {
    const repo = ctx.source('repo');
    const enabled = new Set(ctx.options.detectors);
    const secrets = ctx.sources.secrets;
    const holders = secrets ? await secrets.all() : [];
    if (!secrets) ctx.report({ messageId: 'noKnownValues', resource: resource({ source: 'secrets' }), severity: 'info' });

    // The baselines first: a broken one is reported even when the tree is too large to read.
    const baselines = new Map<string, BaselineEntry[]>();
    for (const root of repo.roots()) {
      const b = await repo.baseline(root, ctx.signal);
      const where = untrusted.id(`${root}:${b.path}`);
      const shownPath = untrusted.text(b.path, MAX_PATH_IN_MESSAGE);
      if (b.status === 'absent') {
        ctx.report({ messageId: 'baselineMissing', data: { root, baseline: shownPath }, resource: resource({ baseline: where }), evidence: { root, baseline: shownPath }, severity: 'medium' });
        continue;
      }
      if (b.status === 'unreadable') {
        const problem = untrusted.text(b.reason, 200);
        ctx.report({ messageId: 'baselineUnreadable', data: { root, baseline: shownPath, problem }, resource: resource({ baseline: where }), evidence: { root, baseline: shownPath, problem }, severity: 'medium' });
        continue;
      }
      const parsed = parseBaseline(b.text);
      if (!parsed.ok) {
        const problem = untrusted.text(parsed.problem, 240);
        ctx.report({
          messageId: 'baselineUnusable',
          data: { root, baseline: shownPath, problem, line: parsed.line, column: parsed.column },
          resource: resource({ baseline: where }),
          evidence: { root, baseline: shownPath, problem, line: parsed.line, column: parsed.column },
          severity: 'medium',
        });
        continue;
      }
      baselines.set(root, parsed.entries);
      reportEntries(root, parsed.entries);
    }

    const matcher = new KnownValueMatcher(
      holders.map((h) => ({ label: h.name, value: h.value.reveal() })),
      { minLength: ctx.options.min_secret_length },
    );
    let bytes = 0;
    let files = 0;
    let binary = 0;
    let falsePositives = 0;
    try {
      for (const root of repo.roots()) {
        // file → hashes audited as false positives (is_secret: false).
        const audited = new Map<string, Set<string>>();
        for (const e of baselines.get(root) ?? []) {
          if (e.isSecret !== false) continue;
          let set = audited.get(e.file);
          if (!set) audited.set(e.file, (set = new Set()));
          set.add(e.hashedSecret);
        }
        const unscanned: { path: string; reason: string }[] = [];
        for await (const f of repo.files(root, ctx.signal)) {
          ctx.signal.throwIfAborted();
          if ('skipped' in f) {
            unscanned.push({ path: f.path, reason: f.skipped });
            continue;
          }
          let scan: FileScan;
          try {
            scan = await scanFile(f, matcher, enabled, ctx.signal);
          } catch (e) {
            // A file that went away or turned unreadable mid-walk is not scanned; the root itself failing is an error.
            if (ctx.signal.aborted || !(e instanceof AuditError)) throw e;
            unscanned.push({ path: f.path, reason: 'not readable' });
            continue;
          }
          if (scan.binary) {
            binary++;
            continue;
          }
          files++;
          bytes += scan.bytes;
          const fps = audited.get(f.path);
          const byKey = new Map<string, Found>();
          for (const h of scan.hits) {
            const isFp = fps?.has(h.hash) ?? false;
            if (isFp && h.detector !== KNOWN) {
              falsePositives++;
              continue;
            }
            const k = `${h.detector}\n${h.secret ?? ''}`;
            const prev = byKey.get(k);
            if (prev) {
              prev.count++;
              if (prev.lines.length < MAX_LINES && !prev.lines.includes(h.line)) prev.lines.push(h.line);
              prev.markedFalsePositive ||= isFp;
            } else byKey.set(k, { root, path: f.path, detector: h.detector, ...(h.secret !== undefined ? { secret: h.secret } : {}), lines: [h.line], count: 1, markedFalsePositive: isFp });
          }
          for (const found of byKey.values()) reportFound(found);
        }
        if (unscanned.length > 0) {
          const first = unscanned[0];
          ctx.report({
            messageId: 'unscanned',
            data: { count: unscanned.length, root, first: untrusted.text(first.path, MAX_PATH_IN_MESSAGE), reason: untrusted.text(first.reason, 120) },
            resource: resource({ root, unscanned: 'files' }),
            evidence: { root, files: unscanned.length, examples: unscanned.slice(0, 10).map((u) => ({ path: untrusted.text(u.path, MAX_PATH_IN_MESSAGE), reason: untrusted.text(u.reason, 120) })) },
            severity: 'info',
          });
        }
      }
    } finally {
      matcher.dispose();
    }
    ctx.measure('repo_bytes_scanned', bytes, 'Repository bytes searched for secrets in this run');
    ctx.measure('repo_files_scanned', files, 'Repository files searched for secrets in this run (binary files excepted)');
    ctx.measure('repo_files_binary', binary, 'Repository files not searched because they are binary');
    ctx.measure('repo_false_positives', falsePositives, 'Secret-shaped tokens the baseline records as reviewed false positives');

    function reportEntries(root: string, entries: readonly BaselineEntry[]): void {
      const byFile = new Map<string, { unreviewed: BaselineEntry[]; secret: BaselineEntry[] }>();
      for (const e of entries) {
        if (e.isSecret === false) continue;
        let g = byFile.get(e.file);
        if (!g) byFile.set(e.file, (g = { unreviewed: [], secret: [] }));
        (e.isSecret === true ? g.secret : g.unreviewed).push(e);
      }
      for (const [file, g] of [...byFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const id = untrusted.id(`${root}:${file}`);
        const shown = untrusted.text(`${root}:${file}`, MAX_PATH_IN_MESSAGE);
        for (const [kind, list] of [['unreviewed', g.unreviewed], ['secret', g.secret]] as const) {
          if (list.length === 0) continue;
          const types = [...new Set(list.map((e) => untrusted.text(e.type, 60)))].slice(0, 5);
          const lines = list.flatMap((e) => (e.lineNumber ? [e.lineNumber] : [])).slice(0, MAX_LINES);
          ctx.report({
            messageId: kind === 'secret' ? 'baselineSecret' : 'baselineUnreviewed',
            data: { file: shown, count: list.length, types: types.join(', ') },
            resource: resource({ file: id, baseline: kind }),
            evidence: { root, file: id, entries: list.length, types, lines },
            severity: kind === 'secret' ? 'high' : 'medium',
          });
        }
      }
    }

    function reportFound(f: Found): void {
      const id = untrusted.id(`${f.root}:${f.path}`);
      const shown = untrusted.text(`${f.root}:${f.path}`, MAX_PATH_IN_MESSAGE);
      const evidence = { root: f.root, file: id, detector: f.detector, lines: [...f.lines].sort((a, b) => a - b), occurrences: f.count };
      const line = Math.min(...f.lines);
      if (f.secret !== undefined) {
        const name = untrusted.text(f.secret, 80);
        ctx.report({
          messageId: 'knownValue',
          data: { file: shown, secret: name, line, count: f.count, note: f.markedFalsePositive ? '; the baseline marks it a false positive, but it is the live value' : '' },
          resource: resource({ file: id, detector: KNOWN, secret: untrusted.id(f.secret) }),
          evidence: { ...evidence, secret: name, ...(f.markedFalsePositive ? { baseline: 'marked false positive' } : {}) },
          severity: 'critical',
        });
      } else {
        ctx.report({
          messageId: 'shape',
          data: { file: shown, shape: TITLES[f.detector] ?? f.detector, line, count: f.count },
          resource: resource({ file: id, detector: f.detector }),
          evidence,
          severity: 'high',
        });
      }
    }
  },
});
