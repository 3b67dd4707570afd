/**
 * Shared by the adversarial suite: planting canaries and finding them again with a plain
 * substring search (never the product's scrubber), forking the real CLI, and bounded waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { join, resolve } from 'node:path';

export const CLI = resolve(__dirname, '../../bin/aegis-audit.js');
export const PIECE = 8;
/** Every ed25519 PKCS#8 key begins with these base64 characters: public, not secret. */
const PKCS8_ED25519_PREFIX = 'MC4CAQAwBQYDK2VwBCIEI';

export function requireBuild(): void {
  if (!existsSync(resolve(__dirname, '../../dist/src/cli.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
}

/** Deterministic random-looking text: `n` base64url characters derived from a label. */
export function canaryToken(label: string, n = 43): string {
  let out = '';
  for (let i = 0; out.length < n; i++) out += createHash('sha256').update(`${label}:${i}`).digest('base64url');
  return out.slice(0, n);
}

/** Secrets in the shapes a deployment really leaks, none of which the auditor ever reads. */
export function shapedCanaries(label: string) {
  const t = (s: string, n?: number) => canaryToken(`${label}:${s}`, n);
  const jwt = `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: t('sub', 12), n: t('jwt-n', 16) })).toString('base64url')}.${t('jwt-sig')}`;
  return {
    jwt,
    bearer: `Bearer ${t('bearer', 40)}`,
    apiKey: `acp_${t('acp', 32)}`,
    aws: `AKIA${t('aws', 16).toUpperCase().replace(/[^A-Z0-9]/g, 'Q')}`,
    vault: `hvs.${t('vault', 90)}`,
    random: t('random', 44),
    pem: [`-----BEGIN ${['PRIVATE', 'KEY'].join(' ')}-----`, t('pem1', 64), t('pem2', 64), `-----END ${['PRIVATE', 'KEY'].join(' ')}-----`].join('\n'),
  };
}

/** The value and every 8-character piece of it (per line; PEM armor lines are public). */
export function pieces(secret: string): string[] {
  const out: string[] = [];
  for (const line of secret.split(/\r?\n/)) {
    const t = line.trim();
    if (t.startsWith('-----')) continue;
    const from = t.startsWith(PKCS8_ED25519_PREFIX) ? PKCS8_ED25519_PREFIX.length - PIECE + 1 : 0;
    for (let i = from; i + PIECE <= t.length; i++) out.push(t.slice(i, i + PIECE));
  }
  return out;
}

/** The characters mkdtemp (libuv) fills its six random places with. */
const MKDTEMP_CHARS = /^[A-Za-z0-9]$/;

/**
 * The 8-character pieces of a planted secret that the path of a directory made by
 * `mkdtemp(<parent>/<prefix>)` could contain, whichever six characters mkdtemp picks: the
 * product rightly scrubs any piece of a secret it read, so a canary sharing a piece with the
 * test's own temp path turns that path into `[redacted]` in one run out of a few dozen.
 */
export function tempPathCollisions(secret: string, parent: string, prefix: string): string[] {
  const template: (string | RegExp)[] = [...`${parent}/${prefix}`, ...Array<RegExp>(6).fill(MKDTEMP_CHARS), '/'];
  const found = new Set<string>();
  for (const p of pieces(secret)) {
    for (let at = 0; at + PIECE <= template.length; at++) {
      if ([...p].every((ch, i) => { const t = template[at + i]; return typeof t === 'string' ? t === ch : t.test(ch); })) found.add(p);
    }
  }
  return [...found];
}

/**
 * Where any 8-character piece of any secret appears in any output, one line per secret and
 * output: `name in where ("piece")`. Secrets are named so a failure says which one leaked.
 */
export function findLeaks(secrets: Readonly<Record<string, string>>, outputs: ReadonlyMap<string, string>): string[] {
  const leaks = new Map<string, string>();
  for (const [name, s] of Object.entries(secrets)) {
    for (const p of pieces(s)) {
      for (const [where, text] of outputs) {
        const k = `${name} in ${where}`;
        if (!leaks.has(k) && text.includes(p)) leaks.set(k, `${k} (${JSON.stringify(p)})`);
      }
    }
  }
  return [...leaks.values()];
}

export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

export function readAll(dirs: readonly string[], into: Map<string, string>): void {
  for (const d of dirs) for (const f of filesUnder(d)) into.set(f, readFileSync(f, 'utf8'));
}

export interface Forked {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The processes this test file forked, for the diagnostics of a wait that timed out. */
const forkedHere: { args: readonly string[]; f: Forked }[] = [];

/** Forks the built CLI with its output collected. */
export function fork(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Forked {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const f = { child, stdout: () => out, stderr: () => err, exited };
  forkedHere.push({ args, f });
  return f;
}

const tail = (text: string, n = 1_500) => (text.length > n ? `…${text.slice(-n)}` : text);

/** What each process forked by this test file is doing: running or its exit status, and the end of its output. */
export function forkedStatus(): string {
  return forkedHere
    .map(({ args, f }) => {
      const { child } = f;
      const state = child.exitCode !== null || child.signalCode !== null ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `running (pid ${child.pid})`;
      return `aegis-audit ${args[0] ?? ''}: ${state}\n  stdout: ${tail(f.stdout()) || '(none)'}\n  stderr: ${tail(f.stderr()) || '(none)'}`;
    })
    .join('\n');
}

/** Runs the CLI to completion. */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const f = fork(args, env, cwd);
  const { code } = await f.exited;
  return { code, stdout: f.stdout(), stderr: f.stderr() };
}

/**
 * Polls until `fn` returns something other than undefined; bounded. On timeout the error says
 * what was awaited and how every process this test file forked is doing (exit status, output).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) {
      const forked = forkedStatus();
      throw new Error(`timed out after ${ms} ms waiting for ${what}${forked ? `\n${forked}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = get(url, { timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', fail);
  });
}

/** The `listening on http://…` address the daemon printed last. */
export function listenAddress(stdout: string): string | undefined {
  return [...stdout.matchAll(/listening on (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]).pop();
}
