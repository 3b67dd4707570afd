/**
 * What the receipt-chain ranges tests share: a sandbox config with only receipt-chain enabled
 * (its options given), replica daemons started and watched, and the failing findings that must
 * agree between one process and the ranges.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { builtinChecks } from '../../checks';
import { rebaseConfigPaths } from '../../src/config/paths';
import type { Sandbox } from '../../src/sandbox/build';
import type { CheckResult, Finding } from '../../src/core/types';
import { waitFor } from '../daemon/helpers';
import { sql } from './helpers';

const CLI = resolve(__dirname, '../../bin/aegis-audit.js');

/** The sandbox's config written into `dir` with receipt-chain alone enabled, as `receiptChain` says, then edited. */
export function rangesConfig(sb: Sandbox, dir: string, receiptChain: Record<string, unknown>, edit: (raw: Record<string, unknown>) => void): string {
  const raw = parse(readFileSync(sb.configPath, 'utf8')) as Record<string, unknown>;
  rebaseConfigPaths(raw, dirname(sb.configPath), dir);
  const checks: Record<string, unknown> = Object.fromEntries(builtinChecks.map((c) => [c.meta.id, { enabled: false }]));
  checks['receipt-chain'] = receiptChain;
  raw.checks = checks;
  edit(raw);
  const file = join(dir, 'audit.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

/** `aegis-audit daemon` replicas by name, with the tail of what each said. */
export class Replicas {
  readonly children = new Map<string, ChildProcess>();
  readonly #logs = new Map<string, string>();

  start(name: string, config: string): void {
    const child = spawn(process.execPath, [CLI, 'daemon', '--config', config, '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AEGIS_AUDIT_REPLICA: name, AEGIS_AUDIT_LOG_LEVEL: 'info' },
    });
    this.#logs.set(name, '');
    const append = (c: Buffer) => this.#logs.set(name, ((this.#logs.get(name) ?? '') + c.toString()).slice(-200_000));
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.children.set(name, child);
  }

  /** Each replica's exit status and log tail, for a wait that timed out. */
  state(): string {
    return [...this.children].map(([name, c]) => `--- ${name} (exit ${c.exitCode ?? '-'}, signal ${c.signalCode ?? '-'}):\n${(this.#logs.get(name) ?? '').slice(-3_000)}`).join('\n');
  }

  /** waitFor, and on its timeout the ranges' state in the queue's database and what the replicas said. */
  async waitFor<T>(queueUrl: string, fn: () => Promise<T | undefined | false>, what: string, timeoutMs: number, everyMs: number): Promise<T> {
    try {
      return await waitFor(fn, what, timeoutMs, everyMs);
    } catch (e) {
      const parts = await sql(queueUrl, 'SELECT idx, replica, attempts, started_at, finished_at FROM aegis_fleet.fleet_parts ORDER BY idx').catch((x: unknown) => String(x));
      throw new Error(`${(e as Error).message}\nranges: ${JSON.stringify(parts)}\n${this.state()}`);
    }
  }

  killAll(): void {
    for (const c of this.children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

/** What a failing finding says: everything that must agree between one process and the ranges. */
export const failingFindings = (r: CheckResult) =>
  r.findings
    .filter((f: Finding) => f.severity !== 'info')
    .map((f) => ({ messageId: f.messageId, resource: f.resource, message: f.message, evidence: f.evidence }))
    .sort((a, b) => a.resource.localeCompare(b.resource));
